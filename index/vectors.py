"""Dense retrieval: FAISS inner product over L2-normalised vectors (inner product = cosine).

The index type follows the size (see ``choose_index_params`` for the measurements behind it):
exact ``IndexFlatIP`` below ``ann_min_vectors``, where a scan of every vector is still a few
milliseconds, and ``IndexHNSWFlat`` above, where it is not (a 1M x 384 scan takes ~60-120 ms on
two cores). HNSWFlat keeps the raw vectors, so ``vectors()`` and exact filtered search still work.

Filters: with the exact index the filter runs inside FAISS through an ID selector. With HNSW a
selective filter would starve the graph walk (most visited nodes are rejected), so a filter that
keeps at most ``exact_filter_rows`` rows is answered exactly over those rows' stored vectors, and a
broader one walks the graph with ``efSearch`` raised in proportion to what the filter removes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from planqa.corpus.errors import IndexStoreError

INDEX_KIND_FLAT = "IndexFlatIP"
INDEX_KIND_HNSW = "IndexHNSWFlat"
INDEX_KINDS = (INDEX_KIND_FLAT, INDEX_KIND_HNSW)
#: efSearch never goes above this, however selective a filter (cost grows ~linearly with it).
MAX_EF_SEARCH = 2048


@dataclass(frozen=True)
class IndexParams:
    """How the FAISS index is built and searched; recorded in the manifest."""

    kind: str = INDEX_KIND_FLAT
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 768
    exact_filter_rows: int = 30_000

    def to_dict(self) -> dict[str, Any]:
        if self.kind == INDEX_KIND_FLAT:
            return {"kind": self.kind}
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexParams:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if fields.get("kind", INDEX_KIND_FLAT) not in INDEX_KINDS:
            raise IndexStoreError(
                f"unknown vector index kind {fields.get('kind')!r}; this planqa builds "
                f"{', '.join(INDEX_KINDS)}; rebuild with `planqa index --rebuild`"
            )
        return cls(**fields)


def choose_index_params(
    n_vectors: int,
    ann_min_vectors: int,
    hnsw_m: int = 32,
    ef_construction: int = 80,
    ef_search: int = 768,
    exact_filter_rows: int = 30_000,
) -> IndexParams:
    """Exact below ``ann_min_vectors`` vectors, HNSW at or above (0 disables HNSW)."""
    if ann_min_vectors <= 0 or n_vectors < ann_min_vectors:
        return IndexParams(INDEX_KIND_FLAT, exact_filter_rows=exact_filter_rows)
    return IndexParams(INDEX_KIND_HNSW, hnsw_m, ef_construction, ef_search, exact_filter_rows)


@contextmanager
def _all_cores() -> Iterator[None]:
    """Building (HNSW inserts, bulk adds) parallelises well, unlike one search: use every core."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def set_search_threads(threads: int) -> None:
    """OpenMP threads FAISS uses. One query gains little from more, and on a busy 2-core machine
    idle OpenMP threads spinning against other work made a 100K exact search 5x slower."""
    faiss.omp_set_num_threads(threads)


def as_float32_rows(vectors: np.ndarray, dimension: int) -> np.ndarray:
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ValueError(f"expected vectors of shape (n, {dimension}), got {array.shape}")
    return array


