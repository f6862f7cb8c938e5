"""Precedent search: the passages that actually say X, counted truly, the rest only on request.

A ranked search always returns ``k`` passages, so a term found in 3 passages used to be shown as
「共 20 条」 with 17 passages that merely resemble the query. A researcher collecting "every plan
that says 人才公寓" needs the opposite: every passage that contains it, and a count they can cite.

The relevance floor here is lexical and uses the index's own normalisation and tokenizer:

* the query is split into **segments** at spaces and punctuation, and each segment into **terms**
  by the index's tokenizer (the longest tokens; parts of a longer token, single characters and
  question words such as 哪些 are dropped; region names the query mentions become its scope);
* a passage **matches** when every segment occurs verbatim in its normalised text
  (``normalise_text``: full width, case and 繁体 folded) — relevance 「高」; a segment longer
  than a keyword (a phrase, a sentence) may instead have all its terms anywhere — 「中」;
* candidates are the rows where BM25 (the index's tokens) scores any term, so the check never
  scans the whole corpus, then the substring check decides.

No semantic threshold is used: the hash embedder of tests and the real model give cosines on
different scales, and a floor that depends on the model would make the count unrepeatable. The
ranked search's other passages are 「相关段落」 (relevance 「低」), shown only when asked for.

Pure (no gradio): the 检索 tab renders and exports a :class:`PrecedentResult`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from planqa.corpus.documents import DocumentMeta
from planqa.index.search import Hit, HybridSearcher
from planqa.index.text_tokenizer import normalise_text

#: Passages ranked by the search before the floor: the order of the matches, and the related.
RANK_POOL = 300
LEVEL_HIGH, LEVEL_MID, LEVEL_LOW = "高", "中", "低"
LEVEL_ORDER = {LEVEL_HIGH: 0, LEVEL_MID: 1, LEVEL_LOW: 2}
SORTS = ("relevance", "region", "period")
#: A segment this short is a keyword and must occur verbatim (人才公寓 is not 人才…公寓);
#: a longer one (a phrase or a sentence) matches when all its terms occur.
KEYWORD_CHARS = 6
_SEGMENT_SPLIT = re.compile(r"[\s,，。.;；:：、!！?？()（）《》“”\"'『』「」]+")
#: Words of a question, not of the subject: a passage need not contain them.
QUESTION_WORDS = frozenset(
    "哪个 哪些 哪里 哪儿 什么 如何 怎么 怎样 多少 是否 有没有 有无 关于 以及 还是 请问 规划了"
    " 提出 提到 哪 地区 城市 区县".split()
)


@dataclass(frozen=True)
class Precedent:
    """One passage with why it is listed: the terms it contains and the relevance in words."""

    hit: Hit
    level: str
    matched: tuple[str, ...]
    meta: DocumentMeta | None = None

    @property
    def direct(self) -> bool:
        return self.level != LEVEL_LOW


@dataclass(frozen=True)
class PrecedentResult:
    """Every matching passage (``matches``, the true count) and the related ones if asked."""

    query: str
    terms: tuple[str, ...]
    segments: tuple[str, ...]
    matches: tuple[Precedent, ...]
    related: tuple[Precedent, ...] = ()
    limit: int = 50
    scope_regions: tuple[str, ...] = field(default=())

    @property
    def shown(self) -> list[Precedent]:
        """What the page lists and the downloads hold: matches up to ``limit``, then related."""
        return [*self.matches[: self.limit], *self.related]

    @property
    def regions(self) -> list[str]:
        return list(dict.fromkeys(p.hit.chunk.region for p in self.matches))

    @property
    def documents(self) -> list[str]:
        return list(dict.fromkeys(p.hit.chunk.doc for p in self.matches))


def query_segments(text: str) -> list[str]:
    """The query's pieces between spaces and punctuation, normalised like passages are."""
    return [s for s in (normalise_text(p) for p in _SEGMENT_SPLIT.split(text)) if s.strip()]


def query_terms(text: str, tokenizer) -> list[str]:
    """The words a matching passage must contain: the index tokenizer's longest tokens.

    jieba's search mode emits 集成电路 *and* 集成, 电路; only the longest is kept, so a passage
    must say 集成电路. Single characters (的, 了) and question words are dropped; a query of
    nothing else keeps its segments, so 「区」 still finds 区.
    """
    tokens = []
    for segment in query_segments(text):
        for token in tokenizer.tokenize(segment):
            if token in QUESTION_WORDS or (len(token) < 2 and not token.isalnum()):
                continue
            if len(token) < 2 and not token.isascii():
                continue
            tokens.append(token)
    unique = list(dict.fromkeys(tokens))
    longest = [t for t in unique if not any(t != o and t in o for o in unique)]
    return longest or query_segments(text)


def _level(norm_text: str, segments: dict[str, list[str]]) -> str:
    """高 when every segment occurs verbatim; 中 when each does, or (a segment longer than
    :data:`KEYWORD_CHARS`, i.e. a phrase or sentence) has all its terms; else 低."""
    if not segments:
        return LEVEL_LOW
    verbatim = [segment in norm_text for segment in segments]
    if all(verbatim):
        return LEVEL_HIGH
    for found, (segment, terms) in zip(verbatim, segments.items(), strict=True):
        if found:
            continue
        if len(segment) <= KEYWORD_CHARS or not terms or not all(t in norm_text for t in terms):
            return LEVEL_LOW
    return LEVEL_MID


