"""End-to-end evaluation: ask every gold question through the real pipeline and score everything.

Retrieval metrics (``eval.retrieval``) say whether the evidence was found; evaluators also need
to know whether the *answer* was right, whether planqa refused when it should (and only then),
whether its citations point at the evidence, and how long it took. ``run_evaluation`` asks each
question once through ``Pipeline.ask`` (models loaded once) and scores the answer, its citations
and its retrieved passages with the same rules as the retrieval evaluation, so the numbers agree.

With ``baseline=True`` the plain LangChain pipeline (``eval.baseline``) answers the same
questions in the same process and is scored identically, so every report shows planqa beside
the thing a user would otherwise build.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from planqa.corpus.errors import InputError
from planqa.eval.baseline import BaselineRetriever, baseline_answer
from planqa.eval.gold import GoldItem, LocatedEvidence, check_evidence, locate_pieces
from planqa.eval.metrics import mean, percentile, question_correct, ratio
from planqa.eval.retrieval import DEFAULT_KS, KEPT_PASSAGES, Passage, coverage_of, score_question
from planqa.index.search import Hit
from planqa.rag.answer import Answer
from planqa.rag.pipeline import Pipeline

PLANQA = "planqa"
BASELINE = "baseline"
#: nDCG is reported at this depth (and MRR over the same list).
NDCG_K = 10


@dataclass(frozen=True)
class RetrievedPassage:
    """A ranked passage; ``covers`` lists the evidence pieces it hits (indices into the gold)."""

    rank: int
    doc: str
    start: int
    end: int
    chapter: str
    score: float
    text: str
    covers: tuple[int, ...] = ()


@dataclass(frozen=True)
class CitedPassage:
    """A citation; ``hit`` says whether it contains or overlaps any evidence piece."""

    n: int
    doc: str
    start: int
    end: int
    chapter: str
    text: str
    quote_start: int
    quote_end: int
    hit: bool


@dataclass(frozen=True)
class Verdict:
    """The automatic verdicts on one answer (None where a verdict does not apply).

    ``correct``: see ``eval.metrics.question_correct``. Retrieval and citation verdicts exist for
    answerable questions only: an unanswerable one has no evidence to find or cite.
    """

    correct: bool
    false_abstention: bool
    citation_hit: bool | None
    citations_hitting: int
    first_hit_rank: int | None
    piece_ranks: tuple[int | None, ...]
    recall: dict[int, float]
    reciprocal_rank: float | None
    ndcg: float | None


@dataclass(frozen=True)
class QuestionOutcome:
    """One gold question answered by one system: what it said, cited, read, and how it scored."""

    id: str
    question: str
    type: str
    answerable: bool
    gold_answers: tuple[str, ...]
    answer: str
    abstained: bool
    citations: tuple[CitedPassage, ...]
    retrieved: tuple[RetrievedPassage, ...]  # the top KEPT_PASSAGES of the scored ranking
    latency_ms: float
    verdict: Verdict
    notice: str | None = None


@dataclass(frozen=True)
class Summary:
    """Metrics of a group of questions. NaN means "no question in the group to measure it on".

    ``accuracy`` counts every question (answerable answered right, unanswerable refused);
    ``answer_accuracy``, ``false_abstention_rate``, the retrieval and citation metrics count the
    answerable ones; ``abstention_accuracy`` the unanswerable ones. ``citation_precision`` is the
    share of all citations given on answerable questions that hit evidence (pooled, so a question
    with five citations weighs five times one with one).
    """

    questions: int
    answerable: int
    accuracy: float
    answer_accuracy: float
    abstention_accuracy: float
    false_abstention_rate: float
    citation_hit: float
    citation_precision: float
    recall: dict[int, float]
    mrr: float
    ndcg: float
    latency_p50_ms: float
    latency_p95_ms: float


@dataclass(frozen=True)
class SystemResult:
    system: str
    overall: Summary
    by_type: dict[str, Summary]
    questions: tuple[QuestionOutcome, ...]


@dataclass(frozen=True)
class EvalRun:
    """A whole evaluation. ``depth`` passages were scored per question; planqa's answerer read
    the first ``answer_passages`` of them (see ``_ranking``)."""

    run_id: str
    created: str
    mode: str
    ks: tuple[int, ...]
    depth: int
    answer_passages: int
    planqa: SystemResult
    baseline: SystemResult | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def systems(self) -> tuple[SystemResult, ...]:
        return (self.planqa,) if self.baseline is None else (self.planqa, self.baseline)


# --------------------------------------------------------------------------- running


def run_evaluation(
    items: Sequence[GoldItem],
    pipeline: Pipeline,
    *,
    mode: str = "extractive",
    baseline: bool = False,
    progress: bool = True,
    ks: Sequence[int] = DEFAULT_KS,
    run_id: str | None = None,
) -> EvalRun:
    """Answer and score every item with planqa (and the LangChain baseline when asked).

    Evidence quotes are checked against the indexed documents first: one unlocatable quote would
    make its question a silent zero, so the whole run stops with an InputError listing them all.
    """
    if not ks or min(ks) < 1:
        raise InputError(f"ks={tuple(ks)} must be one or more depths of at least 1, e.g. 1 3 5 10")
    documents = pipeline.searcher.documents
    check_evidence([item for item in items if item.answerable], documents)
    pieces = {item.id: locate_pieces(item, documents) for item in items if item.answerable}
    ks = tuple(sorted(set(ks)))
    depth = min(max(*ks, NDCG_K), len(pipeline.searcher.contents.chunks))
    pipeline.answerer(mode)  # fail on a bad mode before the first question, not after loading
    created = datetime.now(UTC)

    def ask_planqa(item: GoldItem) -> QuestionOutcome:
        answer = pipeline.ask(item.question, mode=mode, id=item.id)
        ranked = _ranking(pipeline, answer, depth)
        return _planqa_outcome(item, pieces.get(item.id, ()), answer, ranked, ks)

    planqa = _run_system(PLANQA, items, ask_planqa, ks, progress)
    baseline_result = None
    if baseline:
        retriever = BaselineRetriever(documents.values(), pipeline.searcher.embedder)

        def ask_baseline(item: GoldItem) -> QuestionOutcome:
            return _baseline_outcome(item, pieces.get(item.id, ()), retriever, depth, ks)

        baseline_result = _run_system(BASELINE, items, ask_baseline, ks, progress)
    settings = pipeline.settings
    return EvalRun(
        run_id=run_id or f"{created:%Y%m%d-%H%M%S}-{mode}",
        created=created.isoformat(timespec="seconds"),
        mode=mode,
        ks=ks,
        depth=depth,
        answer_passages=settings.answer_passages,
        planqa=planqa,
        baseline=baseline_result,
        settings={
            "embedding_model": settings.embedding_model,
            "index_dir": str(settings.resolved_index_dir),
            "answer_passages": settings.answer_passages,
            "abstain_threshold": settings.abstain_threshold,
            "llm_provider": settings.llm_provider,
            "llm_model": settings.llm_model,
        },
    )


def _run_system(
    system: str,
    items: Sequence[GoldItem],
    ask: Callable[[GoldItem], QuestionOutcome],
    ks: tuple[int, ...],
    progress: bool,
) -> SystemResult:
    bar = tqdm(items, desc=system, unit="q", file=sys.stderr, disable=not progress, leave=False)
    outcomes = tuple(ask(item) for item in bar)
    by_type: dict[str, list[QuestionOutcome]] = {}
    for outcome in outcomes:
        by_type.setdefault(outcome.type, []).append(outcome)
    return SystemResult(
        system=system,
        overall=summarise_outcomes(outcomes, ks),
        by_type={kind: summarise_outcomes(group, ks) for kind, group in by_type.items()},
        questions=outcomes,
    )


def _ranking(pipeline: Pipeline, answer: Answer, depth: int) -> list[Hit]:
    """The passages the answerer read, continued to ``depth`` by the same search.

    ``answer.retrieved`` holds only ``answer_passages`` (6) hits, too few for recall@10 and
    nDCG@10. The same resolved question is searched again ``depth`` deep and the passages not yet
    read are appended, so ranks 1..6 are exactly what the answerer saw and the rest is what it
    would have seen next (hybrid search ranks do not depend on k, so nothing is reordered).
    """
    ranked = list(answer.retrieved)
    if len(ranked) >= depth:
        return ranked[:depth]
    query = answer.details.get("resolved_question") or answer.question
    seen = {hit.chunk.id for hit in ranked}
    deeper = pipeline.retriever.hits(query, depth)
    ranked += [hit for hit in deeper if hit.chunk.id not in seen]
    return ranked[:depth]


# --------------------------------------------------------------------------- scoring


def _planqa_outcome(
    item: GoldItem,
    pieces: Sequence[LocatedEvidence],
    answer: Answer,
    ranked: Sequence[Hit],
    ks: tuple[int, ...],
) -> QuestionOutcome:
    passages = [
        Passage(h.chunk.doc, h.chunk.start, h.chunk.end, h.chunk.text, h.chunk.chapter, h.score)
        for h in ranked
    ]
    cited = [
        (c.n, Passage(c.doc, c.start, c.end, c.text, c.chapter), c.quote_start, c.quote_end)
        for c in answer.citations
    ]
    return score_outcome(
        item,
        pieces,
        answer.answer,
        answer.abstained,
        cited,
        passages,
        answer.latency_ms,
        ks,
        notice=answer.notice,
    )


def _baseline_outcome(
    item: GoldItem,
    pieces: Sequence[LocatedEvidence],
    retriever: BaselineRetriever,
    depth: int,
    ks: tuple[int, ...],
) -> QuestionOutcome:
    """Retrieve ``depth`` passages; answer with the top one's first sentences and cite it."""
    started = time.perf_counter()
    hits = retriever.search(item.question, depth)
    top = hits[0]
    start, end = baseline_answer(top.text)
    text = top.text[start:end]
    latency_ms = (time.perf_counter() - started) * 1000.0
    passages = [Passage(h.doc, h.start, h.end, h.text, "", h.score) for h in hits]
    cited = [(1, passages[0], top.start + start, top.start + end)]
    return score_outcome(item, pieces, text, False, cited, passages, latency_ms, ks)


