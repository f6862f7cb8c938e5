from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from planqa.corpus.errors import DocumentError
from planqa.corpus.inference import infer_meta
from planqa.corpus.loader import load_corpus, read_document
from planqa.corpus.metadata import load_manifest

FIVE = [
    "000_7b8cb340e9bca2f6.txt",
    "001_609138391ce5f9ab.txt",
    "002_9687ff92bf81c162.txt",
    "003_7f17e41e8ac2efc3.txt",
    "004_99a6b245d6293f07.txt",
]


def test_bundled_corpus_has_the_five_documents_with_manifest_metadata(corpus_dir: Path) -> None:
    loaded = load_corpus([corpus_dir])
    assert [d.name for d in loaded.documents] == FIVE
    assert not loaded.problems
    by_name = {d.name: d for d in loaded.documents}
    nantong = by_name["000_7b8cb340e9bca2f6.txt"].meta
    assert nantong.region == "南通市经济技术开发区"
    assert {"南通开发区", "南通经开区"} <= set(nantong.aliases)
    assert by_name["003_7f17e41e8ac2efc3.txt"].meta.aliases[0] == "港开"
    assert all(not d.meta.inferred and d.meta.title and d.meta.kind for d in loaded.documents)


def test_bundled_documents_equal_the_shared_originals(corpus_dir: Path) -> None:
    shared = corpus_dir.parents[2] / "shared" / "corpus"
    if not shared.is_dir():
        pytest.skip("../shared/corpus is not beside this checkout")
    for name in FIVE:
        assert (corpus_dir / name).read_bytes() == (shared / name).read_bytes()


def test_documents_without_manifest_entry_get_inferred_metadata(tmp_path: Path) -> None:
    path = tmp_path / "新 规划 文件.txt"
    path.write_text(
        "江阴市临港经济开发区国民经济和社会发展第十四个五年规划纲要\n发布时间：2021年3月5日\n正文。",
        encoding="gb18030",
    )
    document = read_document(path)
    assert document.meta.inferred
    assert document.meta.region == "江阴市"
    assert document.meta.kind == "五年规划纲要"
    assert document.meta.period == "2021—2025"
    assert document.meta.date == "2021-03-05"
    assert document.encoding == "gb18030"


def test_infer_meta_finds_zone_names() -> None:
    meta = infer_meta("x.txt", "苏州工业园区2023年度工作计划\n正文")
    assert meta.region == "苏州工业园区"
    assert meta.kind == "年度工作计划"


def test_bad_files_are_reported_and_the_rest_still_loads(tmp_path: Path, corpus_dir: Path) -> None:
    shutil.copy(corpus_dir / FIVE[3], tmp_path / FIVE[3])
    shutil.copy(corpus_dir / FIVE[3], tmp_path / "copy of plan.txt")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 50)
    (tmp_path / "notes.md").write_text("# 标题\n\n一、总体要求\n内容。", encoding="utf-8")
    loaded = load_corpus([tmp_path])
    assert sorted(d.name for d in loaded.documents) == sorted([FIVE[3], "notes.md"])
    reasons = {Path(p.path).name: p.reason for p in loaded.problems}
    assert set(reasons) == {"copy of plan.txt", "empty.txt", "binary.txt"}
    assert "same text as" in reasons["copy of plan.txt"]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="no such file"):
        load_corpus([tmp_path / "nope"])


def test_docx_is_read_through_python_docx(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("某某区2024年度工作计划")
    document.add_paragraph("一、总体目标")
    document.add_paragraph("地区生产总值增长6%。")
    path = tmp_path / "plan.docx"
    document.save(str(path))
    loaded = read_document(path)
    assert loaded.text.splitlines() == [
        "某某区2024年度工作计划",
        "一、总体目标",
        "地区生产总值增长6%。",
    ]
    # 某某区 is no real place: the region is not guessed but flagged for the user to set.
    assert loaded.meta.region == "plan" and "region" in loaded.meta.uncertain


def test_broken_manifest_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DocumentError, match="manifest"):
        load_manifest(tmp_path)