def find_precedents(
    searcher: HybridSearcher,
    query: str,
    *,
    region: str | None = None,
    doc: str | None = None,
    chapter: str = "",
    mode: str = "hybrid",
    limit: int = 50,
    include_related: bool = False,
    sort: str = "relevance",
) -> PrecedentResult:
    """Every passage within the filters that contains the query's terms, ordered by ``sort``.

    Raises the searcher's InputError for an unusable query, region or document.
    """
    analysed = searcher.analyse_query(query)
    named = list(analysed.regions) if not region and not doc else []
    subject = searcher.region_names.without_names(analysed.text) if named else analysed.text
    terms = query_terms(subject, searcher.tokenizer) if subject.strip() else []
    segments = query_segments(subject) if subject.strip() else []
    if not terms:  # the query was only region names: they are the subject then
        named = []
        terms = query_terms(analysed.text, searcher.tokenizer)
        segments = query_segments(analysed.text)
    by_segment = {seg: query_terms(seg, searcher.tokenizer) for seg in segments}
    chunks = searcher.contents.chunks
    scope = searcher.allowed_rows(region or None, doc or None)
    if named:
        scope = np.unique(np.concatenate([searcher.allowed_rows(name) for name in named]))
    pool = min(len(chunks), RANK_POOL)
    ranked = searcher.search(analysed, pool, region=region or None, doc=doc or None, mode=mode)
    if named:
        allowed = set(scope.tolist())
        ranked = [h for h in ranked if _row(searcher, h) in allowed]
    rank_of = {h.chunk.id: i for i, h in enumerate(ranked)}
    bm25 = searcher.contents.bm25.scores(
        [tok for term in terms for tok in searcher.tokenizer.tokenize(term)]
    )
    candidates = np.flatnonzero(bm25 > 0)
    if scope is not None:
        candidates = np.intersect1d(candidates, scope)
    ranked_by_id = {h.chunk.id: h for h in ranked}
    matches: list[Precedent] = []
    for row in candidates.tolist():
        chunk = chunks[row]
        if chapter and chapter not in chunk.chapter:
            continue
        norm = normalise_text(chunk.text)
        level = _level(norm, by_segment)
        if level == LEVEL_LOW:
            continue
        hit = ranked_by_id.get(chunk.id) or Hit(
            chunk, float(bm25[row]), "bm25", bm25_score=float(bm25[row])
        )
        matched = tuple(t for t in terms if t in norm)
        matches.append(Precedent(hit, level, matched, _meta(searcher, chunk.doc)))
    matches.sort(
        key=lambda p: (
            LEVEL_ORDER[p.level],
            rank_of.get(p.hit.chunk.id, math.inf),
            -(p.hit.bm25_score or 0.0),
        )
    )
    related: list[Precedent] = []
    if include_related:
        direct_ids = {p.hit.chunk.id for p in matches}
        for hit in ranked:
            if hit.chunk.id in direct_ids or (chapter and chapter not in hit.chunk.chapter):
                continue
            norm = normalise_text(hit.chunk.text)
            matched = tuple(t for t in terms if t in norm)
            related.append(Precedent(hit, LEVEL_LOW, matched, _meta(searcher, hit.chunk.doc)))
            if len(related) >= limit:
                break
    return PrecedentResult(
        query=query,
        terms=tuple(terms),
        segments=tuple(segments),
        matches=tuple(sort_precedents(matches, sort)),
        related=tuple(sort_precedents(related, sort)),
        limit=limit,
        scope_regions=tuple(named),
    )


def sort_precedents(items: Sequence[Precedent], sort: str) -> list[Precedent]:
    """``items`` (in relevance order) by region, by period (newest first) or unchanged.

    Sorting is stable, so passages of one region or period keep their relevance order.
    """
    if sort == "region":
        return sorted(items, key=lambda p: (p.hit.chunk.region, p.hit.chunk.doc))
    if sort == "period":
        ordered = sorted(items, key=lambda p: (p.hit.chunk.region, p.hit.chunk.doc))
        return sorted(ordered, key=lambda p: _period_key(p), reverse=True)
    return list(items)


def _period_key(precedent: Precedent) -> tuple[str, str]:
    meta = precedent.meta
    return ((meta.period if meta else "") or "", (meta.date if meta else "") or "")


def _meta(searcher: HybridSearcher, doc: str) -> DocumentMeta | None:
    document = searcher.documents.get(doc)
    return document.meta if document is not None else None


def _row(searcher: HybridSearcher, hit: Hit) -> int:
    return searcher._row_of_id.get(hit.chunk.id, -1)


def summary_table(result: PrecedentResult) -> list[tuple[str, str, str, str, int]]:
    """(region, document file, title, period, count) of the matches, in list order: the table
    a researcher reads first ("which plans say it, how often")."""
    counts: dict[str, int] = {}
    first: dict[str, Precedent] = {}
    for p in result.matches:
        counts[p.hit.chunk.doc] = counts.get(p.hit.chunk.doc, 0) + 1
        first.setdefault(p.hit.chunk.doc, p)
    return [
        (
            p.hit.chunk.region,
            doc,
            p.hit.chunk.title,
            (p.meta.period if p.meta else "") or "",
            counts[doc],
        )
        for doc, p in first.items()
    ]


def match_spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Where ``terms`` occur in ``text`` (original offsets), found on the normalised text.

    Each character is normalised alone (so offsets map back one to one); spaces are skipped,
    as ``normalise_text`` drops layout spaces. Overlapping matches are merged.
    """
    norm_chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            continue
        for piece in normalise_text(ch):
            norm_chars.append(piece)
            origin.append(i)
    norm = "".join(norm_chars)
    spans: list[tuple[int, int]] = []
    for term in terms:
        if not term:
            continue
        start = norm.find(term)
        while start >= 0:
            end = start + len(term)
            spans.append((origin[start], origin[end - 1] + 1))
            start = norm.find(term, start + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
