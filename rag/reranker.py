"""Optional second-stage reranking with a sentence-transformers ``CrossEncoder``.

A cross-encoder reads question and passage together, so it can judge paraphrases that neither
embeddings nor BM25 rank well. None ships offline, so it is off by default and planqa's default
ranking must stand without it; users who have one (e.g. ``BAAI/bge-reranker-base`` in their
Hugging Face cache, or a local directory) set ``reranker_model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from planqa.corpus.errors import ModelError
from planqa.corpus.settings import Settings
from planqa.index.search import Hit


class PairScorer(Protocol):
    """What reranking needs of a model: one relevance score per (question, passage) pair."""

    def predict(self, pairs: list[tuple[str, str]], **kwargs: object) -> Sequence[float]: ...


class CrossEncoderReranker:
    """Loads the model on first use; reorders hits by its score, which then becomes their score."""

    def __init__(self, settings: Settings, model: PairScorer | None = None) -> None:
        self._settings = settings
        self._model = model

    @property
    def model(self) -> PairScorer:
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> PairScorer:
        from sentence_transformers import CrossEncoder

        name = self._settings.reranker_model or ""
        local = Path(name).expanduser()
        try:
            return CrossEncoder(
                str(local) if local.exists() else name,
                device="cpu",
                local_files_only=not self._settings.allow_model_download,
            )
        except Exception as exc:  # hub, file and config errors all mean "cannot use this model"
            raise ModelError(
                f"cannot load reranker {name!r} ({type(exc).__name__}: {exc}). Give a local "
                "CrossEncoder directory or a model already in the Hugging Face cache, or unset "
                "PLANQA_RERANKER_MODEL"
            ) from exc

    def rerank(self, query: str, hits: list[Hit], k: int) -> list[Hit]:
        """The top ``k`` of ``hits`` by the model's score; ties keep search's order, so the
        result is deterministic."""
        if not hits:
            return []
        scores = self.model.predict(
            [(query, f"{hit.chunk.chapter}\n{hit.chunk.text}") for hit in hits],
            batch_size=self._settings.embed_batch_size,
            show_progress_bar=False,
        )
        order = sorted(range(len(hits)), key=lambda i: (-float(scores[i]), i))
        return [replace(hits[i], score=float(scores[i]), retriever="rerank") for i in order[:k]]


def make_reranker(settings: Settings) -> CrossEncoderReranker | None:
    """The configured reranker, or None: without ``reranker_model`` search's order stands."""
    return CrossEncoderReranker(settings) if settings.reranker_model else None
