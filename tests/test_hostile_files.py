"""Hostile files must not hurt the load of the rest of the corpus (issue 16, items 5, 7, 9).

Zip bombs and lying zip headers, runaway text and parse time, links out of the corpus folder,
files that are only a table of contents, and names that would break a one-line message: each
is skipped with a reason that names the file, the limit and the fix, and the other files load.
"""

from __future__ import annotations

import io
import resource
import signal
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from planqa.corpus.guards import shown
from planqa.corpus.loader import load_corpus
from planqa.corpus.settings import Settings

#: One tiny Word paragraph; a 50 MB run of them deflates ~1000:1, like the 148 KB file of the issue.
TINY_PARAGRAPH = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>"


def plan(region: str) -> str:
    return (
        f"{region}2024年国民经济和社会发展计划\n"
        "一、总体要求\n"
        f"{region}坚持稳中求进，地区生产总值增长6%左右。\n"
        "二、重点任务\n"
        "建设先进制造业集群，推进城市更新。\n"
    )


def word_document(path: Path, paragraphs: list[str]) -> None:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(str(path))


def word_bomb(path: Path, megabytes: int) -> int:
    """A real .docx whose document.xml is ``megabytes`` MiB of tiny paragraphs, written in
    blocks so the test itself never holds it; returns document.xml's size."""
    import docx

    template = io.BytesIO()
    docx.Document().save(template)
    block = TINY_PARAGRAPH * (2**20 // len(TINY_PARAGRAPH))
    size = 0
    with zipfile.ZipFile(template) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename != "word/document.xml":
                z.writestr(info.filename, data)
                continue
            head = data.split(b"<w:body>")[0]
            with z.open(info.filename, "w") as stream:
                stream.write(head + b"<w:body>")
                for _ in range(megabytes):
                    stream.write(block)
                stream.write(b"<w:sectPr/></w:body></w:document>")
                size = len(head) + 8 + megabytes * len(block) + 33
    return size


def declare_size(path: Path, member: str, declared: int) -> None:
    """Make the zip headers (local and central directory) claim ``declared`` inflated bytes."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo(member).header_offset
    struct.pack_into("<I", data, local + 22, declared)
    name = member.encode()
    at = data.find(b"PK\x01\x02")
    while at != -1:
        (length,) = struct.unpack_from("<H", data, at + 28)
        if data[at + 46 : at + 46 + length] == name:
            struct.pack_into("<I", data, at + 24, declared)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(data)


def good_files(folder: Path) -> list[str]:
    (folder / "good.txt").write_text(plan("甲县"), encoding="utf-8")
    word_document(folder / "good.docx", plan("乙县").splitlines())
    return ["good.docx", "good.txt"]


def load_measured(folder: Path, settings: Settings | None = None):
    """load_corpus with its wall time, Python-heap peak and growth of the process's peak RSS
    (lxml allocates outside the Python heap; RSS only shows a peak above earlier ones)."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    try:
        loaded = load_corpus([folder], settings or Settings())
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    return loaded, seconds, peak, rss_growth


def reasons_of(loaded) -> dict[str, str]:
    return {Path(problem.path).name: problem.reason for problem in loaded.problems}


# --- zip bombs ------------------------------------------------------------------------------


def test_a_docx_bomb_is_refused_quickly_in_bounded_memory(tmp_path: Path) -> None:
    """148 KB on disk, 50 MiB of document.xml: refused from the zip directory, the rest loads."""
    good = good_files(tmp_path)
    size = word_bomb(tmp_path / "bomb.docx", 50)
    assert (tmp_path / "bomb.docx").stat().st_size < 200_000 and size > 50 * 10**6
    loaded, seconds, peak, rss_growth = load_measured(tmp_path)
    assert sorted(d.name for d in loaded.documents) == good
    reason = reasons_of(loaded)["bomb.docx"]
    assert "bomb.docx" in reason and "word/document.xml" in reason
    assert "16.0 MiB limit" in reason and "max_unzipped_xml_bytes" in reason
    assert seconds < 10
    assert peak < 50 * 2**20 and rss_growth < 200 * 2**20, (peak, rss_growth)


@pytest.mark.parametrize("declared", [4096, 8 * 2**20])
def test_a_lying_zip_header_is_caught_while_inflating(tmp_path: Path, declared: int) -> None:
    """document.xml claims 4 KB (or 8 MiB, under the limit) but inflates to 20 MiB: caught at
    the first block past the claim (zipfile alone cut it there and blamed the CRC)."""
    good = good_files(tmp_path)
    word_bomb(tmp_path / "liar.docx", 20)
    declare_size(tmp_path / "liar.docx", "word/document.xml", declared)
    loaded, seconds, peak, rss_growth = load_measured(tmp_path)
    assert sorted(d.name for d in loaded.documents) == good
    reason = reasons_of(loaded)["liar.docx"]
    assert f"word/document.xml inflates past the {declared:,} bytes its zip header" in reason
    assert seconds < 10 and peak < 50 * 2**20 and rss_growth < 200 * 2**20


def test_all_parts_together_are_capped(tmp_path: Path) -> None:
    good_files(tmp_path)
    loaded = load_corpus([tmp_path], Settings(max_unzipped_bytes=10_000))
    reason = reasons_of(loaded)["good.docx"]
    assert "its parts declare" in reason and "PLANQA_MAX_UNZIPPED_BYTES" in reason
    assert [d.name for d in loaded.documents] == ["good.txt"]


# --- text and time --------------------------------------------------------------------------


def test_text_beyond_max_text_chars_is_refused(tmp_path: Path) -> None:
    (tmp_path / "long.txt").write_text(plan("丙县") * 100, encoding="utf-8")
    word_document(tmp_path / "long.docx", plan("丁县").splitlines() * 100)
    (tmp_path / "short.txt").write_text(plan("甲县"), encoding="utf-8")
    loaded = load_corpus([tmp_path], Settings(max_text_chars=1_000))
    assert [d.name for d in loaded.documents] == ["short.txt"]
    reasons = reasons_of(loaded)
    assert set(reasons) == {"long.txt", "long.docx"}
    for reason in reasons.values():
        assert "over 1,000 characters" in reason and "max_text_chars" in reason


def test_a_slow_docx_is_stopped_at_max_parse_seconds(tmp_path: Path) -> None:
    word_document(tmp_path / "slow.docx", [f"第{i}段。" for i in range(3000)])
    (tmp_path / "good.txt").write_text(plan("甲县"), encoding="utf-8")
    loaded = load_corpus([tmp_path], Settings(max_parse_seconds=0.001))
    assert [d.name for d in loaded.documents] == ["good.txt"]
    reason = reasons_of(loaded)["slow.docx"]
    assert "over 0.001 s" in reason and "PLANQA_MAX_PARSE_SECONDS" in reason


def test_one_slow_pdf_page_is_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page that takes 6 s (a parser stuck in one content stream) is cut at the limit: the
    alarm interrupts it, the checks between pages could not. The alarm is gone afterwards."""
    import pypdf

    class SlowPage:
        def extract_text(self) -> str:
            end = time.monotonic() + 6
            while time.monotonic() < end:
                pass
            return "某县规划。"

    class SlowReader:
        def __init__(self, stream: object) -> None:
            self.pages = [SlowPage()]

    monkeypatch.setattr(pypdf, "PdfReader", SlowReader)
    (tmp_path / "stuck.pdf").write_bytes(b"%PDF-1.4\n")
    (tmp_path / "good.txt").write_text(plan("甲县"), encoding="utf-8")
    started = time.perf_counter()
    loaded = load_corpus([tmp_path], Settings(max_parse_seconds=0.5))
    assert time.perf_counter() - started < 4
    assert [d.name for d in loaded.documents] == ["good.txt"]
    assert "max_parse_seconds" in reasons_of(loaded)["stuck.pdf"]
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# --- links ----------------------------------------------------------------------------------


def test_a_link_out_of_the_corpus_folder_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_text(plan("机密县") + "口令是獬豸。\n", encoding="utf-8")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text(plan("甲县"), encoding="utf-8")
    (corpus / "notes.txt").symlink_to(outside / "secret.txt")
    loaded = load_corpus([corpus], Settings())
    assert [d.name for d in loaded.documents] == ["good.txt"]
    assert not any("獬豸" in d.text for d in loaded.documents)
    reason = reasons_of(loaded)["notes.txt"]
    assert "outside the corpus folder" in reason and "follow_external_symlinks" in reason
    allowed = load_corpus([corpus], Settings(follow_external_symlinks=True))
    assert sorted(d.name for d in allowed.documents) == ["good.txt", "notes.txt"]


def test_a_link_inside_the_folder_does_not_index_a_file_twice(tmp_path: Path) -> None:
    """The link sorts first, yet the file keeps its own name; a second link is skipped too."""
    (tmp_path / "plan.txt").write_text(plan("甲县"), encoding="utf-8")
    (tmp_path / "another.txt").symlink_to("plan.txt")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "kept.txt").symlink_to(tmp_path / "sub2.txt")
    (tmp_path / "sub2.txt").symlink_to(tmp_path / "zz.txt")
    (tmp_path / "zz.txt").write_text(plan("乙县"), encoding="utf-8")
    loaded = load_corpus([tmp_path], Settings())
    assert sorted(d.name for d in loaded.documents) == ["plan.txt", "zz.txt"]
    reasons = reasons_of(loaded)
    assert set(reasons) == {"another.txt", "kept.txt", "sub2.txt"}
    assert "plan.txt, read under its own name" in reasons["another.txt"]


# --- empty in all but name ------------------------------------------------------------------


def test_a_document_of_only_a_table_of_contents_is_skipped(tmp_path: Path) -> None:
    toc = (
        "目  录\n第一章 总体要求 ........ 1\n第二章 发展目标 ........ 5\n"
        "第三章 重点任务 ........ 9\n"
    )
    (tmp_path / "toc.txt").write_text(toc, encoding="utf-8")
    (tmp_path / "toc-no-pages.txt").write_text(
        "目  录\n第一章 总体要求\n第二章 发展目标\n第三章 重点任务\n", encoding="utf-8"
    )
    (tmp_path / "headings.txt").write_text("第一章 总体要求\n第二章 发展目标\n", encoding="utf-8")
    (tmp_path / "title-and-toc.txt").write_text("某某县发展规划\n\n" + toc, encoding="utf-8")
    word_document(tmp_path / "toc.docx", toc.splitlines())
    (tmp_path / "good.txt").write_text(toc + plan("甲县"), encoding="utf-8")
    loaded = load_corpus([tmp_path], Settings())
    assert [d.name for d in loaded.documents] == ["good.txt"]
    reasons = reasons_of(loaded)
    assert set(reasons) == {
        "toc.txt",
        "toc-no-pages.txt",
        "headings.txt",
        "title-and-toc.txt",
        "toc.docx",
    }
    for name, reason in reasons.items():
        assert reason.startswith(f"{tmp_path / name}: no body text"), reason
        assert "remove it from the corpus" in reason


# --- names in messages ----------------------------------------------------------------------


def test_control_characters_in_names_are_escaped() -> None:
    assert (
        shown("a\nb\x1b[2J\u202e规划 文件\u3000.txt") == "a\\nb\\x1b[2J\\u202e规划 文件\u3000.txt"
    )
    assert shown(shown("x\r\ny")) == "x\\r\\ny"
    assert shown("新 规划 文件（2024 版）.txt") == "新 规划 文件（2024 版）.txt"


def test_a_newline_in_a_file_name_gives_a_one_line_message(tmp_path: Path) -> None:
    (tmp_path / "bad\nname.txt").write_bytes(b"")
    (tmp_path / "evil\x1b[2J.docx").write_bytes(b"not a zip")
    (tmp_path / "good.txt").write_text(plan("甲县"), encoding="utf-8")
    loaded = load_corpus([tmp_path], Settings())
    assert [d.name for d in loaded.documents] == ["good.txt"]
    lines = [f"skipped {p.path}: {p.reason}" for p in loaded.problems]
    assert len(lines) == 2
    for line in lines:
        assert line.isprintable(), line
    assert any("bad\\nname.txt: the file is empty" in line for line in lines), lines
    assert any("evil\\x1b[2J.docx: " in line for line in lines), lines


def test_the_cli_prints_one_skipped_line_per_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from planqa.ui.cli import app

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bad\nname.txt").write_bytes(b"")
    (folder / "good.txt").write_text(plan("甲县"), encoding="utf-8")
    runner = CliRunner(
        env={"PLANQA_EMBEDDING_MODEL": "hash", "PLANQA_INDEX_DIR": str(tmp_path / "index")}
    )
    result = runner.invoke(app, ["index", str(folder)])
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "name.txt" in line]
    assert lines == [
        f"skipped {folder}/bad\\nname.txt: {folder}/bad\\nname.txt: the file is "
        "empty; add text to it or remove it from the corpus"
    ], result.stderr
