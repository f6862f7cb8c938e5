"""A small writable corpus and its hash-embedder index, for the tests that upload and delete
documents (the API, the 知识库 section, its browser test): the bundled corpus itself must never
be written to."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from planqa.corpus.settings import BUNDLED_CORPUS_DIR, Settings

#: Two bundled plans: enough for regions and citations, indexed in about a second.
SMALL_PLANS = ("003_7f17e41e8ac2efc3.txt", "004_99a6b245d6293f07.txt")


def writable_corpus(root: Path, **overrides: Any) -> Settings:
    """Settings over a copy of :data:`SMALL_PLANS` (and the manifest) in ``root/corpus``, with
    its index built in ``root/index``; ``overrides`` are further settings."""
    from planqa.index.builder import build_index

    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for name in (*SMALL_PLANS, "manifest.json"):
        shutil.copy(BUNDLED_CORPUS_DIR / name, corpus / name)
    settings = Settings(
        embedding_model="hash", index_dir=root / "index", corpus_dir=corpus, **overrides
    )
    build_index(settings, progress=False)
    return settings
