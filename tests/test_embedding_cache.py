"""Passage vectors are cached by model and exact text, so unchanged text is never re-embedded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from planqa.corpus.settings import BUNDLED_CORPUS_DIR, Settings
from planqa.index.builder import build_index
from planqa.index.embedder import HashEmbedder
from planqa.index.embedding_cache import EmbeddingCache, open_embedding_cache
from planqa.index.store import IndexStore


def test_vectors_come_back_by_position_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite3"
    cache = EmbeddingCache(path, "model-a", 3)
    cache.store(["甲", "乙"], np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    cache.close()
    found = EmbeddingCache(path, "model-a", 3).lookup(["丙", "乙", "甲"])
    assert sorted(found) == [1, 2]
    np.testing.assert_array_equal(found[1], [0, 1, 0])


def test_another_model_or_dimension_never_shares_vectors(tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite3"
    EmbeddingCache(path, "model-a", 3).store(["甲"], np.ones((1, 3), dtype=np.float32))
    assert EmbeddingCache(path, "model-b", 3).lookup(["甲"]) == {}
    assert EmbeddingCache(path, "model-a", 4).lookup(["甲"]) == {}


class CountingEmbedder(HashEmbedder):
    """The hash embedder standing in for a real model (the cache skips the hash embedder
    itself), under another id, counting what it embeds."""

    worth_caching = True

    def __init__(self) -> None:
        super().__init__(64)
        self.embedded = 0

    @property
    def model_id(self) -> str:
        return "counting:64"

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        self.embedded += len(texts)
        return super().embed_passages(texts)


def test_a_rebuild_embeds_nothing_and_gives_the_same_vectors(tmp_path: Path) -> None:
    settings = Settings(embedding_model="hash", index_dir=tmp_path / "index", cache_dir=tmp_path)
    first = CountingEmbedder()
    report = build_index(settings, [BUNDLED_CORPUS_DIR], embedder=first, progress=False)
    assert first.embedded == report.chunks == report.embedded
    ids = [c.id for c in IndexStore(settings.resolved_index_dir).load().chunks]
    before = IndexStore(settings.resolved_index_dir).load().vectors.get_vectors(ids)

    again = CountingEmbedder()
    rebuilt = build_index(
        settings, [BUNDLED_CORPUS_DIR], embedder=again, rebuild=True, progress=False
    )
    assert again.embedded == 0 and rebuilt.embedded == 0 and rebuilt.chunks == report.chunks
    after = IndexStore(settings.resolved_index_dir).load().vectors.get_vectors(ids)
    np.testing.assert_array_equal(after, before)


def test_the_hash_embedder_and_a_disabled_setting_skip_the_cache(tmp_path: Path) -> None:
    assert open_embedding_cache(Settings(cache_dir=tmp_path), HashEmbedder()) is None
    off = Settings(cache_dir=tmp_path, embedding_cache=False)
    assert open_embedding_cache(off, CountingEmbedder()) is None
    assert open_embedding_cache(Settings(cache_dir=tmp_path), CountingEmbedder()) is not None


def test_the_static_model_is_not_cached(tmp_path: Path) -> None:
    from planqa.index.embedder import StaticEmbedder

    assert open_embedding_cache(Settings(cache_dir=tmp_path), StaticEmbedder()) is None
