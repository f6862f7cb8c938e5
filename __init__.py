"""planqa: cited question answering over Chinese government planning documents.

The public API, the one the CLI and the web UI use like any other caller::

    from planqa import Pipeline, load_settings

    pipeline = Pipeline.open(load_settings())
    answer = pipeline.ask("哪个区规划了集成电路测试产业园？")

Names are imported on first use, so ``import planqa`` stays cheap (the CLI's ``--help`` does not
load torch). The installed package maps the repository's folders: ``planqa.corpus`` (documents,
settings, errors), ``planqa.index`` (embeddings, FAISS, BM25, search), ``planqa.rag`` (questions
and answers), ``planqa.eval`` (gold sets and metrics), ``planqa.ui`` (CLI and web UI).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planqa.corpus.config import load_settings
    from planqa.corpus.errors import (
        DocumentError,
        IndexStoreError,
        InputError,
        ModelError,
        PlanqaError,
    )
    from planqa.corpus.settings import Settings
    from planqa.index.builder import BuildReport, add_documents, build_index
    from planqa.index.search import HybridSearcher
    from planqa.rag.answer import Answer, Citation
    from planqa.rag.pipeline import Conversation, Pipeline

#: public name -> the module that defines it
_EXPORTS = {
    "Settings": "planqa.corpus.settings",
    "load_settings": "planqa.corpus.config",
    "PlanqaError": "planqa.corpus.errors",
    "InputError": "planqa.corpus.errors",
    "DocumentError": "planqa.corpus.errors",
    "IndexStoreError": "planqa.corpus.errors",
    "ModelError": "planqa.corpus.errors",
    "build_index": "planqa.index.builder",
    "add_documents": "planqa.index.builder",
    "BuildReport": "planqa.index.builder",
    "HybridSearcher": "planqa.index.search",
    "Answer": "planqa.rag.answer",
    "Citation": "planqa.rag.answer",
    "Pipeline": "planqa.rag.pipeline",
    "Conversation": "planqa.rag.pipeline",
}

__all__ = [
    "Answer",
    "BuildReport",
    "Citation",
    "Conversation",
    "DocumentError",
    "HybridSearcher",
    "IndexStoreError",
    "InputError",
    "ModelError",
    "Pipeline",
    "PlanqaError",
    "Settings",
    "add_documents",
    "build_index",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'planqa' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
