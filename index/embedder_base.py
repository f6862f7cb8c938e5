"""What the index needs from an embedding model, and how a model's identity is written.

Kept apart from the backends (index/hash_embedder.py, index/st_embedder.py) so that what only
compares identities (the manifest's compatibility check, the embedding cache) does not depend on
how vectors are made.

The prompts matter: e5 models were trained with "query: " / "passage: " and bge-zh with an
instruction on the query side only; embedding without them costs recall. Prompts come, in order,
from the configuration, the model's own ``config_sentence_transformers.json``, a table of known
families (``KNOWN_PROMPTS``), and finally none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from planqa.index.onnx_encoder import INT8_RECIPE

#: (pattern on the lower-cased model name, query prompt, passage prompt)
KNOWN_PROMPTS: tuple[tuple[str, str, str], ...] = (
    (r"e5-.*instruct", "Instruct: Given a question, retrieve passages that answer it\nQuery: ", ""),
    (r"(^|/)(multilingual-)?e5-", "query: ", "passage: "),
    (r"bge-.*-zh", "为这个句子生成表示以用于检索相关文章：", ""),
    (r"bge-.*-en", "Represent this sentence for searching relevant passages: ", ""),
)

#: Separates a model id from the tag of passage vectors that are not torch's (int8).
PASSAGE_TAG = "|passages="


class Embedder(Protocol):
    """What the index needs from a model: stable identity, a dimension, and two encoders."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray: ...


@dataclass(frozen=True)
class Prompts:
    """The texts put before a query and before a passage; part of the model id."""

    query: str = ""
    passage: str = ""


def known_prompts(model_name: str) -> Prompts:
    """The prompts of a known model family, by name; none for an unknown model."""
    name = model_name.lower()
    for pattern, query, passage in KNOWN_PROMPTS:
        if re.search(pattern, name):
            return Prompts(query, passage)
    return Prompts()


def passage_vector_tag(backend: str) -> str:
    """What a passage backend adds to the model id: nothing when its vectors are torch's."""
    return INT8_RECIPE.tag if backend == "onnx-int8" else ""


def passage_backend_of(built_id: str, current_id: str) -> str | None:
    """The passage backend an index with model id ``built_id`` was built with, when only that
    differs from ``current_id`` (for the hint to use it as built; "onnx" stands for torch too, as
    it gives the same vectors); None when the model or prompts differ as well."""
    built_base, _, built_tag = built_id.partition(PASSAGE_TAG)
    if built_base != current_id.partition(PASSAGE_TAG)[0] or built_id == current_id:
        return None
    return "onnx-int8" if built_tag else "onnx"
