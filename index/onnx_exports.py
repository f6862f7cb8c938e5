"""The ONNX copies of one sentence-transformers model over a process's life: found on disk, made
once, given up for good when the model cannot have one, made again when one on disk is damaged.

Why a class of its own: which runtime a query or a passage goes through depends on this state
(an export on disk, a fresh export, a failed one, the int8 copy) and on two settings, and the
embedder (index/st_embedder.py) only wants the answer: an encoder, or None for the torch path.
The encoders themselves, the export and the int8 copy are index/onnx_encoder.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from planqa.corpus.errors import ModelError
from planqa.corpus.settings import Settings
from planqa.index.onnx_encoder import OnnxQueryEncoder, OnnxUnavailable, cache_dir_for, int8_encoder
from planqa.index.onnx_encoder import export as onnx_export


class OnnxExports:
    """The fp32 export of a model (queries, and passages with ``passage_backend = "onnx"``) and
    its int8 copy (``"onnx-int8"``), each decided on first use and then kept.

    ``source`` gives the model directory (or hub name) and ``model`` the loaded torch model; both
    are called only when needed, so an export on disk is used without loading torch at all.
    """

    def __init__(
        self,
        settings: Settings,
        source: Callable[[], str],
        model: Callable[[], Any],
        *,
        progress: bool = True,
    ) -> None:
        self._settings = settings
        self._source = source
        self._model = model
        self._progress = progress
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
    def passage_runtime(self) -> str | None:
        """The runtime ``passage_encoder`` chose ("torch", "onnx", "onnx-int8"); None until then."""
        return self._passage_runtime

    def paths(self) -> tuple[Path, Path] | None:
        """(export directory, model directory) for local models; hub ids keep the torch path."""
        model_dir = Path(self._source())
        if not model_dir.is_dir():
            return None
        return cache_dir_for(self._settings.models_dir, model_dir), model_dir

    def on_disk(self) -> OnnxQueryEncoder | None:
        """The fp32 export already on disk, if any: loading it never imports torch."""
        if self._export is None and not self._disk_checked:
            self._disk_checked = True
            paths = self.paths()
            if paths is not None:
                length = self._settings.max_seq_length
                self._export = OnnxQueryEncoder.load(*paths, length)
                self._export_from_disk = self._export is not None
        return self._export

    def checked(self) -> OnnxQueryEncoder:
        """The cached export, else a new one (once per model: needs torch); OnnxUnavailable says
        why the model cannot have one."""
        if self.on_disk() is not None:
            return self._export  # type: ignore[return-value]
        if self._export_failure is None:
            paths = self.paths()
            self._export_failure = "the model is not a local directory"
            if paths is not None:
                try:
                    self._export = onnx_export(
                        self._model(), paths[1], paths[0], progress=self._progress
                    )
                    self._export_failure = None
                    return self._export
                except (OnnxUnavailable, ImportError, RuntimeError, ValueError, OSError) as exc:
                    self._export_failure = f"{type(exc).__name__}: {exc}"
        raise OnnxUnavailable(self._export_failure)

    def discard(self, exc: OnnxUnavailable) -> None:
        """An export that failed to load: one from disk is made again, a fresh one is given up."""
        if not self._export_from_disk:
            self._export_failure = str(exc)
        self._export, self._export_from_disk = None, False
        self._passage_encoder, self._passage_runtime = None, None

    def describing(self) -> OnnxQueryEncoder | None:
        """A cached export to read the dimension and prompts from, when a path may use it."""
        if (
            self._settings.embedding_backend == "torch"
            and self._settings.passage_backend == "torch"
        ):
            return None
        return self.on_disk()

    def cached_query_encoder(self) -> OnnxQueryEncoder | None:
        """The export on disk when queries may use it; never makes one."""
        return None if self._settings.embedding_backend == "torch" else self.on_disk()

    def query_encoder(self) -> OnnxQueryEncoder | None:
        """The cached export, else a new one (once per model); None means the torch path."""
        if self._settings.embedding_backend == "torch":
            return None
        try:
            return self.checked()
        except OnnxUnavailable as exc:
            if self._settings.embedding_backend == "onnx":
                raise ModelError(
                    f"embedding_backend is 'onnx' but {self.model_name!r} cannot: {exc}"
                ) from exc
            return None

    def passage_encoder(self) -> OnnxQueryEncoder | None:
        """The encoder ``passage_backend`` asks for; None means torch (asked for, or the
        fallback of "onnx", whose vectors torch reproduces)."""
        backend = self._settings.passage_backend
        if backend == "torch" or self._passage_runtime is not None:
            return self._passage_encoder
        try:
            encoder = self.checked()
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
