"""One contract, every vector store: FAISS and Milvus (through Milvus Lite), exact and HNSW.

Each backend must return the same ids in the same order with the same cosines as brute force,
filter by document and region, forget deleted ids, replace re-added ones, survive a reload, and
refuse vectors of the wrong dimension. Milvus is skipped cleanly when pymilvus is not installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from planqa.corpus.settings import Settings
from planqa.index.vectors import INDEX_KIND_FLAT, INDEX_KIND_HNSW, IndexParams
from planqa.index.vectorstore import FaissVectorStore, VectorRecord, VectorStore

DIM = 32
HAVE_MILVUS = importlib.util.find_spec("pymilvus") is not None and (
    importlib.util.find_spec("milvus_lite") is not None
)


def corpus(n: int = 120, seed: int = 5) -> tuple[list[VectorRecord], np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    regions = ["南通市", "连云港市海州区"]
    records = [
        VectorRecord(f"c{i:04d}", f"doc{i % 6}.txt", regions[i % 2], f"第{i}段") for i in range(n)
    ]
    return records, vectors


class Backend:
    """Creates a store and reopens it from what ``save`` left in a directory."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name = name
        self.tmp_path = tmp_path
        self.settings = Settings(
            embedding_model="hash",
            cache_dir=tmp_path,
            vector_backend="milvus" if name.startswith("milvus") else "faiss",
            milvus_uri=str(tmp_path / "milvus.db"),
            ann_min_vectors=1 if name.endswith("hnsw") else 0,
        )

    def create(self) -> VectorStore:
        if self.name.startswith("milvus"):
            from planqa.index.milvus_store import MilvusVectorStore

            return MilvusVectorStore.create(self.settings, DIM, 0)
        kind = INDEX_KIND_HNSW if self.name == "faiss-hnsw" else INDEX_KIND_FLAT
        # efSearch well above the corpus size: HNSW is exact at this scale, as the contract needs.
        return FaissVectorStore.empty(DIM, IndexParams(kind, 16, 200, 512, exact_filter_rows=0))

    def reopen(self, store: VectorStore) -> VectorStore:
        from planqa.index.vectorstore import load_vector_store

        directory = self.tmp_path / "saved"
        directory.mkdir(exist_ok=True)
        store.save(directory)
        description = store.describe()
        if self.name.startswith("milvus"):
            store.client.close()  # type: ignore[attr-defined]
        return load_vector_store(directory, description, self.settings)


NEEDS_MILVUS = pytest.mark.skipif(not HAVE_MILVUS, reason="pip install 'planqa[milvus]'")
BACKENDS = [
    "faiss-flat",
    "faiss-hnsw",
    pytest.param("milvus", marks=NEEDS_MILVUS),
    pytest.param("milvus-hnsw", marks=NEEDS_MILVUS),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path)


def brute_force(
    records: list[VectorRecord], vectors: np.ndarray, query: np.ndarray, k: int, keep: Callable
) -> list[tuple[str, float]]:
    rows = [i for i, r in enumerate(records) if keep(r)]
    scores = vectors[rows] @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [(records[rows[i]].id, float(scores[i])) for i in order]


def assert_same(got: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-5)


def test_add_then_search_returns_brute_force_order_and_cosines(backend: Backend) -> None:
    records, vectors = corpus()
    store = backend.create()
    store.add(records, vectors)
    assert store.size == len(records) and store.dimension == DIM
    for query in vectors[:5] * 0.9 + vectors[5:10] * 0.1:
        query = query / np.linalg.norm(query)
        assert_same(store.search(query, 10), brute_force(records, vectors, query, 10, bool))


def test_filters_by_document_and_by_region(backend: Backend) -> None:
    records, vectors = corpus()
    store = backend.create()
    store.add(records, vectors)
    query = vectors[7]
    by_doc = store.search(query, 5, docs={"doc1.txt", "doc4.txt"})
    assert_same(
        by_doc,
        brute_force(records, vectors, query, 5, lambda r: r.doc in {"doc1.txt", "doc4.txt"}),
    )
    by_region = store.search(query, 5, regions={"连云港市海州区"})
    assert_same(
        by_region, brute_force(records, vectors, query, 5, lambda r: r.region == "连云港市海州区")
    )
    both = store.search(query, 50, docs={"doc1.txt", "doc2.txt"}, regions={"连云港市海州区"})
    assert {i for i, _ in both} == {r.id for r in records if r.doc == "doc1.txt"}
    assert store.search(query, 5, docs=set()) == []


def test_delete_and_readd_replace_rows(backend: Backend) -> None:
    records, vectors = corpus()
    store = backend.create()
    store.add(records, vectors)
    store.delete([r.id for r in records if r.doc == "doc0.txt"])
    live = [r.doc != "doc0.txt" for r in records]
    assert store.size == sum(live)
    assert not {i for i, _ in store.search(vectors[0], 20)} & {
        r.id for r in records if r.doc == "doc0.txt"
    }
    # Re-adding an existing id replaces its vector (an updated chunk), not duplicates it.
    store.add([records[1]], vectors[2:3])
    assert store.size == sum(live)
    top_two = store.search(vectors[2], 2)
    assert {i for i, _ in top_two} == {records[1].id, records[2].id}
    assert [s for _, s in top_two] == pytest.approx([1.0, 1.0], abs=1e-5)
    np.testing.assert_allclose(store.get_vectors([records[1].id]), vectors[2:3], atol=1e-6)
    assert sorted(store.ids()) == sorted(r.id for r, ok in zip(records, live, strict=True) if ok)


def test_persists_across_reload(backend: Backend) -> None:
    records, vectors = corpus()
    store = backend.create()
    store.add(records, vectors)
    expected = store.search(vectors[3], 10, regions={"南通市"})
    reopened = backend.reopen(store)
    assert reopened.size == len(records)
    assert_same(reopened.search(vectors[3], 10, regions={"南通市"}), expected)
    np.testing.assert_allclose(reopened.get_vectors(["c0003"]), vectors[3:4], atol=1e-6)


def test_wrong_dimension_is_refused_with_the_fix(backend: Backend) -> None:
    records, vectors = corpus(4)
    store = backend.create()
    with pytest.raises(ValueError, match=r"dimension 32.*rebuild"):
        store.add(records, np.ones((4, DIM + 1), dtype=np.float32))
    store.add(records, vectors)
    with pytest.raises(ValueError, match="dimension 32"):
        store.search(np.ones(DIM - 1, dtype=np.float32), 3)
