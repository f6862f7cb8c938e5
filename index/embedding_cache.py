"""Passage vectors cached by content: re-indexing never embeds the same text twice.

Embedding is the slow part of indexing (about 4 passages per second on a 2-core CPU), and chunk ids
include character offsets, so an edit near the top of a document changes the id of every later
chunk although their text is unchanged. The cache is keyed by the model id and the exact text the
model reads, so it survives id changes, ``--rebuild`` and other indexes built with the same model.
The model id names the passage backend when its vectors differ from torch's (int8, see
``SentenceTransformerEmbedder.model_id``), so int8 and fp32 vectors never stand in for each other.

SQLite (WAL, one transaction per batch) rather than files per vector: concurrent indexers are safe
and a killed process leaves at most its last uncommitted batch behind.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np

from planqa.corpus.settings import Settings
from planqa.index.embedder_base import Embedder

CACHE_FILE = "embeddings.sqlite3"
#: Lookups per SQL statement (SQLite's default limit on host parameters is 32766).
_LOOKUP_BATCH = 900


def content_key(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\0{text}".encode()).hexdigest()


class EmbeddingCache:
    def __init__(self, path: Path, model_id: str, dimension: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model_id = model_id
        self.dimension = dimension
        self._db = sqlite3.connect(path, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER, vector BLOB)"
        )

    def close(self) -> None:
        self._db.close()

    def lookup(self, texts: list[str]) -> dict[int, np.ndarray]:
        """Cached vectors by position in ``texts``."""
        keys = [content_key(self.model_id, t) for t in texts]
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), _LOOKUP_BATCH):
            batch = keys[i : i + _LOOKUP_BATCH]
            rows = self._db.execute(
                f"SELECT key, vector FROM vectors WHERE dim = ? AND key IN "
                f"({','.join('?' * len(batch))})",
                [self.dimension, *batch],
            )
            found.update((key, np.frombuffer(blob, dtype=np.float32)) for key, blob in rows)
        return {i: found[key] for i, key in enumerate(keys) if key in found}

    def store(self, texts: list[str], vectors: np.ndarray) -> None:
        rows = [
            (content_key(self.model_id, t), self.dimension, np.asarray(v, np.float32).tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)


def open_embedding_cache(settings: Settings, embedder: Embedder) -> EmbeddingCache | None:
    """The user's cache for real models; None when disabled or for an embedder that computes a
    vector faster than SQLite returns one (``worth_caching = False``: the hash and static
    models, whose 100K vectors would only bloat the cache)."""
    if not settings.embedding_cache or not getattr(embedder, "worth_caching", True):
        return None
    return EmbeddingCache(settings.cache_dir / CACHE_FILE, embedder.model_id, embedder.dimension)
