"""HTML for the web UI, built so that nothing from a document or a question can run as markup.

Every string that comes from a document, a question or a model goes through :func:`esc`
(``html.escape``) *before* any tag is added, and the only tags and attributes in the output are
the fixed ones written in this module. Highlighting therefore works on offsets, never by
searching and replacing inside HTML: the text is cut at span boundaries, each piece is escaped,
and the pieces are wrapped in our own ``<mark>``/``<span>`` tags.

Two more hazards come from where the HTML is shown:

* The chatbot runs messages through a Markdown renderer first. A message that is one HTML block
  (it starts with ``<div`` and has no blank line) is passed through untouched by Markdown, so
  ``*``, ``#`` or ``1.`` in a plan's text is not reformatted. Hence :func:`one_block`.
* Links to the source viewer carry their target in the query string (``?planqa_doc=…``), which
  works as a deep link in a new tab and is intercepted in-page by the UI's click bridge.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from planqa.corpus.documents import Document, DocumentMeta
from planqa.corpus.structure import Heading
from planqa.index.search import Hit
from planqa.rag.answer import NOT_FOUND, Answer, Citation

#: Query-string keys of a link that opens the source viewer (also read by the deep-link loader).
OPEN_KEYS = ("planqa_doc", "planqa_start", "planqa_end", "planqa_qs", "planqa_qe")
#: Closest passages shown under a refusal.
REFERENCE_PASSAGES = 3
#: Characters of a passage shown in a search result before "…" (the viewer has the rest).
SNIPPET_CHARS = 400

_MARKER_RE = re.compile(r"\[(\d{1,3})\]")
_BLANK_LINES_RE = re.compile(r"\n\s*\n")
_BLANK_RUN_RE = re.compile(r"\n[^\S\n]*(?:\n[^\S\n]*)+\n")


def esc(text: object) -> str:
    """Escape for element content *and* attribute values (quotes included)."""
    return html.escape("" if text is None else str(text), quote=True)


def text_html(text: str) -> str:
    """Escaped text whose line breaks survive (as ``<br>``), with runs of blank lines collapsed."""
    cleaned = _BLANK_LINES_RE.sub("\n", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    return esc(cleaned).replace("\n", "<br>")


def _line_breaks(markup: str) -> str:
    """Line breaks of already-escaped text as ``<br>``, blank lines collapsed."""
    return _BLANK_LINES_RE.sub("\n", markup.strip()).replace("\n", "<br>")


def _collapse_blank_lines(markup: str) -> str:
    """At most one empty line between paragraphs: extracted text is full of blank runs.
    Only whitespace between text is touched, so offsets and highlights are unaffected."""
    return _BLANK_RUN_RE.sub("\n\n", markup)


def one_block(markup: str) -> str:
    """Our HTML as a single line, so Markdown sees one raw HTML block and changes nothing."""
    return markup.replace("\r", "").replace("\n", "")


def chapter_path(chapter: str) -> str:
    """``a > b`` (the chunk format) as a readable path; empty for text outside any chapter."""
    parts = [part.strip() for part in chapter.split(">") if part.strip()]
    return " › ".join(parts)


def open_href(
    doc: str, start: int, end: int, quote_start: int | None = None, quote_end: int | None = None
) -> str:
    """A link target that opens the 文档 tab at a passage (escaped for an attribute)."""
    values = [doc, start, end]
    if quote_start is not None and quote_end is not None:
        values += [quote_start, quote_end]
    return esc("?" + urlencode(dict(zip(OPEN_KEYS, values, strict=False))))


# --------------------------------------------------------------------------- highlighting


@dataclass(frozen=True)
class Span:
    """A highlighted range of a document, in absolute offsets, and the fixed tag that wraps it."""

    start: int
    end: int
    tag: str = "mark"
    css: str = ""
    #: Zero-width element id placed at ``start`` (a scroll target).
    anchor: str | None = None


def highlight(text: str, offset: int, spans: Sequence[Span] = ()) -> str:
    """Escaped ``text`` (which starts at document offset ``offset``) with ``spans`` wrapped.

    The text is cut at every span boundary and each piece is wrapped in the tags of all spans
    covering it, so overlapping spans (a heading crossing a passage edge) still give well-formed
    HTML. Spans outside the text are clipped; line breaks are kept as they are (the viewer
    uses ``white-space: pre-wrap``).
    """
    end_offset = offset + len(text)
    clipped = [
        (max(s.start, offset), min(s.end, end_offset), s)
        for s in spans
        if s.end > offset and s.start < end_offset and s.end > s.start
    ]
    cuts = {offset, end_offset}
    for start, end, _ in clipped:
        cuts.update((start, end))
    anchors: dict[int, list[str]] = {}
    for span in spans:
        if span.anchor and offset <= span.start <= end_offset:
            anchors.setdefault(span.start, []).append(span.anchor)
            cuts.add(span.start)
    points = sorted(cuts)
    out: list[str] = []
    for left, right in zip(points, [*points[1:], None], strict=True):
        out.extend(f'<span id="{esc(a)}" class="pq-anchor"></span>' for a in anchors.get(left, ()))
        if right is None or right <= left:
            continue
        piece = esc(text[left - offset : right - offset])
        # Later spans wrap innermost, so the quote's <mark> shows over the passage background.
        for start, end, span in reversed(clipped):
            if start <= left and right <= end:
                css = f' class="{esc(span.css)}"' if span.css else ""
                piece = f"<{span.tag}{css}>{piece}</{span.tag}>"
        out.append(piece)
    return "".join(out)


# --------------------------------------------------------------------------- the chat


def question_html(question: str) -> str:
    return one_block(f'<div class="pq-q">{text_html(question)}</div>')


def pending_html(label: str = "正在检索相关文件…") -> str:
    return one_block(f'<div class="pq-pending">{esc(label)}</div>')


def draft_html(text: str) -> str:
    """An LLM answer while it is written: shown as plain text, flagged as not yet verified."""
    return one_block(
        '<div class="pq-answer"><div class="pq-draft-note">正在生成（引用核实前仅供预览）…</div>'
        f'<div class="pq-answer-text">{text_html(text)}</div></div>'
    )


def error_html(message: str) -> str:
    return one_block(f'<div class="pq-error">⚠ {text_html(message)}</div>')


def answer_text_html(text: str) -> str:
    """Escaped answer text with its [n] markers styled as citation references."""
    return _MARKER_RE.sub(r'<sup class="pq-ref">[\1]</sup>', text_html(text))


def passage_block(
    *,
    label: str,
    region: str,
    title: str,
    chapter: str,
    doc: str,
    start: int,
    end: int,
    text: str,
    quote: tuple[int, int] | None = None,
) -> str:
    """One expandable passage: where it is from, its text (the quote marked), a viewer link."""
    spans = [Span(*quote, css="pq-quote")] if quote and quote != (start, end) else []
    href = open_href(doc, start, end, *(quote or (None, None)))
    where = chapter_path(chapter) or "（正文）"
    return (
        '<details class="pq-cite">'
        f'<summary><span class="pq-n">{esc(label)}</span> '
        f'<span class="pq-region">{esc(region)}</span> · 《{esc(title)}》</summary>'
        f'<div class="pq-cite-body"><div class="pq-meta">章节：{esc(where)}</div>'
        f'<div class="pq-passage">{_line_breaks(highlight(text, start, spans))}</div>'
        f'<a class="pq-open" href="{href}" target="_blank" rel="noopener">'
        "在文档中查看原文 →</a></div>"
        "</details>"
    )


def citation_block(citation: Citation) -> str:
    return passage_block(
        label=f"[{citation.n}]",
        region=citation.region,
        title=citation.title,
        chapter=citation.chapter,
        doc=citation.doc,
        start=citation.start,
        end=citation.end,
        text=citation.text,
        quote=(citation.quote_start, citation.quote_end),
    )


def hit_block(hit: Hit, label: str) -> str:
    chunk = hit.chunk
    return passage_block(
        label=label,
        region=chunk.region,
        title=chunk.title,
        chapter=chunk.chapter,
        doc=chunk.doc,
        start=chunk.start,
        end=chunk.end,
        text=chunk.text,
    )


def is_refusal(answer: Answer) -> bool:
    return answer.abstained and answer.answer.strip() == NOT_FOUND


MODE_LABELS = {"extractive": "抽取式", "llm": "LLM"}


def answer_html(answer: Answer) -> str:
    """A whole answer: notice, text with [n] references, the citations, or the refusal state."""
    parts = ['<div class="pq-answer">']
    if answer.notice:
        parts.append(f'<div class="pq-notice">{text_html(answer.notice)}</div>')
    if is_refusal(answer):
        parts.append(f'<div class="pq-notfound">{esc(NOT_FOUND)}</div>')
        closest = answer.retrieved[:REFERENCE_PASSAGES]
        if closest:
            parts.append('<div class="pq-cites-title">最接近的段落（仅供参考，不构成答案）：</div>')
            parts.append('<div class="pq-cites pq-reference">')
            parts.extend(hit_block(hit, f"参考{i}") for i, hit in enumerate(closest, start=1))
            parts.append("</div>")
    else:
        parts.append(f'<div class="pq-answer-text">{answer_text_html(answer.answer)}</div>')
        if answer.uncited:
            items = "".join(f"<li>{text_html(s)}</li>" for s in answer.uncited)
            parts.append(
                f'<div class="pq-uncited">以下陈述没有引用支持，请谨慎参考：<ul>{items}</ul></div>'
            )
        if answer.citations:
            parts.append(
                f'<div class="pq-cites-title">引用来源（{len(answer.citations)} 条，点击展开）'
                "</div>"
            )
            parts.append('<div class="pq-cites">')
            parts.extend(citation_block(c) for c in answer.citations)
            parts.append("</div>")
    mode = MODE_LABELS.get(answer.mode, answer.mode)
    parts.append(f'<div class="pq-foot">{esc(mode)} · {answer.latency_ms / 1000:.2f} 秒</div>')
    parts.append("</div>")
    return one_block("".join(parts))


# --------------------------------------------------------------------------- precedent search


@dataclass
class DocGroup:
    doc: str
    title: str
    hits: list[tuple[int, Hit]] = field(default_factory=list)


@dataclass
class RegionGroup:
    region: str
    docs: list[DocGroup] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(d.hits) for d in self.docs)


def group_hits(hits: Iterable[Hit]) -> list[RegionGroup]:
    """Region → document → passages, each level ordered by its best-ranked passage.

    Ranks are kept (1 = best overall) so a reader still sees the global order inside groups.
    """
    regions: dict[str, RegionGroup] = {}
    docs: dict[str, DocGroup] = {}
    for rank, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        region = regions.setdefault(chunk.region, RegionGroup(chunk.region))
        if chunk.doc not in docs:
            docs[chunk.doc] = DocGroup(chunk.doc, chunk.title)
            region.docs.append(docs[chunk.doc])
        docs[chunk.doc].hits.append((rank, hit))
    return list(regions.values())


def _score_text(hit: Hit) -> str:
    parts = [f"得分 {hit.score:.4f}"]
    if hit.dense_score is not None:
        parts.append(f"语义 {hit.dense_score:.3f}")
    if hit.bm25_score is not None:
        parts.append(f"关键词 {hit.bm25_score:.2f}")
    return " · ".join(parts)


def search_results_html(hits: Sequence[Hit]) -> str:
    """Every hit, grouped by region and document, with scores and a link to the viewer."""
    if not hits:
        return one_block(
            '<div class="pq-empty">没有找到匹配的段落。可以换个说法，或放宽筛选条件。</div>'
        )
    out = ['<div class="pq-results">']
    for group in group_hits(hits):
        out.append(
            f'<section class="pq-group"><h3 class="pq-group-title">{esc(group.region)}'
            f'<span class="pq-count">{group.count} 条</span></h3>'
        )
        for doc in group.docs:
            out.append(
                f'<div class="pq-doc"><div class="pq-doc-title">《{esc(doc.title)}》'
                f'<span class="pq-file">{esc(doc.doc)}</span></div>'
            )
            for rank, hit in doc.hits:
                chunk = hit.chunk
                snippet = chunk.text.strip()
                if len(snippet) > SNIPPET_CHARS:
                    snippet = snippet[: SNIPPET_CHARS - 1] + "…"
                out.append(
                    '<div class="pq-hit">'
                    f'<div class="pq-hit-head"><span class="pq-rank">#{rank}</span>'
                    f'<span class="pq-hit-chapter">{esc(chapter_path(chunk.chapter) or "（正文）")}'
                    f'</span><span class="pq-score">{esc(_score_text(hit))}</span></div>'
                    f'<div class="pq-hit-text">{text_html(snippet)}</div>'
                    f'<a class="pq-open" href="{open_href(chunk.doc, chunk.start, chunk.end)}" '
                    'target="_blank" rel="noopener">在文档中查看 →</a></div>'
                )
            out.append("</div>")
        out.append("</section>")
    out.append("</div>")
    return one_block("".join(out))


def search_summary(hits: Sequence[Hit], requested: int, chapter_filter: str = "") -> str:
    """One line above the results (plain text: it goes into a Markdown component)."""
    if not hits:
        return "没有匹配的段落。"
    groups = group_hits(hits)
    docs = sum(len(g.docs) for g in groups)
    line = f"共 {len(hits)} 条段落，来自 {len(groups)} 个地区、{docs} 份文件"
    if chapter_filter:
        line += f"（章节包含“{chapter_filter}”）"
    elif len(hits) >= requested:
        line += f"（已显示前 {requested} 条，可调大“结果数”）"
    return line + "。"


# --------------------------------------------------------------------------- the document viewer


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
        banner = (
            f'<div class="pq-focus-note">已定位到第 {focus.start:,}–{focus.end:,} 字的段落'
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
