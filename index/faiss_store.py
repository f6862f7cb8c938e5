"""The FAISS vector store (``vector_backend = "faiss"``, the default).

It keeps its file inside each index version, so it is as atomic as the rest of the version: a
build writes a new FAISS file beside the old one and the switch of ``CURRENT`` publishes both.
Exact search below ``ann_min_vectors`` vectors, HNSW above (see index/vectors.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import starmap
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.vector_base import VectorRecord, check_batch, check_dimension
from planqa.index.vectors import INDEX_KIND_HNSW, IndexParams, VectorIndex, choose_index_params

VECTORS_FILE = "vectors.faiss"
ROWS_FILE = "vector_rows.json"

#: HNSW cannot delete from its graph: deleted rows stay as tombstones (skipped by every search)
#: until they are this share of the index, then the graph is rebuilt without them.
MAX_TOMBSTONE_SHARE = 0.1


class FaissVectorStore:
    """A FAISS index (exact or HNSW by size) plus the id, document and region of every row.

    Rows are the live FAISS positions in order, so they are the chunk rows of the index version
    (kept chunks first, in their old order, then new ones). Deleting from the exact index copies
    the remaining vectors (cheap); deleting from HNSW leaves a tombstone, so changing a document
    in a 1M-vector index costs seconds instead of a rebuild.
    """

    backend = "faiss"

    def __init__(self, index: VectorIndex, records: Sequence[VectorRecord | None]) -> None:
        if index.size != len(records):
            raise IndexStoreError(
                f"the FAISS index holds {index.size} vectors but {len(records)} chunk rows; "
                "rebuild with `planqa index --rebuild`"
            )
        self.index = index
        #: Per FAISS position; None marks a tombstone.
        self._records: list[VectorRecord | None] = list(records)
        self._reindex()

    def _reindex(self) -> None:
        self._live = np.asarray(
            [p for p, r in enumerate(self._records) if r is not None], dtype=np.int64
        )
        self._row_of_position = np.full(len(self._records), -1, dtype=np.int64)
        self._row_of_position[self._live] = np.arange(len(self._live))
        self._position_of = {r.id: p for p, r in enumerate(self._records) if r is not None}
        self._scope_cache: dict[tuple[Any, Any], np.ndarray] = {}

    @classmethod
    def empty(cls, dimension: int, params: IndexParams | None = None) -> FaissVectorStore:
        return cls(VectorIndex.build(np.zeros((0, dimension), np.float32), dimension, params), [])

    @property
    def dimension(self) -> int:
        return self.index.dimension

    @property
    def size(self) -> int:
        return len(self._live)

    @property
    def tombstones(self) -> int:
        return self.index.size - len(self._live)

    # ------------------------------------------------------------------ reading
    def rows_for(
        self, docs: Collection[str] | None = None, regions: Collection[str] | None = None
    ) -> np.ndarray | None:
        """Rows passing the filters (cached: a region filter repeats across queries)."""
        if docs is None and regions is None:
            return None
        key = (
            None if docs is None else frozenset(docs),
            None if regions is None else frozenset(regions),
        )
        rows = self._scope_cache.get(key)
        if rows is None:
            doc_set, region_set = key
            live = [self._records[p] for p in self._live]
            rows = np.asarray(
                [
                    row
                    for row, record in enumerate(live)
                    if record is not None
                    and (doc_set is None or record.doc in doc_set)
                    and (region_set is None or record.region in region_set)
                ],
                dtype=np.int64,
            )
            if len(self._scope_cache) > 256:
                self._scope_cache.clear()
            self._scope_cache[key] = rows
        return rows

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        docs: Collection[str] | None = None,
        regions: Collection[str] | None = None,
    ) -> list[tuple[str, float]]:
        check_dimension(query[None, :], self.dimension, "query")
        found = self.search_rows(query, k, self.rows_for(docs, regions))
        live_ids = self._live_ids()
        return [(live_ids[row], score) for row, score in found]

    def search_rows(
        self, query: np.ndarray, k: int, allowed_rows: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """(row, cosine) pairs; the filter given as rows (the searcher has them already)."""
        if self.tombstones == 0:
            return self.index.search(query, k, allowed_rows)
        positions = self._live if allowed_rows is None else self._live[allowed_rows]
        found = self.index.search(query, k, positions)
        return [(int(self._row_of_position[p]), score) for p, score in found]

    def _live_ids(self) -> list[str]:
        return [r.id for r in self._records if r is not None]

    def ids(self) -> list[str]:
        return self._live_ids()

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        positions = [self._position_of[i] for i in ids]
        return np.array(self.index.stored()[positions], dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            **self.index.params.to_dict(),
            "metric": "inner_product",
            "normalized": True,
        }

    # ------------------------------------------------------------------ writing
    def add(self, records: Sequence[VectorRecord], vectors: np.ndarray) -> None:
        vectors = check_batch(records, vectors, self.dimension)
        known = [r.id for r in records if r.id in self._position_of]
        if known:
            self.delete(known)
        self.index.add(vectors)
        self._records.extend(records)
        self._reindex()

    def delete(self, ids: Collection[str]) -> None:
        doomed = {self._position_of[i] for i in ids if i in self._position_of}
        if not doomed:
            return
        for position in doomed:
            self._records[position] = None
        dead = self.index.size - (len(self._live) - len(doomed))
        if self.index.kind == INDEX_KIND_HNSW and dead <= MAX_TOMBSTONE_SHARE * self.index.size:
            self._reindex()
            return
        self._compact()

    def _compact(self) -> None:
        """Drop tombstones: the exact index copies its live vectors, HNSW rebuilds its graph."""
        keep = np.asarray([p for p, r in enumerate(self._records) if r is not None], np.int64)
        self.index = self.index.kept(keep)
        self._records = [self._records[p] for p in keep]
        self._reindex()

    def reindexed(self, params: IndexParams) -> FaissVectorStore:
        """The same rows under another index kind (e.g. exact -> HNSW once the corpus grew)."""
        index = VectorIndex.build(self.index.stored()[self._live], self.dimension, params)
        return FaissVectorStore(index, [self._records[p] for p in self._live])

    def save(self, directory: Path) -> None:
        self.index.save(directory / VECTORS_FILE)
        rows = {
            "ids": [None if r is None else r.id for r in self._records],
            "docs": [None if r is None else r.doc for r in self._records],
            "regions": [None if r is None else r.region for r in self._records],
        }
        (directory / ROWS_FILE).write_bytes(orjson.dumps(rows))

    @classmethod
    def load(
        cls, directory: Path, params: IndexParams | None = None, mmap: bool = False
    ) -> FaissVectorStore:
        index = VectorIndex.load(directory / VECTORS_FILE, params, mmap=mmap)
        try:
            rows = orjson.loads((directory / ROWS_FILE).read_bytes())
            columns = zip(rows["ids"], rows["docs"], rows["regions"], strict=True)
            records = [None if r.id is None else r for r in starmap(VectorRecord, columns)]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexStoreError(
                f"{directory / ROWS_FILE}: unreadable ({exc}); "
                "rebuild with `planqa index --rebuild`"
            ) from exc
        return cls(index, records)


def index_params_for(n_vectors: int, settings: Settings) -> IndexParams:
    """The FAISS index kind and parameters the settings give ``n_vectors`` vectors."""
    return choose_index_params(
        n_vectors,
        settings.ann_min_vectors,
        settings.hnsw_m,
        settings.hnsw_ef_construction,
        settings.hnsw_ef_search,
        settings.exact_filter_rows,
    )
