"""The vector step of a build: the previous store minus the rows the new version drops, plus the
fresh rows, embedding only what no store or cache already has.

Embedding is the slow part of indexing (about 4 passages per second on a 2-core CPU), so a fresh
chunk's vector comes, in order of preference, from the previous store (a chunk id it already
has: a moved chunk, or a document given again unchanged in text), from the embedding cache (the
same text embedded before by the same model, index/embedding_cache.py), and only then from the
model.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from planqa.corpus.chunking import Chunk
from planqa.corpus.settings import Settings
from planqa.index.embedder_base import Embedder
from planqa.index.embedding_cache import open_embedding_cache
from planqa.index.indexed_text import embedding_text, vector_record
from planqa.index.vectorstore import (
    FaissVectorStore,
    VectorStore,
    index_params_for,
    new_vector_store,
)
from planqa.index.versions import StoredVersion

#: Passages per call of the model (and per transaction of the embedding cache).
EMBED_BATCH = 64


def update_vectors(
    settings: Settings,
    embedder: Embedder,
    previous: StoredVersion | None,
    keep: np.ndarray,
    fresh: list[Chunk],
    total: int,
    progress: bool,
) -> tuple[VectorStore, int]:
    """The previous store minus the rows ``keep`` drops, plus ``fresh`` rows (reusing stored
    vectors of chunk ids it already has); or a new store. Returns it and how many chunks were
    embedded."""
    fresh_vectors = np.zeros((len(fresh), embedder.dimension), dtype=np.float32)
    if previous is None:
        vectors = new_vector_store(settings, embedder.dimension, total)
        todo = list(range(len(fresh)))
    else:
        vectors = previous.vectors
        todo = _reuse_stored(vectors, previous.chunk_ids, fresh, fresh_vectors)
        # After reusing: a moved chunk's vector is read before its old row is deleted.
        vectors.delete([i for i, kept in zip(previous.chunk_ids, keep, strict=True) if not kept])
    embedded = _embed(settings, embedder, fresh, todo, fresh_vectors, progress)
    vectors.add([vector_record(c) for c in fresh], fresh_vectors)
    return _fit_index_kind(vectors, settings), embedded


def _reuse_stored(
    vectors: VectorStore, stored_ids: list[str], fresh: list[Chunk], into: np.ndarray
) -> list[int]:
    """Copy the stored vectors of fresh chunks whose id the store has into ``into``; return the
    rows still without a vector."""
    stored = set(stored_ids)
    reusable = [i for i, c in enumerate(fresh) if c.id in stored]
    if reusable:
        into[reusable] = vectors.get_vectors([fresh[i].id for i in reusable])
    return [i for i, c in enumerate(fresh) if c.id not in stored]


def _embed(
    settings: Settings,
    embedder: Embedder,
    fresh: list[Chunk],
    todo: list[int],
    into: np.ndarray,
    progress: bool,
) -> int:
    """Fill rows ``todo`` of ``into`` from the embedding cache, else the model; return how many
    the model embedded."""
    texts = {r: embedding_text(fresh[r]) for r in todo}
    cache = open_embedding_cache(settings, embedder) if todo else None
    if cache is not None:
        cached = cache.lookup([texts[r] for r in todo])
        for position, vector in cached.items():
            into[todo[position]] = vector
        todo = [r for position, r in enumerate(todo) if position not in cached]
    with tqdm(
        total=len(todo), desc="embedding chunks", unit="chunk", disable=not progress or not todo
    ) as bar:
        for start in range(0, len(todo), EMBED_BATCH):
            rows = todo[start : start + EMBED_BATCH]
            batch_texts = [texts[r] for r in rows]
            into[rows] = embedder.embed_passages(batch_texts)
            if cache is not None:  # batch by batch: a killed build keeps what it paid for
                cache.store(batch_texts, into[rows])
            bar.update(len(rows))
    if cache is not None:
        cache.close()
    return len(todo)


def _fit_index_kind(vectors: VectorStore, settings: Settings) -> VectorStore:
    """A FAISS store under the index kind its new size calls for (exact or HNSW)."""
    if isinstance(vectors, FaissVectorStore):
        params = index_params_for(vectors.size, settings)
        if params.kind != vectors.index.kind:
            return vectors.reindexed(params)  # the corpus crossed the exact/HNSW threshold
    return vectors