def score_outcome(
    item: GoldItem,
    pieces: Sequence[LocatedEvidence],
    answer: str,
    abstained: bool,
    cited: Sequence[tuple[int, Passage, int, int]],
    ranked: Sequence[Passage],
    latency_ms: float,
    ks: tuple[int, ...],
    *,
    notice: str | None = None,
) -> QuestionOutcome:
    """Score one system's answer to one item; ``cited`` is ``(n, passage, quote_start, quote_end)``.

    Retrieval metrics come from ``eval.retrieval.score_question`` and citation hits from its
    ``coverage_of``: one passage-hit rule for retrieval, citations and both systems.
    """
    answerable = item.answerable
    citations = tuple(
        CitedPassage(
            n,
            p.doc,
            p.start,
            p.end,
            p.chapter,
            p.text,
            qs,
            qe,
            hit=answerable and bool(coverage_of(p, pieces)),
        )
        for n, p, qs, qe in cited
    )
    scored = score_question(item, pieces, ranked, ks, NDCG_K) if answerable else None
    covers = [coverage_of(p, pieces) if answerable else () for p in ranked[:KEPT_PASSAGES]]
    hitting = sum(c.hit for c in citations)
    verdict = Verdict(
        correct=question_correct(answer, abstained, item.answers, answerable),
        false_abstention=answerable and abstained,
        citation_hit=(hitting > 0) if answerable else None,
        citations_hitting=hitting,
        first_hit_rank=scored.first_hit_rank if scored else None,
        piece_ranks=scored.piece_ranks if scored else (),
        recall=dict(scored.recall) if scored else {},
        reciprocal_rank=scored.reciprocal_rank if scored else None,
        ndcg=scored.ndcg if scored else None,
    )
    return QuestionOutcome(
        id=item.id,
        question=item.question,
        type=item.type,
        answerable=answerable,
        gold_answers=item.answers,
        answer=answer,
        abstained=abstained,
        citations=citations,
        retrieved=tuple(
            RetrievedPassage(rank, p.doc, p.start, p.end, p.chapter, p.score, p.text, c)
            for rank, (p, c) in enumerate(zip(ranked, covers, strict=False), start=1)
        ),
        latency_ms=latency_ms,
        verdict=verdict,
        notice=notice,
    )


def summarise_outcomes(outcomes: Sequence[QuestionOutcome], ks: Iterable[int]) -> Summary:
    """Aggregate per-question verdicts; see ``Summary`` for which questions each metric counts."""
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]
    citations = [c for o in answerable for c in o.citations]
    latencies = [o.latency_ms for o in outcomes]
    return Summary(
        questions=len(outcomes),
        answerable=len(answerable),
        accuracy=mean(float(o.verdict.correct) for o in outcomes),
        answer_accuracy=mean(float(o.verdict.correct) for o in answerable),
        abstention_accuracy=mean(float(o.abstained) for o in unanswerable),
        false_abstention_rate=mean(float(o.abstained) for o in answerable),
        citation_hit=mean(float(bool(o.verdict.citation_hit)) for o in answerable),
        citation_precision=ratio(sum(c.hit for c in citations), len(citations)),
        recall={k: mean(o.verdict.recall[k] for o in answerable) for k in ks},
        mrr=mean(o.verdict.reciprocal_rank or 0.0 for o in answerable),
        ndcg=mean(o.verdict.ndcg or 0.0 for o in answerable),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
    )
