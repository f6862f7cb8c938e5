"""Shared fixtures. Fast tests use the deterministic hash embedder through the real factory;
tests marked ``slow`` use the real offline model, converted once into the user's model cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from planqa.corpus.settings import BUNDLED_CORPUS_DIR, Settings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return BUNDLED_CORPUS_DIR


@pytest.fixture
def hash_settings(tmp_path: Path) -> Settings:
    return Settings(embedding_model="hash", index_dir=tmp_path / "index")


@pytest.fixture(scope="session")
def hash_index_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A hash-embedder index of the bundled corpus, built once per session."""
    from planqa.index.builder import build_index

    settings = Settings(embedding_model="hash", index_dir=tmp_path_factory.mktemp("hash") / "index")
    build_index(settings, [BUNDLED_CORPUS_DIR], progress=False)
    return settings


@pytest.fixture(scope="session")
def real_index_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The real default model (converted once into the user cache) over the bundled corpus."""
    from planqa.index.builder import build_index

    settings = Settings(index_dir=tmp_path_factory.mktemp("real") / "index")
    build_index(settings, [BUNDLED_CORPUS_DIR], progress=False)
    return settings


@pytest.fixture(scope="session")
def real_searcher(real_index_settings: Settings):
    from planqa.index.search import HybridSearcher

    return HybridSearcher.open(real_index_settings)
