"""HTML for the 检索 tab: passages grouped by region and document, with scores and viewer links.

The same escaping rules as :mod:`ui.render` (every string escaped before a tag is added);
grouping keeps each passage's overall rank, so a reader still sees the global order inside
the groups a planner reads by.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from planqa.index.search import Hit
from planqa.ui.render import chapter_path, esc, one_block, open_href, text_html

#: Characters of a passage shown in a search result before "…" (the viewer has the rest).
SNIPPET_CHARS = 400


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
