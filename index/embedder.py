"""Turning text into unit vectors: the one factory, ``make_embedder``, and the names callers use.

A model name picks its backend through ``EMBEDDERS``: a name ``<scheme>`` or ``<scheme>:<arg>``
whose scheme is registered there gets that factory (``hash`` / ``hash:512``: the model-free test
embedder; ``fast``: the shipped static model, ``model2vec:<directory>`` any static model, see
index/static_embedder.py); any other name is a sentence-transformers model (a local directory, a
hub id, or the offline default). Adding a backend is one module and one entry, not another
branch here.

The contract (``Embedder``), prompts and model-id tags are in index/embedder_base.py; the backends
in index/hash_embedder.py and index/st_embedder.py, the ONNX export lifecycle in
index/onnx_exports.py. Their public names are re-exported here, where callers import them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from planqa.corpus.settings import Settings
from planqa.index.embedder_base import (
    KNOWN_PROMPTS,
    PASSAGE_TAG,
    Embedder,
    Prompts,
    known_prompts,
    passage_backend_of,
    passage_vector_tag,
)
from planqa.index.hash_embedder import HASH_MODEL_PREFIX, HashEmbedder
from planqa.index.st_embedder import SentenceTransformerEmbedder
from planqa.index.static_embedder import FAST_MODEL_NAME, MODEL2VEC_PREFIX, StaticEmbedder

__all__ = [
    "EMBEDDERS",
    "FAST_MODEL_NAME",
    "HASH_MODEL_PREFIX",
    "KNOWN_PROMPTS",
    "PASSAGE_TAG",
    "Embedder",
    "EmbedderFactory",
    "HashEmbedder",
    "Prompts",
    "SentenceTransformerEmbedder",
    "StaticEmbedder",
    "known_prompts",
    "make_embedder",
    "passage_backend_of",
    "passage_vector_tag",
]

#: (settings, the text after "<scheme>:" or "", progress) -> an embedder.
EmbedderFactory = Callable[[Settings, str, bool], Embedder]


def _hash_embedder(settings: Settings, argument: str, progress: bool) -> Embedder:
    return HashEmbedder(int(argument) if argument else 256)


def _fast_embedder(settings: Settings, argument: str, progress: bool) -> Embedder:
    return StaticEmbedder()


def _model2vec_embedder(settings: Settings, argument: str, progress: bool) -> Embedder:
    return StaticEmbedder(Path(argument).expanduser())


#: Model-name scheme -> factory. Names without a registered scheme are sentence-transformers models.
EMBEDDERS: dict[str, EmbedderFactory] = {
    HASH_MODEL_PREFIX: _hash_embedder,
    FAST_MODEL_NAME: _fast_embedder,
    MODEL2VEC_PREFIX: _model2vec_embedder,
}


def make_embedder(settings: Settings, progress: bool = True) -> Embedder:
    """The one factory: tests select the hash embedder through it, users any model name or path."""
    scheme, _, argument = settings.embedding_model.partition(":")
    factory = EMBEDDERS.get(scheme)
    if factory is None:
        return SentenceTransformerEmbedder(settings, progress=progress)
    return factory(settings, argument, progress)
