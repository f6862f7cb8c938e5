"""Lexical retrieval: bm25s over jieba tokens, stored as .npy arrays and JSON (no pickle).

bm25s precomputes per-token score columns in a sparse matrix, so a query costs one sparse row
sum over the whole corpus; filters are a boolean mask over that score vector.
"""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np

from index.ranking import top_k_indices


class BM25Index:
    def __init__(self, retriever: bm25s.BM25, size: int) -> None:
        self._retriever = retriever
        self.size = size

    @classmethod
    def build(cls, tokenized_corpus: list[list[str]]) -> BM25Index:
        retriever = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
        # bm25s needs at least one token per document; an empty chunk scores zero via a filler.
        corpus = [tokens or ["\u0000"] for tokens in tokenized_corpus]
        retriever.index(corpus, show_progress=False)
        return cls(retriever, len(corpus))

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every document; unknown query tokens contribute nothing."""
        if not query_tokens or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(query_tokens), dtype=np.float32)

    def idf(self, token: str) -> float:
        """Lucene idf of a token from the index's own document frequencies (0 if unseen).

        The score matrix is column-compressed by token, so a token's document frequency is the
        length of its column; no second pass over the corpus is needed.
        """
        token_id = self._retriever.vocab_dict.get(token)
        if token_id is None or self.size == 0:
            return 0.0
        indptr = self._retriever.scores["indptr"]
        df = int(indptr[token_id + 1] - indptr[token_id])
        return float(np.log(1 + (self.size - df + 0.5) / (df + 0.5)))

    def search(
        self, query_tokens: list[str], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (row, score) pairs with a positive score, restricted to ``allowed`` rows."""
        return rank_scores(self.scores(query_tokens), k, allowed)

    def save(self, directory: Path) -> None:
        self._retriever.save(str(directory), allow_pickle=False, show_progress=False)

    @classmethod
    def load(cls, directory: Path, size: int, mmap: bool = False) -> BM25Index:
        retriever = bm25s.BM25.load(
            str(directory), mmap=mmap, allow_pickle=False, show_progress=False
        )
        return cls(retriever, size)


def rank_scores(
    scores: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """Best ``k`` positive scores among ``allowed`` rows (all rows when None), best first."""
    if allowed is not None:
        restricted = np.zeros_like(scores)
        restricted[allowed] = scores[allowed]
        scores = restricted
    return [(int(i), float(scores[i])) for i in top_k_indices(scores, k) if scores[i] > 0]
