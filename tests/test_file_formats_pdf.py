"""PDFs read with their layout: column order, tables under their header, furniture removed,
pages kept for citations; the five bundled documents as PDFs chunk like their .txt."""

from __future__ import annotations

import dataclasses
import difflib
import json
from pathlib import Path

import pytest
from test_file_formats_fixtures import table_pdf, text_pdf, two_column_pdf

from planqa.corpus.chunking import Chunk, chunk_document
from planqa.corpus.documents import Document, DocumentMeta
from planqa.corpus.loader import load_corpus, read_document
from planqa.corpus.settings import Settings
from planqa.corpus.tables import header_of_row, labelled_table_row
from planqa.index.search import Hit
from planqa.rag.answer import Answer, Citation

BUNDLED = Path(__file__).resolve().parents[1] / "corpus" / "documents"
LEFT = [
    "左栏甲段：全市经济总量稳步增长，地区生产总值达到七百亿元，年均增长百分之九左右。",
    "左栏乙段：创新驱动发展战略深入实施，高新技术企业数量达到三百家，研发投入持续加大。",
]
RIGHT = [
    "右栏丙段：生态环境持续改善，空气质量优良天数比例达到百分之八十五，水质明显好转。",
    "右栏丁段：民生福祉不断增进，城乡居民人均可支配收入增长与经济增长基本同步实现。",
]
TABLE = [
    ["序号", "指标名称", "单位", "2020年", "2025年", "属性"],
    ["1", "地区生产总值", "亿元", "700", "1000", "预期性"],
    ["2", "研发经费投入强度", "%", "2.5", "3.2", "预期性"],
    ["3", "城镇登记失业率", "%", "3.0", "", "约束性"],
]


def read(path: Path) -> Document:
    return read_document(path, {}, Settings())


def test_two_columns_read_left_column_first_and_title_first(tmp_path: Path) -> None:
    path = tmp_path / "two.pdf"
    two_column_pdf(path, "某市国民经济和社会发展第十四个五年规划纲要", LEFT * 2, RIGHT * 2)
    text = read(path).text
    assert text.startswith("某市国民经济和社会发展第十四个五年规划纲要\n")
    order = [text.index(p[:5]) for p in (LEFT[0], LEFT[1], RIGHT[0], RIGHT[1])]
    assert order == sorted(order)
    # each paragraph comes back whole: its wrapped lines rejoined, no column interleaved
    for paragraph in LEFT + RIGHT:
        assert paragraph in text


def test_a_table_is_rows_under_its_header_and_reads_with_it(tmp_path: Path) -> None:
    path = tmp_path / "table.pdf"
    table_pdf(path, "主要指标如下表所示。", TABLE, "以上指标中约束性指标必须完成。")
    text = read(path).text
    lines = text.splitlines()
    assert lines[0] == "主要指标如下表所示。"
    assert lines[1] == "序号 指标名称 单位 2020年 2025年 属性"
    assert lines[2] == "1 地区生产总值 亿元 700 1000 预期性"
    assert lines[4] == "3 城镇登记失业率 % 3.0 — 约束性"  # an empty cell keeps its column
    assert lines[5] == "以上指标中约束性指标必须完成。"
    row = text.index("2 研发经费投入强度")
    assert header_of_row(text, row).years == {2020, 2025}
    end = text.index("\n", row)
    assert (
        labelled_table_row(text, row, end)
        == "研发经费投入强度（%）：2020年 2.5；2025年 3.2（预期性）"
    )


def test_headers_footers_and_page_numbers_are_removed_and_pages_kept(tmp_path: Path) -> None:
    paragraphs = [
        f"第{i}段：推进重点项目建设，完善基础设施网络，提升城市综合承载能力。" * 3
        for i in range(60)
    ]
    path = tmp_path / "long.pdf"
    pages = text_pdf(path, ["第一章 总体要求", *paragraphs], header="某市人民政府办公室文件")
    document = read(path)
    assert pages >= 4
    assert "某市人民政府办公室文件" not in document.text
    assert "- 2 -" not in document.text and "- 3 -" not in document.text
    assert len(document.meta.page_starts) == pages
    # every paragraph whole, including those a page break cut in two
    for paragraph in paragraphs:
        assert paragraph in document.text
    for page in range(1, pages + 1):
        start = document.meta.page_starts[page - 1]
        assert document.meta.page_at(start) == page
    assert document.meta.page_at(len(document.text) - 1) == pages


def citation_for(document: Document, phrase: str) -> Citation:
    start = document.text.index(phrase)
    chunk = next(c for c in chunk_document(document) if c.start <= start < c.end)
    return Citation.from_hit(1, Hit(chunk, 1.0, "bm25"), (start, start + len(phrase)), document)


