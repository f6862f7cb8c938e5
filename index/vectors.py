"""Dense retrieval: a FAISS inner-product index over L2-normalised vectors (inner product = cosine).

Filters run inside FAISS through an ID selector, so a region filter returns the best ``k`` of that
region rather than whatever survives from a global top ``k``.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from corpus.errors import IndexStoreError

INDEX_KIND_FLAT = "IndexFlatIP"


def as_float32_rows(vectors: np.ndarray, dimension: int) -> np.ndarray:
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ValueError(f"expected vectors of shape (n, {dimension}), got {array.shape}")
    return array


class VectorIndex:
    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray, dimension: int) -> VectorIndex:
        index = faiss.IndexFlatIP(dimension)
        if len(vectors):
            index.add(as_float32_rows(vectors, dimension))
        return cls(index)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def vectors(self) -> np.ndarray:
        """All stored vectors in row order; lets an update reuse them instead of re-embedding."""
        if self.size == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._index.reconstruct_n(0, self.size)

    def search(
        self, query: np.ndarray, k: int, allowed_rows: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (row, cosine) pairs, optionally restricted to ``allowed_rows``."""
        k = min(k, self.size if allowed_rows is None else len(allowed_rows))
        if k <= 0:
            return []
        params = None
        if allowed_rows is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed_rows, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
        scores, rows = self._index.search(
            as_float32_rows(query[None, :], self.dimension), k, params=params
        )
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        try:
            return cls(faiss.read_index(str(path)))
        except RuntimeError as exc:
            raise IndexStoreError(
                f"{path}: the FAISS file is damaged ({str(exc).splitlines()[0]}); "
                "rebuild with `planqa index --rebuild`"
            ) from exc
