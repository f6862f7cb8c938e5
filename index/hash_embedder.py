"""A deterministic, model-free embedder, so tests and demos index in milliseconds offline.

Selected with ``embedding_model = "hash"`` or ``"hash:<dimension>"`` (see index/embedder.py).
"""

from __future__ import annotations

import zlib

import numpy as np

from planqa.index.text_tokenizer import normalise_text

HASH_MODEL_PREFIX = "hash"


class HashEmbedder:
    """Hashed character n-grams (unigrams and bigrams) into signed buckets, unit length.

    Texts sharing characters get similar vectors, so retrieval tests behave sensibly, but it is no
    substitute for a real model.
    """

    #: Computing a vector is faster than reading one back (index/embedding_cache.py).
    worth_caching = False

    def __init__(self, dimension: int = 256) -> None:
        self._dimension = dimension

    @property
    def model_id(self) -> str:
        return f"{HASH_MODEL_PREFIX}:{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def _embed(self, text: str) -> np.ndarray:
        vector = np.zeros(self._dimension, dtype=np.float32)
        chars = normalise_text(text)
        for n in (1, 2):
            for i in range(len(chars) - n + 1):
                gram = chars[i : i + n].encode("utf-8")
                bucket = zlib.crc32(gram) % self._dimension
                vector[bucket] += 1.0 if zlib.adler32(gram) % 2 else -1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._embed(t) for t in texts]) if texts else self._empty()

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self.embed_queries(texts)

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self._dimension), dtype=np.float32)
