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

This module holds the rules and the pieces every tab uses (escaping, highlighting, a cited
passage, viewer links) and the chat's HTML; the 检索 results are in :mod:`ui.render_search`,
the 文档 viewer in :mod:`ui.render_documents`, the 评测 view in :mod:`ui.render_review`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from planqa.index.search import Hit
from planqa.rag.answer import NOT_FOUND, Answer, Citation

#: Query-string keys of a link that opens the source viewer (also read by the deep-link loader).
OPEN_KEYS = ("planqa_doc", "planqa_start", "planqa_end", "planqa_qs", "planqa_qe")
#: Closest passages shown under a refusal.
REFERENCE_PASSAGES = 3

_MARKER_RE = re.compile(r"\[(\d{1,3})\]")
_BLANK_LINES_RE = re.compile(r"\n\s*\n")


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
    page: str = "",
    preview: bool = False,
) -> str:
    """One expandable passage: where it is from (with its page in a paged file: 「第12页」 or
    「第12页（扫描件识别）」), its text (the quote marked), a viewer link."""
    spans = [Span(*quote, css="pq-quote")] if quote and quote != (start, end) else []
    href = open_href(doc, start, end, *(quote or (None, None)))
    where = chapter_path(chapter) or "（正文）"
    if page:
        where = f"{where} · {page}"
    # Closed references of one document look alike: the chapter and first line tell them apart.
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    glimpse = (
        f'<span class="pq-glimpse">{esc(where)}：{esc(first_line[:PREVIEW_CHARS])}…</span>'
        if preview
        else ""
    )
    return (
        '<details class="pq-cite">'
        f'<summary><span class="pq-n">{esc(label)}</span> '
        f'<span class="pq-region">{esc(region)}</span> · 《{esc(title)}》{glimpse}</summary>'
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
        page=citation.page_label,
    )


def hit_block(hit: Hit, label: str, *, preview: bool = False) -> str:
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
        preview=preview,
    )


def is_refusal(answer: Answer) -> bool:
    return answer.abstained and answer.answer.strip() == NOT_FOUND


#: How much of a reference's first line its closed header shows.
PREVIEW_CHARS = 40
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
            parts.extend(
                hit_block(hit, f"参考{i}", preview=True) for i, hit in enumerate(closest, start=1)
            )
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
