"""What every vector store shares: the ``VectorStore`` protocol, the record kept beside a vector,
and the dimension check.

Its own module so that each backend (index/faiss_store.py, index/milvus_store.py) depends only on
this contract, and the factory (index/vectorstore.py) on the backends: nothing imports back up.
Stores are keyed by chunk id, not by row, so a remote store (Milvus) can be updated in place while
the local index versions come and go; the searcher maps ids back to its own rows. The same contract
suite (tests/test_vectorstore_contract.py) runs against every implementation.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np


class VectorRecord(NamedTuple):
    """What a store keeps beside a vector: the chunk id, and the fields filters run on.

    A named tuple because loading a FAISS store makes one per row: at 100K rows a frozen
    dataclass took twice as long (~0.25 s, a twentieth of the time to add a document).
    """

    id: str
    doc: str
    region: str
    text: str = ""


@runtime_checkable
class VectorStore(Protocol):
    """Dense retrieval by chunk id. Scores are cosines (vectors are unit length)."""

    backend: str

    @property
    def dimension(self) -> int: ...

    @property
    def size(self) -> int: ...

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        docs: Collection[str] | None = None,
        regions: Collection[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Best ``k`` (chunk id, cosine) pairs, best first, among chunks whose document is in
        ``docs`` and whose region is in ``regions`` (None: no restriction)."""
        ...

    def add(self, records: Sequence[VectorRecord], vectors: np.ndarray) -> None: ...

    def delete(self, ids: Collection[str]) -> None: ...

    def ids(self) -> list[str]: ...

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Vectors of ``ids`` in that order; KeyError names an unknown id."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this store (kind, parameters, where it is)."""
        ...

    def save(self, directory: Path) -> None:
        """Make the store durable and leave what a later ``load`` needs in ``directory``."""
        ...


def check_dimension(vectors: np.ndarray, dimension: int, where: str) -> np.ndarray:
    """``vectors`` as float32 rows, refused with the fix when they are not ``dimension`` wide
    (vectors of another model must never be mixed into a store)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ValueError(
            f"{where}: vectors of shape {array.shape} do not fit this store's dimension "
            f"{dimension}; rebuild the index with the model that made it (`planqa index --rebuild`)"
        )
    return array


def check_batch(records: Sequence[VectorRecord], vectors: np.ndarray, dimension: int) -> np.ndarray:
    """An ``add`` batch checked as every backend needs it: the dimension, one vector a record."""
    vectors = check_dimension(vectors, dimension, "add")
    if len(records) != len(vectors):
        raise ValueError(f"{len(records)} records but {len(vectors)} vectors")
    return vectors
