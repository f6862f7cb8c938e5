"""Retrieval quality on a gold set: recall@k, MRR and nDCG per retrieval mode, plus search latency.

Every mode (dense, BM25, hybrid, and optionally the LangChain baseline) answers the same
answerable questions, and its ranked passages are scored by the same rule (``eval.metrics``), so
the numbers are comparable across modes and across chunkings. Unanswerable questions have no
evidence to find and are left out of retrieval metrics (they are scored on answers instead).

Run it with ``planqa eval GOLD.jsonl --baseline`` (see ui/cli.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from planqa.eval.baseline import BaselineRetriever
from planqa.eval.gold import GoldItem, LocatedEvidence, check_evidence, locate_pieces
from planqa.eval.metrics import (
    as_any_piece,
    first_full_rank,
    mean,
    ndcg_at_k,
    needs_all_evidence,
    passage_hits,
    percentile,
    recall_at_k,
    reciprocal_rank,
)
from planqa.index.search import HybridSearcher

DEFAULT_KS = (1, 3, 5, 10)
HYBRID = "hybrid"
#: Hybrid fusion without the region-aware lists: shows what region awareness adds.
PLAIN_HYBRID_MODE = "hybrid-plain"
DEFAULT_MODES = ("dense", "bm25", PLAIN_HYBRID_MODE, HYBRID)
BASELINE_MODE = "baseline"
#: Passages kept per question in the report, enough to see what outranked the evidence.
KEPT_PASSAGES = 5


@dataclass(frozen=True)
class Passage:
    """A ranked passage, whichever retriever produced it; ``chapter`` is "" for the baseline."""

    doc: str
    start: int
    end: int
    text: str
    chapter: str = ""
    score: float = 0.0


@dataclass(frozen=True)
class RankedPassage:
    doc: str
    start: int
    end: int
    chapter: str
    score: float
    covers: tuple[int, ...]  # evidence pieces this passage hits (indices into the gold evidence)


@dataclass(frozen=True)
class QuestionResult:
    """One question under one mode. ``first_hit_rank`` is None when the need is unmet in depth.

    ``piece_ranks`` gives, per evidence piece, the first rank covering it: for a compare miss it
    shows which side of the comparison retrieval lost.
    """

    id: str
    type: str
    question: str
    pieces: int
    first_hit_rank: int | None
    piece_ranks: tuple[int | None, ...]
    recall: dict[int, float]
    reciprocal_rank: float
    ndcg: float
    top: tuple[RankedPassage, ...]


@dataclass(frozen=True)
class MetricSummary:
    count: int
    recall: dict[int, float]
    mrr: float
    ndcg: float


@dataclass(frozen=True)
class ModeReport:
    mode: str
    overall: MetricSummary
    by_type: dict[str, MetricSummary]
    questions: tuple[QuestionResult, ...]


@dataclass(frozen=True)
class RetrievalReport:
    ks: tuple[int, ...]
    depth: int  # passages retrieved per question; MRR and nDCG are computed over this depth
    evaluated: int
    skipped_unanswerable: int
    modes: tuple[ModeReport, ...]

    def mode(self, name: str) -> ModeReport:
        for report in self.modes:
            if report.mode == name:
                return report
        evaluated = ", ".join(m.mode for m in self.modes)
        raise KeyError(f"mode {name!r} was not evaluated; evaluated: {evaluated}")

    def to_dict(self) -> dict:
        return asdict(self)


Retrieve = Callable[[str, int], list[Passage]]


# --------------------------------------------------------------------------- evaluation


def evaluate_retrieval(
    items: Sequence[GoldItem],
    searcher: HybridSearcher,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    modes: Sequence[str] = DEFAULT_MODES,
    baseline: BaselineRetriever | None = None,
    extra: Mapping[str, Retrieve] | None = None,
    ndcg_k: int = 10,
) -> RetrievalReport:
    """Score every answerable item under each mode (and the baseline, when given); ``extra``
    retrievers by name are scored the same way (a benchmark's fusion of two indexes)."""
    answerable = [item for item in items if item.answerable]
    check_evidence(answerable, searcher.documents)
    pieces = {item.id: locate_pieces(item, searcher.documents) for item in answerable}
    depth = min(max(*ks, ndcg_k), len(searcher.contents.chunks))
    retrievers: dict[str, Retrieve] = {mode: _searcher_retrieve(searcher, mode) for mode in modes}
    if baseline is not None:
        retrievers[BASELINE_MODE] = _baseline_retrieve(baseline)
    retrievers.update(extra or {})
    reports = tuple(
        _evaluate_mode(mode, retrieve, answerable, pieces, tuple(ks), depth, ndcg_k)
        for mode, retrieve in retrievers.items()
    )
    return RetrievalReport(tuple(ks), depth, len(answerable), len(items) - len(answerable), reports)


def _searcher_retrieve(searcher: HybridSearcher, mode: str) -> Retrieve:
    search_mode, region_aware = (HYBRID, False) if mode == PLAIN_HYBRID_MODE else (mode, None)

    def retrieve(query: str, k: int) -> list[Passage]:
        hits = searcher.search(query, k, mode=search_mode, region_aware=region_aware)
        return [
            Passage(h.chunk.doc, h.chunk.start, h.chunk.end, h.chunk.text, h.chunk.chapter, h.score)
            for h in hits
        ]

    return retrieve


def _baseline_retrieve(baseline: BaselineRetriever) -> Retrieve:
    def retrieve(query: str, k: int) -> list[Passage]:
        hits = baseline.search(query, k)
        return [Passage(h.doc, h.start, h.end, h.text, "", h.score) for h in hits]

    return retrieve


def _evaluate_mode(
    mode: str,
    retrieve: Retrieve,
    items: Sequence[GoldItem],
    pieces: dict[str, tuple[LocatedEvidence, ...]],
    ks: tuple[int, ...],
    depth: int,
    ndcg_k: int,
) -> ModeReport:
    results = tuple(
        score_question(item, pieces[item.id], retrieve(item.question, depth), ks, ndcg_k)
        for item in items
    )
    by_type: dict[str, list[QuestionResult]] = {}
    for result in results:
        by_type.setdefault(result.type, []).append(result)
    return ModeReport(
        mode=mode,
        overall=summarise(results, ks),
        by_type={kind: summarise(group, ks) for kind, group in by_type.items()},
        questions=results,
    )


def coverage_of(passage: Passage, pieces: Sequence[LocatedEvidence]) -> tuple[int, ...]:
    """Indices of the evidence pieces that ``passage`` hits."""
    return tuple(
        i
        for i, piece in enumerate(pieces)
        if passage_hits(
            passage.doc,
            passage.start,
            passage.end,
            passage.text,
            [(piece.doc, start, end) for start, end in piece.spans],
            [(piece.doc, piece.quote)],
        )
    )


def score_question(
    item: GoldItem,
    pieces: Sequence[LocatedEvidence],
    passages: Sequence[Passage],
    ks: Sequence[int],
    ndcg_k: int,
) -> QuestionResult:
    """All metrics of one ranked list; ``compare`` needs every piece, other types any one."""
    covers = [coverage_of(passage, pieces) for passage in passages]
    coverage: list = [frozenset(c) for c in covers]
    n_pieces = len(pieces)
    if not needs_all_evidence(item.type):
        coverage, n_pieces = as_any_piece(coverage), 1
    return QuestionResult(
        id=item.id,
        type=item.type,
        question=item.question,
        pieces=len(pieces),
        first_hit_rank=first_full_rank(coverage, n_pieces),
        piece_ranks=tuple(
            next((rank for rank, c in enumerate(covers, start=1) if i in c), None)
            for i in range(len(pieces))
        ),
        recall={k: recall_at_k(coverage, n_pieces, k) for k in ks},
        reciprocal_rank=reciprocal_rank(coverage, n_pieces),
        ndcg=ndcg_at_k(coverage, n_pieces, ndcg_k),
        top=tuple(
            RankedPassage(p.doc, p.start, p.end, p.chapter, p.score, c)
            for p, c in zip(passages[:KEPT_PASSAGES], covers, strict=False)
        ),
    )


def summarise(results: Sequence[QuestionResult], ks: Sequence[int]) -> MetricSummary:
    return MetricSummary(
        count=len(results),
        recall={k: mean(r.recall[k] for r in results) for k in ks},
        mrr=mean(r.reciprocal_rank for r in results),
        ndcg=mean(r.ndcg for r in results),
    )


def misses(report: RetrievalReport, mode: str = "hybrid", k: int = 5) -> list[QuestionResult]:
    """Questions whose evidence is not (all) in the top ``k`` of ``mode``: the tuning worklist."""
    return [
        q for q in report.mode(mode).questions if q.first_hit_rank is None or q.first_hit_rank > k
    ]


# --------------------------------------------------------------------------- formatting


def format_table(report: RetrievalReport) -> str:
    """A Markdown table: one row per mode, recall@k, MRR and nDCG columns (for the README)."""
    header = ["mode", "n", *(f"R@{k}" for k in report.ks), f"MRR@{report.depth}", "nDCG@10"]
    rows = [
        [
            m.mode,
            str(m.overall.count),
            *(_fmt(m.overall.recall[k]) for k in report.ks),
            _fmt(m.overall.mrr),
            _fmt(m.overall.ndcg),
        ]
        for m in report.modes
    ]
    return _markdown(header, rows)


def format_type_table(report: RetrievalReport, k: int = 5) -> str:
    """Recall@k by question type: one row per mode, one column per type (with its count)."""
    types = list(dict.fromkeys(kind for m in report.modes for kind in m.by_type))
    first = report.modes[0].by_type if report.modes else {}
    header = [f"R@{k}", *(f"{kind} ({first[kind].count})" for kind in types)]
    rows = [
        [m.mode, *(_fmt(m.by_type[kind].recall[k]) if kind in m.by_type else "-" for kind in types)]
        for m in report.modes
    ]
    return _markdown(header, rows)


def format_misses(report: RetrievalReport, mode: str = "hybrid", k: int = 5, top: int = 3) -> str:
    """One block per miss: id, type, first-hit rank, and the chapters of the top passages."""
    lines = []
    for q in misses(report, mode, k):
        rank = "none" if q.first_hit_rank is None else str(q.first_hit_rank)
        lines.append(f"{q.id} [{q.type}] first hit rank: {rank} | {q.question}")
        if q.pieces > 1:
            ranks = ", ".join("none" if r is None else str(r) for r in q.piece_ranks)
            lines.append(f"    evidence pieces first covered at ranks: {ranks}")
        for i, p in enumerate(q.top[:top], start=1):
            where = p.chapter or f"chars {p.start}-{p.end}"
            lines.append(f"    {i}. {p.doc} {where}{' (hit)' if p.covers else ''}")
    return "\n".join(lines) if lines else f"no misses at {mode}@{k}"


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"  # NaN check without importing math


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- latency


def search_latency(
    searcher: HybridSearcher,
    questions: Sequence[str],
    repeats: int = 3,
    *,
    k: int = 10,
    mode: str = "hybrid",
) -> dict[str, float]:
    """p50/p95/mean/max milliseconds of warm searches (one untimed pass first loads everything)."""
    if not questions or repeats < 1:
        raise ValueError("search_latency needs at least one question and repeats >= 1")
    k = min(k, len(searcher.contents.chunks))
    for question in questions:
        searcher.search(question, k, mode=mode)
    timings = []
    for _ in range(repeats):
        for question in questions:
            started = time.perf_counter()
            searcher.search(question, k, mode=mode)
            timings.append((time.perf_counter() - started) * 1000.0)
    return {
        "queries": float(len(timings)),
        "p50_ms": percentile(timings, 50),
        "p95_ms": percentile(timings, 95),
        "mean_ms": mean(timings),
        "max_ms": max(timings),
    }
