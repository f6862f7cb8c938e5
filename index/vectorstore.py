"""Where chunk vectors live: the factory that turns a backend name into a store.

The searcher only needs ``search``; the builder also adds, deletes and re-reads vectors (the
contract is ``VectorStore`` in index/vector_base.py). Each backend is one module and one entry of
``BACKENDS``, so adding one touches no caller: ``new_vector_store`` makes the configured one for a
build, ``load_vector_store`` opens the one a version's manifest names.

FAISS (default, index/faiss_store.py) keeps its file inside each index version, so it is as atomic
as the rest of the version. Milvus (``vector_backend = "milvus"``, index/milvus_store.py and
docs/scaling.md) keeps the vectors in a collection that any number of planqa processes share; its
module is imported only when it is used.

The names of the backend modules are re-exported here, so callers keep one import for stores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.faiss_store import (
    MAX_TOMBSTONE_SHARE,
    ROWS_FILE,
    VECTORS_FILE,
    FaissVectorStore,
    index_params_for,
)
from planqa.index.vector_base import VectorRecord, VectorStore, check_dimension
from planqa.index.vectors import IndexParams

__all__ = [
    "BACKENDS",
    "MAX_TOMBSTONE_SHARE",
    "ROWS_FILE",
    "VECTORS_FILE",
    "VECTOR_BACKENDS",
    "FaissVectorStore",
    "VectorBackend",
    "VectorRecord",
    "VectorStore",
    "check_dimension",
    "index_params_for",
    "load_vector_store",
    "new_vector_store",
]


@dataclass(frozen=True)
class VectorBackend:
    """How to make a backend's store for a build and how to open one a manifest describes."""

    #: (settings, dimension, expected number of vectors) -> an empty store.
    create: Callable[[Settings, int, int], VectorStore]
    #: (version directory, manifest["vector_index"], settings, mmap) -> the stored store.
    open: Callable[[Path, dict[str, Any], Settings | None, bool], VectorStore]


def _create_faiss(settings: Settings, dimension: int, n_vectors: int) -> VectorStore:
    return FaissVectorStore.empty(dimension, index_params_for(n_vectors, settings))


def _open_faiss(
    directory: Path, description: dict[str, Any], settings: Settings | None, mmap: bool
) -> VectorStore:
    return FaissVectorStore.load(directory, IndexParams.from_dict(description), mmap=mmap)


def _create_milvus(settings: Settings, dimension: int, n_vectors: int) -> VectorStore:
    from planqa.index.milvus_store import MilvusVectorStore

    return MilvusVectorStore.create(settings, dimension, n_vectors)


def _open_milvus(
    directory: Path, description: dict[str, Any], settings: Settings | None, mmap: bool
) -> VectorStore:
    from planqa.index.milvus_store import MilvusVectorStore

    return MilvusVectorStore.open(directory, description, settings)  # a server maps nothing


#: Backend name (``Settings.vector_backend``, ``manifest["vector_index"]["backend"]``) -> backend.
BACKENDS: dict[str, VectorBackend] = {
    "faiss": VectorBackend(_create_faiss, _open_faiss),
    "milvus": VectorBackend(_create_milvus, _open_milvus),
}
VECTOR_BACKENDS = tuple(BACKENDS)


def _backend(name: Any, where: Path | str) -> VectorBackend:
    """The registered backend ``name``; anything else (a manifest may come from anywhere) is
    refused by name."""
    if not isinstance(name, str) or name not in BACKENDS:
        raise IndexStoreError(
            f"{where}: unknown vector backend {name!r}; this planqa knows "
            f"{', '.join(VECTOR_BACKENDS)}"
        )
    return BACKENDS[name]


def new_vector_store(settings: Settings, dimension: int, n_vectors: int) -> VectorStore:
    """An empty store of the configured backend, sized for ``n_vectors``."""
    backend = _backend(settings.vector_backend, "vector_backend")
    return backend.create(settings, dimension, n_vectors)


def load_vector_store(
    directory: Path, description: dict[str, Any], settings: Settings | None, mmap: bool = False
) -> VectorStore:
    """The store a version's manifest describes (``description`` = manifest["vector_index"])."""
    backend = _backend(description.get("backend", "faiss"), directory)
    return backend.open(directory, description, settings, mmap)
