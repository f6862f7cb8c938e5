"""Saved web pages (.html/.htm, and .mhtml single-file archives): the article, not the site.

A page saved from a government website is mostly furniture: navigation, breadcrumbs, share
buttons, related links and a footer of 主办单位 and ICP numbers, all of which would be indexed as
if the plan said them. trafilatura (Apache-2.0) finds the main content. Its tables are first
rewritten as header and row lines (corpus/tables.py ``table_lines``), the shape the indicator
table code reads. The page's title (``ArticleTitle``/``og:title`` meta, else <title> without the
site name) and publication date (``PubDate`` meta, the page's 发布时间 line, or trafilatura's
date finder) go into the file hints; the title is put back as the first line when the extractor
dropped it as page furniture, as the .txt of a saved page has it.
"""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

from planqa.corpus.errors import DocumentError
from planqa.corpus.extracted import Extracted, FileHints, iso_date
from planqa.corpus.guards import Deadline, TextBudget
from planqa.corpus.tables import table_lines

#: Pages larger than this (characters of markup) are refused: no plan's page is near it.
MAX_HTML_CHARS = 40_000_000
_TITLE_META = ("ArticleTitle", "og:title", "title", "dc.title", "DC.Title")
_DATE_META = (
    "PubDate",
    "pubdate",
    "publishdate",
    "article:published_time",
    "dc.date",
    "firstpublishedtime",
)
_AUTHOR_META = ("ContentSource", "author", "dc.creator")
_PUBLISHED_LINE = re.compile(
    r"(?:发布时间|发布日期|成文日期|日期)\s*[:：]\s*"
    r"((?:19|20)\d{2}[-/.年]\d{1,2}[-/.月]\d{1,2})"
)
_SITE_SUFFIX = re.compile(r"\s*[-_|—–]+\s*[^-_|—–]{2,30}(?:网站|政府|门户|网|平台)\s*$")


def read_html(data: bytes | str, source: str, deadline: Deadline, budget: TextBudget) -> Extracted:
    """The main text of a web page (bytes as saved, or markup already decoded)."""
    import trafilatura
    from lxml import html as lxml_html

    markup = data if isinstance(data, str) else _decode(data, source)
    if len(markup) > MAX_HTML_CHARS:
        raise DocumentError(f"{source}: over {MAX_HTML_CHARS:,} characters of markup; not read")
    try:
        tree = lxml_html.document_fromstring(markup)
    except Exception as exc:  # lxml's ParserError and friends
        raise DocumentError(f"{source}: cannot parse this web page ({exc})") from exc
    deadline.check()
    hints = _hints(tree, markup)
    _flatten_tables(tree)
    try:
        text = trafilatura.extract(
            tree,
            output_format="txt",
            include_tables=False,
            include_comments=False,
            include_images=False,
            favor_recall=True,
            deduplicate=False,
        )
    except Exception as exc:
        raise DocumentError(f"{source}: cannot extract this web page's text ({exc})") from exc
    deadline.check()
    text = (text or "").strip()
    if not text:
        raise DocumentError(f"{source}: no article text found in this web page")
    if hints.title and hints.title not in text[: len(hints.title) + 200]:
        text = f"{hints.title}\n{text}"
    budget.add(len(text))
    return Extracted(text, "html", hints=hints)


def read_mhtml(data: bytes, source: str, deadline: Deadline, budget: TextBudget) -> Extracted:
    """The HTML part of a single-file web archive (MIME multipart/related), read as a page."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/html":
            try:
                markup = part.get_content()
            except (LookupError, ValueError) as exc:  # an unknown charset
                raise DocumentError(
                    f"{source}: cannot decode the page in this .mhtml ({exc})"
                ) from exc
            extracted = read_html(markup, source, deadline, budget)
            return Extracted(extracted.text, "mhtml", hints=extracted.hints)
    raise DocumentError(f"{source}: no HTML page inside this .mhtml archive")


def looks_like_html(head: bytes) -> bool:
    """Markup at the start of a file: a doctype, <html>, or a <head>/<meta>/<body> tag."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<meta", b"<body")) or (
        start.startswith((b"<!--", b"<?xml")) and b"<html" in start[:2048]
    )


def looks_like_mhtml(head: bytes) -> bool:
    lowered = head[:4096].lower()
    return b"mime-version:" in lowered and b"multipart/related" in lowered


def _decode(data: bytes, source: str) -> str:
    """The page's characters: the charset its <meta> declares, else the text decoder's guess."""
    declared = re.search(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", data[:4096], re.I)
    if declared:
        name = declared.group(1).decode("ascii").lower()
        name = "gb18030" if name in ("gb2312", "gbk") else name
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            pass
    from planqa.corpus.decoding import decode_bytes

    return decode_bytes(data, source)[0]


def _flatten_tables(tree: Any) -> None:
    """Each <table> becomes one <p> per row (header first), cells separated by spaces."""
    from lxml import etree

    for table in reversed(tree.xpath("//table")):
        rows = [
            [" ".join(cell.itertext()) for cell in row.xpath("./th|./td")]
            for row in table.xpath(".//tr")
        ]
        rows = [row for row in rows if row]
        if table.getparent() is None:
            continue
        block = etree.Element("div")
        for line in table_lines(rows) if len(rows) >= 2 else []:
            paragraph = etree.SubElement(block, "p")
            paragraph.text = line
        block.tail = table.tail
        table.getparent().replace(table, block)


def _hints(tree: Any, markup: str) -> FileHints:
    metas: dict[str, str] = {}
    for meta in tree.xpath("//meta[@content]"):
        key = meta.get("name") or meta.get("property") or ""
        metas.setdefault(key.lower(), " ".join(meta.get("content", "").split()))
    title = next((metas[k.lower()] for k in _TITLE_META if metas.get(k.lower())), "")
    if not title:
        found = tree.xpath("//title")
        title = _SITE_SUFFIX.sub("", " ".join(found[0].text_content().split())) if found else ""
    date = next((iso_date(metas[k.lower()]) for k in _DATE_META if metas.get(k.lower())), "")
    if not date:
        line = _PUBLISHED_LINE.search(" ".join(tree.xpath("//body//text()"))[:20_000])
        date = iso_date(line.group(1)) if line else ""
    if not date:
        from trafilatura import extract_metadata

        found = extract_metadata(markup)
        date = iso_date(found.date or "") if found else ""
    author = next((metas[k.lower()] for k in _AUTHOR_META if metas.get(k.lower())), "")
    return FileHints(title, date, author)
