"""Scanned PDF pages read by offline OCR (RapidOCR), marked as OCR text in citations."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_file_formats_fixtures import scan_image, scanned_pdf
from test_file_formats_pdf import citation_for

from planqa.corpus.guards import Deadline
from planqa.corpus.loader import load_corpus, read_document
from planqa.corpus.settings import Settings

pytest.importorskip("rapidocr_onnxruntime")
pytestmark = pytest.mark.slow

SCANNED = [
    "南通市国民经济和社会发展第十四个五年规划纲要",
    "第一章 发展基础",
    "十三五时期，全市地区生产总值达到一万亿元，",
    "年均增长百分之七点五，一般公共预算收入六百亿元。",
    "第二章 发展目标",
    "到二〇二五年，研发经费投入强度达到百分之三点二，",
    "城乡居民收入增长与经济增长基本同步。",
]


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def character_accuracy(truth: str, read: str) -> float:
    truth, read = "".join(truth.split()), "".join(read.split())
    return 1 - edit_distance(truth, read) / len(truth)


def test_a_scanned_page_is_read_by_ocr_and_cited_as_such(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    scanned_pdf(path, [SCANNED], text_page=["第二页是文字层：附件说明。"])
    document = read_document(path, {}, Settings())
    scanned_text = document.text[: document.meta.page_starts[1]]
    accuracy = character_accuracy("".join(SCANNED), scanned_text)
    assert accuracy >= 0.97, (accuracy, scanned_text)
    assert document.meta.ocr_pages == (1,)
    assert 0.9 <= document.meta.ocr_confidence[0] <= 1.0
    assert document.text.endswith("第二页是文字层：附件说明。")
    cited = citation_for(document, "年均增长")
    assert (cited.page, cited.ocr, cited.page_label) == (1, True, "第1页（扫描件识别）")
    typed = citation_for(document, "附件说明")
    assert (typed.page, typed.ocr, typed.page_label) == (2, False, "第2页")


def test_with_ocr_off_an_all_scanned_pdf_fails_alone_with_the_reason(tmp_path: Path) -> None:
    scanned_pdf(tmp_path / "scan.pdf", [SCANNED[:2]])
    (tmp_path / "good.txt").write_text("某县2025年工作计划\n一、推进项目建设。\n", encoding="utf-8")
    loaded = load_corpus([tmp_path], Settings(ocr=False))
    assert [d.name for d in loaded.documents] == ["good.txt"]
    assert "ocr = true" in loaded.problems[0].reason


def test_a_page_over_its_ocr_time_keeps_what_it_read() -> None:
    from planqa.corpus.ocr import ocr_image

    image = __import__("numpy").asarray(scan_image(SCANNED))
    page = ocr_image(image, "scan.pdf", 1e-9, Deadline("scan.pdf", 60))
    assert not page.complete and len(page.lines) < len(SCANNED)
