"""Issue #6, the document rows of the catalogue (docs/robustness.md, "Documents"): files in any
encoding are indexed whole, bad, vanished or unreadable ones are skipped with a reason, a 10 MB
plan is read and chunked without losing text.

Tried through the Python API and the ``planqa`` CLI (exit code, one ``error:`` line on stderr, no
traceback); the hash embedder, indexes of a few small files.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from robustness_checks import (
    REPO_ROOT,
    assert_cited_or_refused,
    assert_user_error,
    cli,
    plan_text,
)

from planqa.corpus.chunking import chunk_document
from planqa.corpus.errors import DocumentError, InputError
from planqa.corpus.loader import load_corpus, read_document
from planqa.corpus.settings import Settings
from planqa.index.builder import build_index
from planqa.index.search import HybridSearcher
from planqa.rag.pipeline import Pipeline
from planqa.ui.cli import app

# =========================================================================== documents


def traditional(text: str) -> str:
    from opencc import OpenCC

    return OpenCC("s2t").convert(text)


SPACED_NAME = "新 规划 文件（2024 版）.txt"
#: name -> (bytes, sentinel) for files that must be indexed whole.
GOOD_DOCUMENTS: dict[str, tuple[bytes, str]] = {
    "gbk.txt": (plan_text("甲县", "鲲鹏智造港").encode("gbk"), "鲲鹏智造港"),
    "gb18030.txt": (plan_text("乙县", "麒麟数据湾", "𠮷𠀀锶镓").encode("gb18030"), "麒麟数据湾"),
    "utf8-bom.txt": (codecs.BOM_UTF8 + plan_text("丙县", "凤凰芯谷").encode(), "凤凰芯谷"),
    "utf16.txt": (plan_text("丁县", "玄武光谷").encode("utf-16"), "玄武光谷"),
    "utf16-be-no-bom.txt": (plan_text("戊县", "白泽氢能园").encode("utf-16-be"), "白泽氢能园"),
    "big5-traditional.txt": (
        traditional(plan_text("庚县", "朱雀航天城")).encode("big5"),
        "朱雀航天城",
    ),
    SPACED_NAME: (plan_text("己县", "青龙算力中心").encode(), "青龙算力中心"),
}
#: name -> (bytes, regex of the reported reason) for files that must be skipped with a reason.
BAD_DOCUMENTS: dict[str, tuple[bytes, str]] = {
    "empty.txt": (b"", "empty"),
    "blank.txt": (b" \r\n\t\n", "empty"),
    "bom-only.txt": (codecs.BOM_UTF8, "empty|no text"),
    "binary.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40, "binary"),
    # Same text, other name and encoding: the first by name is kept.
    "副本 gbk.txt": (plan_text("甲县", "鲲鹏智造港").encode(), "same text as gbk.txt"),
    "broken.pdf": (b"%PDF-1.7\n" + bytes(500), "cannot extract text"),
}


def decoded(data: bytes) -> str:
    from planqa.corpus.decoding import decode_bytes

    return decode_bytes(data)[0]


@pytest.fixture(scope="module")
def messy_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("messy") / "docs"
    folder.mkdir()
    for name, (data, _) in {**GOOD_DOCUMENTS, **BAD_DOCUMENTS}.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def messy_settings(messy_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(
        embedding_model="hash", index_dir=tmp_path_factory.mktemp("messy-index") / "index"
    )
    build_index(settings, [messy_corpus], progress=False)
    return settings


def test_document_catalogue_loads_the_good_and_names_the_bad(messy_corpus: Path) -> None:
    loaded = load_corpus([messy_corpus])
    assert sorted(d.name for d in loaded.documents) == sorted(GOOD_DOCUMENTS)
    reasons = {Path(p.path).name: p.reason for p in loaded.problems}
    assert set(reasons) == set(BAD_DOCUMENTS)
    for name, (_, pattern) in BAD_DOCUMENTS.items():
        assert re.search(pattern, reasons[name]), (name, reasons[name])
    encodings = {d.name: d.encoding for d in loaded.documents}
    assert encodings["gbk.txt"] == encodings["gb18030.txt"] == "gb18030"
    assert encodings["utf8-bom.txt"] == "utf-8-sig" and encodings["utf16.txt"] == "utf-16"
    assert encodings["utf16-be-no-bom.txt"] == "utf-16-be"
    assert encodings["big5-traditional.txt"].startswith("big5")


def test_document_catalogue_nothing_is_lost(messy_settings: Settings) -> None:
    searcher = HybridSearcher.open(messy_settings)
    for name, (data, sentinel) in GOOD_DOCUMENTS.items():
        document = searcher.documents[name]
        assert document.text == decoded(data)  # whole, exactly as decoded
        assert not document.text.startswith("\ufeff")
        top = searcher.search(f"建设{sentinel}", 1)[0]
        assert top.chunk.doc == name, (name, top.chunk.doc)
        assert document.text[top.chunk.start : top.chunk.end] == top.chunk.text


def test_a_traditional_document_is_found_by_a_simplified_question(messy_settings: Settings) -> None:
    pipeline = Pipeline.open(messy_settings)
    answer = pipeline.ask("庚县计划建成什么？年产值突破多少亿元？")
    assert answer.citations and answer.citations[0].doc == "big5-traditional.txt"
    assert "朱雀航天城" in answer.answer  # quoted from the traditional text, as written
    assert_cited_or_refused(answer, pipeline.searcher.documents)
    hits = pipeline.searcher.search("朱雀航天城 年产值", 1, mode="bm25")
    assert hits[0].chunk.doc == "big5-traditional.txt"


def test_document_catalogue_cli(messy_corpus: Path, tmp_path: Path) -> None:
    runner = cli(tmp_path / "index")
    result = runner.invoke(app, ["index", str(messy_corpus)])
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert f"indexed {len(GOOD_DOCUMENTS)} documents" in result.stdout
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == len(BAD_DOCUMENTS)
    for name, (_, pattern) in BAD_DOCUMENTS.items():
        line = next(line for line in skipped if f"/{name}: " in line)
        assert re.search(pattern, line), line

    found = runner.invoke(app, ["search", "青龙算力中心", "--doc", SPACED_NAME, "--k", "1"])
    assert found.exit_code == 0 and SPACED_NAME in found.stdout


def test_a_corpus_of_only_bad_files_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, (data, _) in BAD_DOCUMENTS.items():
        if name != "副本 gbk.txt":
            (folder / name).write_bytes(data)
    result = cli(tmp_path / "index").invoke(app, ["index", str(folder)])
    assert_user_error(result, 3, "nothing to index .*empty")
    with pytest.raises(DocumentError, match="nothing to index"):
        build_index(Settings(embedding_model="hash", index_dir=tmp_path / "i"), [folder])


def _two_file_corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "keep.txt").write_text(plan_text("甲县", "鲲鹏智造港"), encoding="utf-8")
    (folder / "trouble.txt").write_text(plan_text("乙县", "麒麟数据湾"), encoding="utf-8")
    return folder


def test_the_default_k_on_an_index_with_fewer_chunks_returns_them_all(tmp_path: Path) -> None:
    """``planqa search`` asks for 10 passages by default; a smaller index gives all it has
    rather than an error, while k < 1 stays one."""
    settings = Settings(embedding_model="hash", index_dir=tmp_path / "index")
    build_index(settings, [_two_file_corpus(tmp_path)], progress=False)
    searcher = HybridSearcher.open(settings)
    total = len(searcher.contents.chunks)
    assert 0 < total < 10
    for mode in ("hybrid", "dense"):
        hits = searcher.search("鲲鹏智造港", 10, mode=mode)
        assert len({(h.chunk.doc, h.chunk.start) for h in hits}) == len(hits) == total
    with pytest.raises(InputError, match="at least 1"):
        searcher.search("鲲鹏智造港", 0)
    result = cli(settings.index_dir).invoke(app, ["search", "鲲鹏智造港", "--json"])
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == total


def test_a_file_that_vanishes_during_indexing_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleted between discovery (the folder listing) and reading: skipped, the rest indexed."""
    import planqa.corpus.loader

    folder = _two_file_corpus(tmp_path)
    listing = planqa.corpus.loader.find_document_files

    def list_then_delete(paths: list[Path]) -> list[Path]:
        files = listing(paths)
        (folder / "trouble.txt").unlink()
        return files

    monkeypatch.setattr(planqa.corpus.loader, "find_document_files", list_then_delete)
    settings = Settings(embedding_model="hash", index_dir=tmp_path / "index")
    report = build_index(settings, [folder], progress=False)
    assert report.documents == 1
    [problem] = report.problems
    assert problem.path.endswith("trouble.txt") and "cannot read" in problem.reason
    assert HybridSearcher.open(settings).search("鲲鹏智造港", 1)[0].chunk.doc == "keep.txt"


