"""The LangChain baseline and the retrieval evaluation, end to end on the hash-embedder index."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from planqa.corpus.documents import Document
from planqa.corpus.loader import load_corpus
from planqa.eval.baseline import BASELINE_CHUNK_SIZE, BaselineRetriever, PlanqaEmbeddings
from planqa.eval.gold import BUNDLED_DEV_GOLD, Evidence, GoldItem, LocatedEvidence, load_gold
from planqa.eval.retrieval import (
    BASELINE_MODE,
    DEFAULT_MODES,
    Passage,
    evaluate_retrieval,
    format_misses,
    format_table,
    format_type_table,
    misses,
    score_question,
    search_latency,
)
from planqa.index.embedder import HashEmbedder
from planqa.index.search import HybridSearcher

DEV_GOLD = Path(os.environ.get("PLANQA_DEV_GOLD", str(BUNDLED_DEV_GOLD)))
needs_dev = pytest.mark.skipif(not DEV_GOLD.is_file(), reason=f"no dev gold set at {DEV_GOLD}")


@pytest.fixture(scope="module")
def documents(corpus_dir: Path) -> dict[str, Document]:
    return {d.name: d for d in load_corpus([corpus_dir]).documents}


@pytest.fixture(scope="module")
def baseline(documents: dict[str, Document]) -> BaselineRetriever:
    return BaselineRetriever(documents.values(), HashEmbedder())


# --------------------------------------------------------------------------- baseline


def test_baseline_chunks_round_trip_to_document_offsets(
    baseline: BaselineRetriever, documents: dict[str, Document]
) -> None:
    assert {c.metadata["source"] for c in baseline.chunks} == set(documents)
    for chunk in baseline.chunks:
        start, text = chunk.metadata["start_index"], chunk.page_content
        assert documents[chunk.metadata["source"]].text[start : start + len(text)] == text
        assert len(text) <= BASELINE_CHUNK_SIZE


def test_baseline_hits_carry_offsets_and_ascending_distances(
    baseline: BaselineRetriever, documents: dict[str, Document]
) -> None:
    found = baseline.search("高新技术企业", k=5)
    assert len(found) == 5
    for hit in found:
        assert documents[hit.doc].text[hit.start : hit.end] == hit.text
        assert hit.end == hit.start + len(hit.text)
    distances = [hit.score for hit in found]
    assert distances == sorted(distances)  # L2 distance: closest first


def test_baseline_k_larger_than_the_corpus_is_clamped(baseline: BaselineRetriever) -> None:
    assert len(baseline.search("规划", k=10_000)) == len(baseline.chunks)


def test_embeddings_adapter_uses_the_planqa_embedder() -> None:
    adapter = PlanqaEmbeddings(HashEmbedder(32))
    vectors = adapter.embed_documents(["海州区", "港闸经济开发区"])
    assert len(vectors) == 2 and all(len(v) == 32 for v in vectors)
    assert adapter.embed_query("海州区") == pytest.approx(vectors[0])
    assert isinstance(vectors[0][0], float)


# --------------------------------------------------------------------------- scoring one question


def test_score_question_compare_needs_both_documents() -> None:
    item = GoldItem(
        "c1",
        "谁更多？",
        ("甲",),
        (Evidence("a.txt", "甲有200家"), Evidence("b.txt", "乙有180家")),
        "compare",
        True,
    )
    pieces = (
        LocatedEvidence("a.txt", "甲有200家", ((10, 16),)),
        LocatedEvidence("b.txt", "乙有180家", ((50, 56),)),
    )
    passages = [
        Passage("a.txt", 0, 30, "……甲有200家……"),
        Passage("a.txt", 100, 130, "无关"),
        Passage("b.txt", 40, 70, "……乙有180家……"),
    ]
    result = score_question(item, pieces, passages, ks=(1, 3), ndcg_k=10)
    assert result.first_hit_rank == 3
    assert result.piece_ranks == (1, 3)
    assert result.recall == {1: 0.0, 3: 1.0}
    assert result.reciprocal_rank == pytest.approx(1 / 3)
    assert [p.covers for p in result.top] == [(0,), (), (1,)]


def test_score_question_other_types_need_any_piece() -> None:
    item = GoldItem(
        "f1", "多少？", ("1",), (Evidence("a.txt", "x"), Evidence("a.txt", "y")), "fact", True
    )
    pieces = (LocatedEvidence("a.txt", "x", ((5, 6),)), LocatedEvidence("a.txt", "y", ((90, 91),)))
    result = score_question(item, pieces, [Passage("a.txt", 80, 95, "..y..")], (1,), 10)
    assert result.first_hit_rank == 1
    assert result.ndcg == 1.0


# --------------------------------------------------------------------------- end to end


@needs_dev
def test_evaluate_retrieval_on_the_hash_index(
    hash_searcher: HybridSearcher, baseline: BaselineRetriever
) -> None:
    items = load_gold(DEV_GOLD)
    report = evaluate_retrieval(items, hash_searcher, baseline=baseline)
    answerable = sum(1 for i in items if i.answerable)
    assert report.evaluated == answerable
    assert report.skipped_unanswerable == len(items) - answerable
    assert [m.mode for m in report.modes] == [*DEFAULT_MODES, BASELINE_MODE]
    for mode in report.modes:
        summary = mode.overall
        assert summary.count == answerable
        values = [*summary.recall.values(), summary.mrr, summary.ndcg]
        assert all(0.0 <= v <= 1.0 for v in values), (mode.mode, values)
        recalls = [summary.recall[k] for k in report.ks]
        assert recalls == sorted(recalls)  # recall@k never falls as k grows
        assert sum(s.count for s in mode.by_type.values()) == answerable
        assert "unanswerable" not in mode.by_type
        for q in mode.questions:
            assert q.first_hit_rank is None or 1 <= q.first_hit_rank <= report.depth
    table = format_table(report)
    assert table.splitlines()[0].startswith("| mode |")
    for mode in ("dense", "bm25", "hybrid", BASELINE_MODE):
        assert f"| {mode} |" in table
    assert "compare" in format_type_table(report)
    missed = misses(report, "hybrid", 5)
    text = format_misses(report, "hybrid", 5)
    assert all(q.id in text for q in missed)
    assert report.to_dict()["modes"][0]["mode"] == "dense"


def test_search_latency_reports_warm_percentiles(hash_searcher: HybridSearcher) -> None:
    latency = search_latency(hash_searcher, ["海州区高新技术企业", "港闸开发区"], repeats=2)
    assert latency["queries"] == 4
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["max_ms"]
    assert not math.isnan(latency["mean_ms"])


# --------------------------------------------------------------------------- real model


@pytest.mark.slow
@needs_dev
def test_evaluate_retrieval_with_the_real_model(real_searcher: HybridSearcher) -> None:
    items = load_gold(DEV_GOLD)
    baseline = BaselineRetriever(real_searcher.documents.values(), real_searcher.embedder)
    report = evaluate_retrieval(items, real_searcher, baseline=baseline)
    for mode in report.modes:
        assert all(0.0 <= v <= 1.0 for v in mode.overall.recall.values())
    # a regression floor, far below current quality: hybrid must find most evidence in its top 10
    assert report.mode("hybrid").overall.recall[10] >= 0.6