def test_a_citation_into_a_pdf_names_its_page(tmp_path: Path) -> None:
    paragraphs = [
        f"第{i}项任务：加快建设现代化产业体系，推动制造业高端化智能化绿色化发展。"
        for i in range(200)
    ]
    path = tmp_path / "plan.pdf"
    text_pdf(path, paragraphs, header="某县发展和改革委员会")
    document = read(path)
    citation = citation_for(document, "第150项任务")
    expected = document.meta.page_at(document.text.index("第150项任务"))
    assert citation.page == expected and expected > 3
    assert citation.ocr is False and citation.page_label == f"第{expected}页"
    answer = Answer("问", "答[1]", False, (citation,), (), "extractive")
    assert answer.to_dict()["citations"][0]["page"] == expected
    # an answerer without the documents at hand gets its pages afterwards
    bare = dataclasses.replace(citation, page=None)
    paged = dataclasses.replace(answer, citations=(bare,)).with_pages({document.name: document})
    assert paged.citations[0].page == expected
    # the chat shows it beside the chapter
    from planqa.ui.render import citation_block

    assert f"第{expected}页" in citation_block(citation)
    from planqa.ui.render_documents import Focus, document_viewer_html

    at = document.text.index("第150项任务")
    viewer = document_viewer_html(document, (), Focus(at, at + 20, at, at + 10))
    assert f"已定位到第 {expected} 页" in viewer


def test_a_txt_citation_has_no_page() -> None:
    document = Document(DocumentMeta("a.txt", "某县", "规划"), "某县规划。第一段正文。")
    chunk = Chunk("x", "a.txt", "某县", "规划", "", 0, len(document.text), document.text)
    citation = Citation.from_hit(1, Hit(chunk, 1.0, "bm25"), (5, 11), document)
    assert citation.page is None and citation.page_label == ""


def test_page_metadata_survives_the_index_json_round_trip() -> None:
    meta = DocumentMeta("a.pdf", "某县", "规划", page_starts=(0, 120, 480), ocr_pages=(2,))
    again = DocumentMeta(**json.loads(json.dumps(dataclasses.asdict(meta))))
    assert again == meta and again.page_starts == (0, 120, 480)
    assert again.page_at(130) == 2 and again.is_ocr_page(2)


def test_the_bytes_choose_the_reader_not_the_name(tmp_path: Path) -> None:
    text_pdf(
        tmp_path / "saved-as.txt",
        ["某县二〇二五年工作计划", "一、推进重点项目建设，完善基础设施。"],
    )
    document = read(tmp_path / "saved-as.txt")
    assert document.encoding == "pdf" and "推进重点项目建设" in document.text


def test_broken_pdfs_fail_alone_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\n" + bytes(500))
    (tmp_path / "empty.pdf").write_bytes(b"")
    text_pdf(
        tmp_path / "good.pdf", ["某县二〇二五年工作计划", "一、推进重点项目建设，完善基础设施。"]
    )
    loaded = load_corpus([tmp_path], Settings())
    assert [d.name for d in loaded.documents] == ["good.pdf"]
    reasons = {Path(p.path).name: p.reason for p in loaded.problems}
    assert "cannot extract text" in reasons["broken.pdf"]
    assert set(reasons) == {"broken.pdf", "empty.pdf"}


def stripped(text: str) -> str:
    return "".join(text.split())


def chunk_agreement(expected: list[Chunk], got: list[Chunk]) -> float:
    """Share of the characters of ``expected``'s chunks found, in order, in the nearest
    matching chunk of ``got`` (whitespace ignored: a PDF has no blank lines to give back)."""
    total = matched = 0
    for i, chunk in enumerate(expected):
        text = stripped(chunk.text)
        total += len(text)
        near = round(i * len(got) / max(1, len(expected)))
        matched += max(
            (
                sum(
                    block.size
                    for block in difflib.SequenceMatcher(
                        None, text, stripped(other.text), autojunk=False
                    ).get_matching_blocks()
                )
                for other in got[max(0, near - 6) : near + 7]
            ),
            default=0,
        )
    return matched / total


@pytest.mark.slow
def test_the_bundled_documents_as_pdfs_chunk_like_their_txt(tmp_path: Path) -> None:
    for source in sorted(BUNDLED.glob("*.txt")):
        txt = read(source)
        path = tmp_path / f"{source.stem}.pdf"
        pages = text_pdf(path, txt.text.splitlines(), header="某市发展和改革委员会")
        pdf = read(path)
        assert len(pdf.meta.page_starts) == pages
        agreement = chunk_agreement(chunk_document(txt), chunk_document(pdf))
        assert agreement >= 0.95, (source.name, agreement)
        assert (pdf.meta.title, pdf.meta.region, pdf.meta.period) == (
            txt.meta.title,
            txt.meta.region,
            txt.meta.period,
        )