def test_an_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod 000 where that blocks reading; as root it does not, so the read is made to fail."""
    folder = _two_file_corpus(tmp_path)
    target = folder / "trouble.txt"
    target.chmod(0)
    try:
        if os.access(target, os.R_OK):  # root: permissions are not enforced
            real_read = Path.read_bytes

            def read_bytes(self: Path) -> bytes:
                if self.name == "trouble.txt":
                    raise PermissionError(13, "Permission denied", str(self))
                return real_read(self)

            monkeypatch.setattr(Path, "read_bytes", read_bytes)
        loaded = load_corpus([folder])
        result = cli(tmp_path / "index").invoke(app, ["index", str(folder)])
    finally:
        target.chmod(0o644)
    assert [d.name for d in loaded.documents] == ["keep.txt"]
    [problem] = loaded.problems
    assert "Permission denied" in problem.reason
    assert result.exit_code == 0 and "indexed 1 documents" in result.stdout
    assert "trouble.txt: " in result.stderr and "Permission denied" in result.stderr


def write_big_document(path: Path, megabytes: int = 10) -> tuple[str, str]:
    """A ``megabytes`` MB UTF-8 plan with distinct paragraphs; returns (text, sentinel at end)."""
    source = (REPO_ROOT / "corpus" / "documents" / "001_609138391ce5f9ab.txt").read_text(
        encoding="utf-8"
    )
    parts = ["某某新区国民经济和社会发展第十四个五年规划纲要\n"]
    size, n = 0, 0
    while size < megabytes * 2**20:
        start = (n * 997) % (len(source) - 400)
        paragraph = f"第{n}条 {source[start : start + 400]}\n"
        parts.append(paragraph)
        size += len(paragraph.encode())
        n += 1
    sentinel = "文件末尾的哨兵：建设獬豸智慧谷。"
    parts.append(sentinel + "\n")
    text = "".join(parts)
    path.write_text(text, encoding="utf-8")
    return text, sentinel


def test_a_10_mb_file_is_read_and_chunked_whole(tmp_path: Path) -> None:
    path = tmp_path / "big plan 大文件.txt"
    text, sentinel = write_big_document(path)
    assert path.stat().st_size >= 10 * 2**20
    document = read_document(path)
    assert document.text == text
    chunks = chunk_document(document, max_chars=500, overlap_chars=80)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert any(sentinel in c.text for c in chunks)
    # Nothing is lost: text outside every chunk is layout, the cover, or a heading (headings
    # travel with their chunks as ``chapter``).
    covered = np.zeros(len(text), dtype=bool)
    for chunk in chunks:
        covered[chunk.start : chunk.end] = True
    headings = {p.strip() for c in chunks for p in c.chapter.split(" > ") if p.strip()}
    cover = text.index("\n第1条")
    uncovered = np.flatnonzero(~covered)
    runs = np.split(uncovered, np.flatnonzero(np.diff(uncovered) > 1) + 1)
    for run in runs:
        if run[-1] < cover:
            continue
        for line in text[run[0] : run[-1] + 1].split("\n"):
            line = line.strip()
            # Long headings are shortened in ``chapter``; a cut heading still counts.
            assert (
                not line
                or any(h.startswith(line) for h in headings)
                or any(line.startswith(h) for h in headings if len(h) >= 8)
            ), line


@pytest.mark.slow
def test_a_10_mb_file_is_indexed_and_searchable(tmp_path: Path) -> None:
    """The whole build (jieba over 3.5 M characters dominates: ~2 min on the 2-core machine)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    write_big_document(folder / "big plan 大文件.txt")
    (folder / "small.txt").write_text(plan_text("甲县", "鲲鹏智造港"), encoding="utf-8")
    settings = Settings(embedding_model="hash", index_dir=tmp_path / "index")
    report = build_index(settings, [folder], progress=False)
    assert report.documents == 2 and not report.problems and report.chunks > 7000
    searcher = HybridSearcher.open(settings)
    # The last line of the big file is indexed: found by its words and as a phrase.
    assert "獬豸智慧谷" in searcher.search("哨兵 獬豸智慧谷", 1, mode="bm25")[0].chunk.text
    assert "獬豸智慧谷" in searcher.search("文件末尾的哨兵：建设獬豸智慧谷", 1)[0].chunk.text
    assert searcher.search("鲲鹏智造港", 1)[0].chunk.doc == "small.txt"
