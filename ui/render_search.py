"""HTML for the 检索 tab: the matching passages grouped by region and document, a count table,
highlighted terms and relevance in words.

The same escaping rules as :mod:`ui.render` (every string escaped before a tag is added; the
term highlights are cut from the raw text and each piece escaped). Researchers read 高/中/低,
not RRF scores, so the numbers go into a ``title`` tooltip. Grouping keeps each passage's place
in the chosen order, so a reader still sees that order inside the groups a planner reads by.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from planqa.index.search import Hit
from planqa.ui.precedents import LEVEL_LOW, Precedent, PrecedentResult, match_spans, summary_table
from planqa.ui.render import chapter_path, esc, one_block, open_href, text_html

#: Characters of a passage shown in a search result before "…" (the viewer has the rest).
SNIPPET_CHARS = 400
LEVEL_CSS = {"高": "pq-rel-high", "中": "pq-rel-mid", "低": "pq-rel-low"}
LEVEL_HELP = {
    "高": "包含完整检索词",
    "中": "包含全部检索词（不连续）",
    "低": "相关段落：不含全部检索词",
}


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
    """Region → document → passages, each level ordered by its first passage in ``hits``.

    Ranks are kept (1 = first in the list) so a reader still sees the order inside groups.
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


def doc_anchor(doc: str) -> str:
    """The element id of a document's group (the count table links to it)."""
    return "pq-doc-" + hashlib.sha1(doc.encode("utf-8")).hexdigest()[:10]


def score_tooltip(precedent: Precedent) -> str:
    """The numbers behind 高/中/低, for the hover title (and for the curious)."""
    hit = precedent.hit
    parts = [LEVEL_HELP[precedent.level]]
    if precedent.matched:
        parts.append("匹配：" + "、".join(precedent.matched))
    if hit.retriever == "hybrid":
        parts.append(f"综合得分 {hit.score:.4f}")
    if hit.dense_score is not None:
        parts.append(f"语义 {hit.dense_score:.3f}")
    if hit.bm25_score is not None:
        parts.append(f"关键词 {hit.bm25_score:.2f}")
    return " · ".join(parts)


def snippet_html(text: str, terms: Sequence[str]) -> str:
    """The passage (cut at :data:`SNIPPET_CHARS`) escaped, with the terms in ``<mark>``."""
    snippet = text.strip()
    if len(snippet) > SNIPPET_CHARS:
        snippet = snippet[: SNIPPET_CHARS - 1] + "…"
    out: list[str] = []
    last = 0
    for start, end in match_spans(snippet, terms):
        out.append(text_html(snippet[last:start]) if start > last else "")
        out.append(f'<mark class="pq-term">{text_html(snippet[start:end])}</mark>')
        last = end
    out.append(text_html(snippet[last:]))
    return "".join(out)


def _hit_html(number: int, precedent: Precedent, terms: Sequence[str]) -> str:
    chunk = precedent.hit.chunk
    level = precedent.level
    return (
        f'<div class="pq-hit">'
        f'<div class="pq-hit-head"><span class="pq-rank">#{number}</span>'
        f'<span class="pq-hit-chapter">{esc(chapter_path(chunk.chapter) or "（正文）")}</span>'
        f'<span class="pq-rel {LEVEL_CSS[level]}" title="{esc(score_tooltip(precedent))}">'
        f"相关度：{esc(level)}</span></div>"
        f'<div class="pq-hit-text">{snippet_html(chunk.text, terms)}</div>'
        f'<a class="pq-open" href="{open_href(chunk.doc, chunk.start, chunk.end)}" '
        'target="_blank" rel="noopener">在文档中查看 →</a></div>'
    )


def _groups_html(items: Sequence[Precedent], terms: Sequence[str], first: int) -> list[str]:
    by_id = {p.hit.chunk.id: p for p in items}
    out: list[str] = []
    for group in group_hits(p.hit for p in items):
        out.append(
            f'<section class="pq-group"><h3 class="pq-group-title">{esc(group.region)}'
            f'<span class="pq-count">{group.count} 条</span></h3>'
        )
        for doc in group.docs:
            anchor = doc_anchor(doc.doc) if first == 1 else ""
            id_attr = f' id="{anchor}"' if anchor else ""
            out.append(
                f'<div class="pq-doc"{id_attr}><div class="pq-doc-title">《{esc(doc.title)}》'
                f'<span class="pq-file">{esc(doc.doc)}</span></div>'
            )
            for rank, hit in doc.hits:
                out.append(_hit_html(first + rank - 1, by_id[hit.chunk.id], terms))
            out.append("</div>")
        out.append("</section>")
    return out


def count_table_html(result: PrecedentResult) -> str:
    """Region × document × period with the number of matching passages, linked to the list."""
    rows = summary_table(result)
    if not rows:
        return ""
    shown = {p.hit.chunk.doc for p in result.matches[: result.limit]}
    out = [
        '<table class="pq-count-table"><thead><tr><th>地区</th><th>文件</th><th>期间</th>'
        "<th>段落数</th></tr></thead><tbody>"
    ]
    for region, doc, title, period, count in rows:
        name = f"《{esc(title)}》"
        if doc in shown:
            name = f'<a href="#{doc_anchor(doc)}">{name}</a>'
        out.append(
            f"<tr><td>{esc(region)}</td><td>{name}</td><td>{esc(period or '—')}</td>"
            f"<td>{count}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def search_results_html(result: PrecedentResult) -> str:
    """The count table, the matches grouped by region and document, then any related ones."""
    shown = result.matches[: result.limit]
    if not shown and not result.related:
        return one_block(
            '<div class="pq-empty">没有段落包含这些检索词。可以换个说法、放宽筛选条件，'
            "或勾选“同时显示相关段落”。</div>"
        )
    out = ['<div class="pq-results">']
    # Segments first: a verbatim 人才公寓 is one mark, not 人才 and 公寓 side by side.
    terms = [*result.segments, *result.terms]
    if shown:
        out.append(count_table_html(result))
        out.extend(_groups_html(shown, terms, 1))
    if result.related:
        out.append('<h3 class="pq-related-title">相关段落（不含全部检索词，按相关程度排列）</h3>')
        out.extend(_groups_html(result.related, terms, len(shown) + 1))
    out.append("</div>")
    return one_block("".join(out))


def search_summary(result: PrecedentResult, chapter_filter: str = "") -> str:
    """One line above the results (plain text: it goes into a Markdown component). It counts
    only the passages that contain the terms, so the number can be quoted."""
    terms = "、".join(result.terms)
    related = sum(1 for p in result.related if p.level == LEVEL_LOW)
    if not result.matches:
        line = f"没有段落包含检索词“{terms}”"
    else:
        line = (
            f"共 {len(result.matches)} 条段落，来自 {len(result.regions)} 个地区、"
            f"{len(result.documents)} 份文件（包含检索词“{terms}”"
        )
        if chapter_filter:
            line += f"，章节包含“{chapter_filter}”"
        line += "）"
        if len(result.matches) > result.limit:
            line += f"；已显示前 {result.limit} 条，可调大“最多显示”"
    if result.scope_regions:
        line += f"；范围：{'、'.join(result.scope_regions)}（问题中提到的地区）"
    if related:
        line += f"；另列出 {related} 条相关段落"
    return line + "。"
