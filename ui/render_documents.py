"""HTML for the 文档 tab: the documents table, the chapter tree and the full-text viewer.

The same escaping rules as :mod:`ui.render`: the viewer's headings, focused passage and quote
are spans cut at offsets of the escaped text (:func:`ui.render.highlight`), never markup
searched for and replaced, so a document's own text cannot become a tag.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from planqa.corpus.documents import Document, DocumentMeta
from planqa.corpus.structure import Heading
from planqa.ui.render import Span, esc, highlight, one_block

_BLANK_RUN_RE = re.compile(r"\n[^\S\n]*(?:\n[^\S\n]*)+\n")


def _collapse_blank_lines(markup: str) -> str:
    """At most one empty line between paragraphs: extracted text is full of blank runs.
    Only whitespace between text is touched, so offsets and highlights are unaffected."""
    return _BLANK_RUN_RE.sub("\n\n", markup)


@dataclass(frozen=True)
class Focus:
    """The passage to show in the viewer and, inside it, the sentence to mark."""

    start: int
    end: int
    quote_start: int | None = None
    quote_end: int | None = None

    def clipped(self, length: int) -> Focus | None:
        start, end = max(0, min(self.start, length)), max(0, min(self.end, length))
        if end <= start:
            return None
        qs, qe = self.quote_start, self.quote_end
        if qs is None or qe is None or not (start <= qs < qe <= end):
            qs = qe = None
        return Focus(start, end, qs, qe)


def heading_anchor(heading: Heading) -> str:
    return f"pq-pos-{heading.start}"


def document_tree_html(headings: Sequence[Heading], focus: Focus | None = None) -> str:
    """The chapter tree: one indented line per heading; clicking scrolls the viewer to it."""
    if not headings:
        return one_block('<div class="pq-tree pq-empty">（本文件没有识别出章节标题）</div>')
    current = None
    if focus is not None:
        before = [h for h in headings if h.start <= focus.start]
        current = before[-1].start if before else None
    items = []
    top = min(h.level for h in headings)  # indent relative to the document's top level
    for heading in headings:
        level = max(0, min(heading.level - top, 5))
        css = f"pq-tree-item pq-lv{level}" + (" pq-current" if heading.start == current else "")
        items.append(
            f'<li class="{css}"><a href="#{heading_anchor(heading)}" data-pos="{heading.start}">'
            f"{esc(heading.text)}</a></li>"
        )
    return one_block(f'<nav class="pq-tree"><ul>{"".join(items)}</ul></nav>')


def document_header_html(document: Document) -> str:
    meta = document.meta
    facts = [
        ("地区", meta.region),
        ("类型", meta.kind),
        ("期间", meta.period),
        ("日期", meta.date),
        ("发布机构", meta.issuer),
        ("文件", meta.file),
        ("字数", f"{len(document.text):,}"),
    ]
    cells = "".join(f'<span class="pq-fact"><b>{esc(k)}</b>{esc(v)}</span>' for k, v in facts if v)
    aliases = (
        f'<div class="pq-aliases">别名：{esc("、".join(meta.aliases))}</div>'
        if meta.aliases
        else ""
    )
    return (
        f'<div class="pq-doc-header"><div class="pq-doc-name">{esc(meta.title or meta.file)}</div>'
        f'<div class="pq-facts">{cells}</div>{aliases}</div>'
    )


def document_viewer_html(
    document: Document, headings: Sequence[Heading], focus: Focus | None = None
) -> str:
    """The full text, headings marked (scroll targets for the tree), the focus highlighted.

    The focused passage gets ``pq-focus`` and its supporting sentence a ``<mark>``; the element
    ``#pq-focus-anchor`` at its start is what the viewer scrolls into view.
    """
    text = document.text
    focus = focus.clipped(len(text)) if focus else None
    spans = [
        Span(h.start, h.end, "span", f"pq-h pq-h{max(0, min(h.level, 5))}", heading_anchor(h))
        for h in headings
    ]
    banner = ""
    if focus is not None:
        quote = (focus.quote_start, focus.quote_end)
        spans.append(Span(focus.start, focus.end, "span", "pq-focus"))
        anchor_at = focus.quote_start if focus.quote_start is not None else focus.start
        spans.append(Span(anchor_at, anchor_at, anchor="pq-focus-anchor"))
        if None not in quote:
            spans.append(Span(focus.quote_start, focus.quote_end, "mark", "pq-quote"))
        page = document.meta.page_at(anchor_at)
        where = f"第 {page} 页、" if page is not None else ""
        if document.meta.is_ocr_page(page):
            where += "扫描件识别文字（可能有误字）、"
        banner = (
            f'<div class="pq-focus-note">已定位到{where}第 {focus.start:,}–{focus.end:,} 字的段落'
            "（浅色底），支持答案的句子以黄色标出。</div>"
        )
    # Not one_block: this goes into an HTML component (no Markdown), and the text keeps its
    # line breaks for ``white-space: pre-wrap``.
    return (
        f'<div class="pq-viewer-wrap">{document_header_html(document)}{banner}'
        f'<div class="pq-viewer">{_collapse_blank_lines(highlight(text, 0, spans)).strip()}'
        "</div></div>"
    )


def ordered_documents(documents: dict[str, Document]) -> list[str]:
    """Document names in display order: by region, then file name."""
    return sorted(documents, key=lambda name: (documents[name].meta.region, name))


def document_rows(documents: dict[str, Document]) -> list[list[str]]:
    """The documents table, one row per document in :func:`ordered_documents` order."""
    rows = []
    for name in ordered_documents(documents):
        document = documents[name]
        meta = document.meta
        rows.append(
            [
                meta.region,
                meta.title or name,
                meta.kind,
                meta.period,
                meta.date,
                meta.issuer,
                f"{len(document.text):,}",
                metadata_source(meta),
            ]
        )
    return rows


#: Chinese names of the metadata fields inference may leave unsettled.
_FIELD_NAMES = {"region": "地区", "kind": "类型", "period": "期间", "title": "标题", "date": "日期"}


def metadata_source(meta: DocumentMeta) -> str:
    """Where a document's metadata came from, and which inferred fields need checking: an
    inferred region or period is a guess the user should see, never a silent fact."""
    if not meta.inferred:
        return "清单"
    if not meta.uncertain:
        return "自动识别"
    fields = "、".join(_FIELD_NAMES.get(field, field) for field in meta.uncertain)
    return f"自动识别，待核实：{fields}"


DOCUMENT_COLUMNS = ["地区", "标题", "类型", "期间", "日期", "发布机构", "字数", "元数据"]
DOCUMENT_COLUMN_WIDTHS = ["13%", "33%", "9%", "8%", "8%", "12%", "5%", "12%"]
