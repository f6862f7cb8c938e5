"""Shared fixtures. Fast tests use the deterministic hash embedder through the real factory;
tests marked ``slow`` use the real offline model, converted once per session into the session's
temporary cache.

Tests never read or write the user's ``~/.cache/planqa``: ``isolated_cache`` points
``PLANQA_CACHE_DIR`` (models, embedding cache, jieba dictionary) and ``PLANQA_INDEX_DIR`` (the
default index) at a temporary folder for the whole session, through the environment so that
``planqa`` subprocesses started by tests inherit it. A stale model conversion or index in the
user's cache can therefore neither make a test pass nor fail. Set ``PLANQA_TEST_CACHE_DIR`` to
keep that folder between runs (the real-model conversion is then done once, not per session).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from planqa.corpus.settings import BUNDLED_CORPUS_DIR, Settings

if TYPE_CHECKING:  # imported where used: collecting a corpus-only test needs no web UI
    from planqa.rag.pipeline import Pipeline
    from planqa.ui.app import WebHandlers

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The variables that place planqa's caches; set for the session by ``isolated_cache``.
CACHE_VARIABLES = ("PLANQA_CACHE_DIR", "PLANQA_INDEX_DIR")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache() -> Iterator[Path]:
    """A session-wide cache folder in place of ``~/.cache/planqa``, and its ``index/`` as the
    default index; the caller's own values of the variables come back afterwards."""
    kept = os.environ.get("PLANQA_TEST_CACHE_DIR")
    cache = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="planqa-test-cache-"))
    cache.mkdir(parents=True, exist_ok=True)
    saved = {name: os.environ.get(name) for name in CACHE_VARIABLES}
    os.environ["PLANQA_CACHE_DIR"] = str(cache)
    os.environ["PLANQA_INDEX_DIR"] = str(cache / "index")
    try:
        yield cache
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if not kept:
            shutil.rmtree(cache, ignore_errors=True)


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


@pytest.fixture(scope="module")
def pipeline(hash_index_settings: Settings):
    """The answering pipeline over the session's hash index; one per module, so state a module
    leaves in it (conversations, caches) stays in that module. A module may define its own."""
    from planqa.rag.pipeline import Pipeline

    return Pipeline.open(hash_index_settings)


@pytest.fixture
def handlers(pipeline: Pipeline, tmp_path: Path) -> WebHandlers:
    """The web UI's handlers over the module's pipeline (a module's own ``pipeline`` fixture
    takes its place), exports in the test's own folder so a test's downloads never land in the
    working directory or meet another test's."""
    from planqa.ui.app import WebHandlers

    return WebHandlers(pipeline, export_dir=tmp_path / "exports")


@pytest.fixture(scope="module")
def hash_searcher(hash_index_settings: Settings):
    """The hybrid searcher over the session's hash index, one per module."""
    from planqa.index.search import HybridSearcher

    return HybridSearcher.open(hash_index_settings)


@pytest.fixture(scope="session")
def real_index_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The real default model (converted once into the session cache) over the bundled corpus."""
    from planqa.index.builder import build_index

    settings = Settings(index_dir=tmp_path_factory.mktemp("real") / "index")
    build_index(settings, [BUNDLED_CORPUS_DIR], progress=False)
    return settings


@pytest.fixture(scope="session")
def real_searcher(real_index_settings: Settings):
    from planqa.index.search import HybridSearcher

    return HybridSearcher.open(real_index_settings)