def _new_index(dimension: int, params: IndexParams) -> faiss.Index:
    if params.kind == INDEX_KIND_HNSW:
        index = faiss.IndexHNSWFlat(dimension, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.ef_construction
        index.hnsw.efSearch = params.ef_search
        return index
    return faiss.IndexFlatIP(dimension)


def _bitmap_selector(allowed_rows: np.ndarray, size: int) -> tuple[faiss.IDSelector, np.ndarray]:
    """A bitmap selector (one bit per row): O(1) per test, cheap to build for any row count.

    Returns the packed bits too: FAISS keeps a raw pointer, so the array must outlive the search.
    """
    mask = np.zeros(size, dtype=bool)
    mask[allowed_rows] = True
    bits = np.packbits(mask, bitorder="little")
    return faiss.IDSelectorBitmap(size, faiss.swig_ptr(bits)), bits


class VectorIndex:
    def __init__(self, index: faiss.Index, params: IndexParams | None = None) -> None:
        self._index = index
        #: The last filter's bitmap selector, reused when the very same row array comes again.
        self._selector: tuple[np.ndarray, faiss.IDSelector, np.ndarray] | None = None
        kind = INDEX_KIND_HNSW if isinstance(index, faiss.IndexHNSW) else INDEX_KIND_FLAT
        self.params = params if params is not None and params.kind == kind else IndexParams(kind)
        if kind == INDEX_KIND_HNSW:
            self._index.hnsw.efSearch = self.params.ef_search

    @classmethod
    def build(
        cls, vectors: np.ndarray, dimension: int, params: IndexParams | None = None
    ) -> VectorIndex:
        params = params or IndexParams()
        index = _new_index(dimension, params)
        if len(vectors):
            with _all_cores():
                index.add(as_float32_rows(vectors, dimension))
        return cls(index, params)

    @property
    def kind(self) -> str:
        return self.params.kind

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def stored(self) -> np.ndarray:
        """A zero-copy (n, d) view of the raw vectors FAISS holds (flat codes or HNSW storage)."""
        if self.size == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        flat = self._index
        if isinstance(flat, faiss.IndexHNSW):
            flat = faiss.downcast_index(flat.storage)
        pointer = flat.get_xb()
        return faiss.rev_swig_ptr(pointer, self.size * self.dimension).reshape(
            self.size, self.dimension
        )

    def vectors(self) -> np.ndarray:
        """All stored vectors in row order (a copy); lets an update reuse them."""
        return np.array(self.stored(), dtype=np.float32, copy=True)

    def add(self, vectors: np.ndarray) -> None:
        """Append rows ``size``, ``size + 1``, ... (HNSW inserts them into the graph)."""
        if len(vectors):
            with _all_cores():
                self._index.add(as_float32_rows(vectors, self.dimension))
            self._selector = None

    def kept(self, rows: np.ndarray) -> VectorIndex:
        """A new index of only ``rows``, renumbered in that order. Flat: a copy. HNSW cannot
        delete from its graph, so it is rebuilt (minutes at 1M; see docs/scaling.md)."""
        if len(rows) == self.size and np.array_equal(rows, np.arange(self.size)):
            return self
        return VectorIndex.build(self.stored()[np.asarray(rows)], self.dimension, self.params)

    def search(
        self, query: np.ndarray, k: int, allowed_rows: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (row, cosine) pairs, optionally restricted to ``allowed_rows``."""
        k = min(k, self.size if allowed_rows is None else len(allowed_rows))
        if k <= 0:
            return []
        query_row = as_float32_rows(query[None, :], self.dimension)
        if self.kind == INDEX_KIND_HNSW:
            return self._search_hnsw(query_row, k, allowed_rows)
        params = None
        keep_alive = None
        if allowed_rows is not None and len(allowed_rows) * 2 < self.size:
            # Scoring only the allowed rows beats a full scan that tests every row's id.
            return exact_search(self.stored(), query_row[0], k, allowed_rows)
        if allowed_rows is not None:
            selector, keep_alive = _bitmap_selector(allowed_rows, self.size)
            params = faiss.SearchParameters(sel=selector)
        scores, rows = self._index.search(query_row, k, params=params)
        del keep_alive
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def _search_hnsw(
        self, query_row: np.ndarray, k: int, allowed_rows: np.ndarray | None
    ) -> list[tuple[int, float]]:
        ef = max(self.params.ef_search, k)
        if allowed_rows is None:
            params = faiss.SearchParametersHNSW(efSearch=ef)
            scores, rows = self._index.search(query_row, k, params=params)
            return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
        allowed_rows = np.asarray(allowed_rows, dtype=np.int64)
        if len(allowed_rows) <= self.params.exact_filter_rows:
            return exact_search(self.stored(), query_row[0], k, allowed_rows)
        widened = min(MAX_EF_SEARCH, math.ceil(ef * self.size / len(allowed_rows)))
        if self._selector is not None and self._selector[0] is allowed_rows:
            selector = self._selector[1]  # the same array again (e.g. "all rows but tombstones")
        else:
            selector, bits = _bitmap_selector(allowed_rows, self.size)
            self._selector = (allowed_rows, selector, bits)
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(widened, k))
        scores, rows = self._index.search(query_row, k, params=params)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, params: IndexParams | None = None, mmap: bool = False) -> VectorIndex:
        """``mmap`` maps the file read-only instead of reading it (instant loads; the page
        cache shares it between processes). An mmapped index cannot be added to."""
        flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
        try:
            return cls(faiss.read_index(str(path), flags), params)
        except RuntimeError as exc:
            raise IndexStoreError(
                f"{path}: the FAISS file is damaged ({str(exc).splitlines()[0]}); "
                "rebuild with `planqa index --rebuild`"
            ) from exc


def exact_search(
    vectors: np.ndarray, query: np.ndarray, k: int, rows: np.ndarray
) -> list[tuple[int, float]]:
    """Exact top ``k`` among ``rows`` of ``vectors`` by inner product, best first.

    FAISS scores the rows in place (2.5x faster than gathering them with numpy: 6 vs 16 ms for
    16K of 200K rows on this machine).

    >>> exact_search(np.eye(3, dtype=np.float32), np.array([0, 1, 0], np.float32), 1,
    ...              np.array([0, 1]))
    [(1, 1.0)]
    """
    rows = np.ascontiguousarray(np.sort(np.asarray(rows, dtype=np.int64)))
    k = min(k, len(rows))
    if k <= 0:
        return []
    base = np.ascontiguousarray(vectors, dtype=np.float32)
    query_row = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
    scores = np.empty((1, k), dtype=np.float32)
    labels = np.empty((1, k), dtype=np.int64)
    faiss.knn_inner_products_by_idx(
        faiss.swig_ptr(query_row),
        faiss.swig_ptr(base),
        faiss.swig_ptr(rows),
        base.shape[1],
        1,
        base.shape[0],
        len(rows),
        k,
        faiss.swig_ptr(scores),
        faiss.swig_ptr(labels),
        len(rows),
    )
    return [(int(r), float(s)) for r, s in zip(labels[0], scores[0], strict=True) if r >= 0]
