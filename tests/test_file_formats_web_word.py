"""Saved web pages (.html/.mhtml) and Word files (.docx tables, .doc) as corpus documents."""

from __future__ import annotations

import html
import os
import stat
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from test_file_formats_pdf import BUNDLED, chunk_agreement

from planqa.corpus.chunking import chunk_document
from planqa.corpus.loader import load_corpus, read_document
from planqa.corpus.settings import Settings
from planqa.corpus.tables import labelled_table_row

BODY = [
    "一、发展基础",
    "过去五年，全县地区生产总值年均增长百分之七，一般公共预算收入突破五十亿元。",
    "二、主要目标",
    "到二〇二五年，地区生产总值达到六百亿元，城乡居民收入与经济增长同步。",
]
ROWS = [
    ["序号", "指标名称", "单位", "2020年", "2025年", "属性"],
    ["1", "地区生产总值", "亿元", "400", "600", "预期性"],
]


def web_page(title: str, lines: list[str], *, table: list[list[str]] | None = None) -> str:
    """A page as a county government site serves it: navigation, breadcrumbs, the article
    with its 发布时间 line, share buttons, a footer."""
    body = "\n".join(f"<p>{html.escape(line)}</p>" for line in lines[1:] if line.strip())
    if table:
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table
        )
        body += f"\n<table>{cells}</table>\n<p>以上指标为预期性指标，力争完成。</p>"
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>{html.escape(title)} - 某县人民政府门户网站</title>
<meta name="PubDate" content="2021-03-02 11:10"></head>
<body><div class="nav"><a href="/">首页</a> | <a href="/zwgk">政务公开</a>
 | <a href="/hd">互动交流</a></div>
<div class="crumb">当前位置：<a href="/">首页</a> &gt; <a href="/gh">规划计划</a></div>
<div class="article"><h1>{html.escape(title)}</h1>
<div class="info">发布时间：2021-03-02 来源：某县发展和改革委员会</div>
<div class="content">{body}</div>
<div class="share">分享到：微信 微博 QQ空间 打印本页 关闭窗口</div></div>
<div class="footer">主办单位：某县人民政府办公室 版权所有 苏ICP备05006090号</div></body></html>"""


TITLE = "某县国民经济和社会发展第十四个五年规划纲要"


def test_a_saved_page_gives_its_article_without_the_site(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(web_page(TITLE, [TITLE, *BODY], table=ROWS), encoding="utf-8")
    document = read_document(path, {}, Settings())
    text = document.text
    assert text.splitlines()[0] == TITLE
    for line in BODY:
        assert line in text
    for furniture in ("首页", "当前位置", "分享到", "主办单位", "ICP"):
        assert furniture not in text, furniture
    assert document.encoding == "html"
    assert (document.meta.title, document.meta.date) == (TITLE, "2021-03-02")
    assert document.meta.period == "2021—2025"
    row = text.index("1 地区生产总值")
    assert "序号 指标名称 单位 2020年 2025年 属性\n1 地区生产总值" in text
    end = text.index("\n", row)
    assert (
        labelled_table_row(text, row, end)
        == "地区生产总值（亿元）：2020年 400；2025年 600（预期性）"
    )


def test_an_mhtml_archive_and_html_under_another_name_are_read_as_pages(tmp_path: Path) -> None:
    archive = MIMEMultipart("related")
    archive.attach(MIMEText(web_page(TITLE, [TITLE, *BODY]), "html", "utf-8"))
    (tmp_path / "page.mhtml").write_bytes(archive.as_bytes())
    (tmp_path / "exported.doc").write_text(web_page("某县2024年工作计划", BODY), encoding="utf-8")
    loaded = load_corpus([tmp_path], Settings())
    by_name = {d.name: d for d in loaded.documents}
    assert not loaded.problems
    assert by_name["page.mhtml"].encoding == "mhtml" and BODY[1] in by_name["page.mhtml"].text
    assert by_name["exported.doc"].encoding == "html"


def test_the_bundled_documents_as_web_pages_chunk_like_their_txt(tmp_path: Path) -> None:
    for source in sorted(BUNDLED.glob("*.txt")):
        txt = read_document(source, {}, Settings())
        lines = txt.text.splitlines()
        path = tmp_path / f"{source.stem}.html"
        path.write_text(web_page(lines[0], lines), encoding="utf-8")
        page = read_document(path, {}, Settings())
        agreement = chunk_agreement(chunk_document(txt), chunk_document(page))
        assert agreement >= 0.95, (source.name, agreement)
        assert page.meta.title == txt.meta.title


def word_file(path: Path, *, title: str = "", author: str = "") -> None:
    import docx

    document = docx.Document()
    document.add_paragraph(BODY[0])
    document.add_paragraph("主要指标见下表。")
    table = document.add_table(rows=len(ROWS), cols=len(ROWS[0]))
    for i, row in enumerate(ROWS):
        for j, cell in enumerate(row):
            table.cell(i, j).text = cell
    document.add_paragraph(BODY[1])
    document.core_properties.title = title
    document.core_properties.author = author
    document.save(str(path))


def test_a_docx_table_is_read_in_place_with_its_header(tmp_path: Path) -> None:
    path = tmp_path / "plan.docx"
    word_file(path)
    text = read_document(path, {}, Settings()).text
    assert text.splitlines() == [
        BODY[0],
        "主要指标见下表。",
        "序号 指标名称 单位 2020年 2025年 属性",
        "1 地区生产总值 亿元 400 600 预期性",
        BODY[1],
    ]


def test_docx_core_properties_fill_what_the_text_does_not_say(tmp_path: Path) -> None:
    path = tmp_path / "untitled.docx"
    word_file(path, title="南通市2023年政府工作报告", author="南通市人民政府办公室")
    meta = read_document(path, {}, Settings()).meta
    assert meta.title == "南通市2023年政府工作报告" and meta.region == "南通市"
    assert meta.kind == "政府工作报告" and meta.period == "2023"
    assert meta.issuer == "南通市人民政府办公室"
    assert "title" not in meta.uncertain


def test_a_doc_without_a_converter_names_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024))
    loaded = load_corpus([tmp_path], Settings())
    reason = loaded.problems[0].reason
    assert "Word 97-2003" in reason and "LibreOffice" in reason and "libreoffice" in reason


def test_a_doc_is_converted_when_libreoffice_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in ``soffice`` that writes the .docx LibreOffice would."""
    bin_dir, corpus = tmp_path / "bin", tmp_path / "corpus"
    bin_dir.mkdir()
    corpus.mkdir()
    word_file(tmp_path / "converted.docx")
    soffice = bin_dir / "soffice"
    soffice.write_text(f'#!/bin/sh\nshift 4\ncp "{tmp_path / "converted.docx"}" "$1/input.docx"\n')
    soffice.chmod(soffice.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (corpus / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024))
    document = read_document(corpus / "old.doc", {}, Settings())
    assert document.encoding == "doc" and "1 地区生产总值 亿元 400 600 预期性" in document.text
