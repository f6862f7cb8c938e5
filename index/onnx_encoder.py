"""Embeddings through ONNX Runtime, so answering a question (and, by choice, indexing) never
imports torch.

Why: importing sentence-transformers + torch costs ~11 s of a cold ``planqa ask`` and a query
embedding ~53 ms of CPU through torch, against ~1 s and ~20 ms here. Passages may use the same
export (``passage_backend = "onnx"``) or an int8 copy of it (``"onnx-int8"``, made once by
``int8_encoder``); which is fastest is a measurement, not a given: see bench/backend_bench.py.

The export runs once per model (the first time a query is embedded with the torch model loaded),
is checked against sentence-transformers on sample texts, and is cached with a description of the
model (pooling, normalisation, prompts, dimension, tokenizer padding) under
``<models_dir>/onnx/``. Anything the runtime here cannot reproduce exactly (another pooling, a
model without a ``tokenizer.json``, a failed check) keeps the torch path instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ONNX_FILE = "model.onnx"
META_FILE = "planqa_onnx.json"
#: Bump when the export or the runtime maths change: older caches are then re-exported.
EXPORT_VERSION = 1
#: Minimum cosine between the torch and ONNX embeddings of every check text.
MIN_CHECK_COSINE = 0.9999
CHECK_TEXTS = (
    "哪个区规划了集成电路测试产业园？",
    "到2025年，地区生产总值突破1000亿元，年均增长7%以上。",
    "Build a modern industrial system 建设现代化产业体系 🚀",
    "十四五" * 300,  # longer than the sequence limit: truncation must match too
)


#: One loaded encoder per export and length per process: a CLI command can start loading it before
#: its heavy imports (see ui.cli.ask_command), and the index then picks up the same instance.
_LOADED: dict[tuple[str, str, int], OnnxQueryEncoder] = {}
_LOADED_LOCK = threading.Lock()


class OnnxUnavailable(Exception):
    """The model cannot be served by ONNX Runtime here; the caller keeps the torch path."""


@dataclass(frozen=True)
class OnnxModelInfo:
    """What the runtime needs to reproduce sentence-transformers' output without loading it."""

    fingerprint: str
    dimension: int
    pooling: str  # "mean" or "cls"
    normalize: bool
    max_seq_length: int
    pad_token_id: int
    lowercase: bool
    model_prompts: dict[str, str]
    min_check_cosine: float
    export_version: int = EXPORT_VERSION


def model_fingerprint(model_dir: Path) -> str:
    """Names, sizes and modification times of the model's files: cheap enough for every start."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def cache_dir_for(models_dir: Path, model_dir: Path) -> Path:
    """One export per model directory: the sequence limit is the tokenizer's, at run time."""
    return (
        models_dir
        / "onnx"
        / f"{model_dir.name}-{hashlib.sha256(str(model_dir).encode()).hexdigest()[:10]}"
    )


class OnnxQueryEncoder:
    """Tokenizes with the model's own ``tokenizer.json`` and pools exactly like the ST modules.

    With ``background=True`` the session and tokenizer (~2 s: a 470 MB graph, a 17 MB vocabulary)
    load in a thread while the caller opens the index; the first ``encode`` waits for them.
    """

    def __init__(
        self,
        directory: Path,
        info: OnnxModelInfo,
        max_length: int,
        *,
        background: bool = False,
        model_file: str = ONNX_FILE,
    ) -> None:
        self.info = info
        self.directory = directory
        self.model_file = model_file
        #: Dynamic int8 scales each run's activations by their range across the whole batch, so a
        #: text's vector would depend on its batch neighbours (cosine down to 0.997 between two
        #: batchings, as far as int8 is from fp32); one text per run makes it a function of the
        #: text alone, as the content-keyed embedding cache assumes, at no measured cost.
        self.one_text_per_run = model_file != ONNX_FILE
        self.max_length = max_length
        self._runtime: tuple[Any, Any] | None = None
        self._failure: BaseException | None = None
        self._loader: threading.Thread | None = None
        if background:
            # Not a daemon: the interpreter joins it before finalising. A daemon thread still
            # inside InferenceSession when a command exits early (bad input, an error before the
            # first query) is torn down mid-construction, and the C++ runtime aborts the process
            # ("terminate called without an active exception", exit code 134, or a segfault).
            # The join costs an early exit at most the rest of the ~2 s load.
            self._loader = threading.Thread(
                target=self._load_runtime, name="planqa-onnx-load", daemon=False
            )
            self._loader.start()
        else:
            self._load_runtime()
            if self._failure is not None:
                raise OnnxUnavailable(str(self._failure)) from self._failure

    def _load_runtime(self) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(
                str(self.directory / self.model_file), options, providers=["CPUExecutionProvider"]
            )
            tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
            tokenizer.enable_truncation(min(self.max_length, self.info.max_seq_length))
            tokenizer.enable_padding(pad_id=self.info.pad_token_id, direction="right")
            self._runtime = (session, tokenizer)
        except Exception as exc:  # reported on first use: the caller then re-exports
            self._failure = exc

    def _ready(self) -> tuple[Any, Any]:
        if self._loader is not None:
            self._loader.join()
        if self._runtime is None:
            raise OnnxUnavailable(f"cannot load the ONNX export: {self._failure}")
        return self._runtime

    @classmethod
    def load(
        cls, directory: Path, model_dir: Path, max_length: int, model_file: str = ONNX_FILE
    ) -> OnnxQueryEncoder | None:
        """The cached export if it exists and still describes the model on disk, else None."""
        try:
            raw = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
            info = OnnxModelInfo(**raw)
        except (OSError, ValueError, TypeError):
            return None
        if info.export_version != EXPORT_VERSION or info.fingerprint != model_fingerprint(
            model_dir
        ):
            return None
        if not (directory / model_file).is_file():
            return None
        key = (str(directory / model_file), info.fingerprint, max_length)
        with _LOADED_LOCK:
            if key not in _LOADED:
                _LOADED[key] = cls(
                    directory, info, max_length, background=True, model_file=model_file
                )
            return _LOADED[key]

    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """Vectors in the order of ``texts``: one padded batch (queries), or with ``batch_size``
        batches of similar token counts, so a short passage never pays for a 512-token one's
        padding (sentence-transformers sorts by length for the same reason)."""
        if self.info.lowercase:
            texts = [t.lower() for t in texts]
        session, tokenizer = self._ready()
        encodings = tokenizer.encode_batch(texts)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        if self.one_text_per_run:
            batch_size = 1
        if batch_size is None or batch_size >= len(texts):
            return self._run(session, input_ids, mask)
        # Padding is on the right, so each row's tokens are its first ``lengths[row]`` columns.
        lengths = mask.sum(axis=1)
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.info.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            out[rows] = self._run(session, input_ids[rows, :width], mask[rows, :width])
        return out

    def _run(self, session: Any, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": np.ascontiguousarray(input_ids), "attention_mask": mask}
        (hidden,) = session.run(None, feed)
        return pool(hidden, mask, self.info.pooling, self.info.normalize)


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str, normalize: bool) -> np.ndarray:
    if mode == "cls":
        vectors = hidden[:, 0, :]
    else:
        weights = mask[:, :, None].astype(np.float32)
        vectors = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    if normalize:
        vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def native_max_length(model: Any, model_dir: Path) -> int:
    """The model's own limit, not the one planqa set on the loaded copy: exports are shared."""
    try:
        config = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
        return int(config["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return int(model.max_seq_length)


def describe_model(model: Any, model_dir: Path) -> OnnxModelInfo:
    """Read pooling/normalisation off a loaded SentenceTransformer; refuse what we cannot mirror."""
    kinds = [type(module).__name__ for module in model]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise OnnxUnavailable(f"module stack {kinds} is not Transformer → Pooling (→ Normalize)")
    if not (model_dir / "tokenizer.json").is_file():
        raise OnnxUnavailable("the model has no tokenizer.json")
    config = model[1].get_config_dict()
    mode = config.get("pooling_mode")
    if mode is None:  # sentence-transformers < 6 spells each mode as a flag
        flags = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
        mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(
            flags[0] if len(flags) == 1 else "", "other"
        )
    if mode not in ("mean", "cls") or not config.get("include_prompt", True):
        raise OnnxUnavailable(f"pooling {config} is not plain mean or CLS pooling")
    tokenizer = model.tokenizer
    return OnnxModelInfo(
        fingerprint=model_fingerprint(model_dir),
        dimension=int(config.get("embedding_dimension") or config["word_embedding_dimension"]),
        pooling=mode,
        normalize=len(kinds) == 3,
        max_seq_length=native_max_length(model, model_dir),
        pad_token_id=int(tokenizer.pad_token_id or 0),
        lowercase=bool(getattr(model[0], "do_lower_case", False)),
        model_prompts=dict(model.prompts or {}),
        min_check_cosine=0.0,
    )


def export(model: Any, model_dir: Path, target: Path, *, progress: bool = True) -> OnnxQueryEncoder:
    """Export the transformer, check it against ``model.encode`` and publish it atomically."""
    if progress:
        print("planqa: preparing the ONNX query encoder (once per model, ~30 s)", file=sys.stderr)
    with warnings.catch_warnings():  # the tracer's warnings concern code paths we do not export
        warnings.simplefilter("ignore")
        return _export(model, model_dir, target)


def _export(model: Any, model_dir: Path, target: Path) -> OnnxQueryEncoder:
    import torch

    info = describe_model(model, model_dir)
    transformer = model[0].auto_model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)[0]

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".onnx-", dir=target.parent))
    try:
        sample = model.tokenizer(["示例 text"], return_tensors="pt")
        axes = {0: "batch", 1: "tokens"}
        torch.onnx.export(
            LastHiddenState(),
            (sample["input_ids"], sample["attention_mask"]),
            str(staging / ONNX_FILE),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )
        shutil.copy2(model_dir / "tokenizer.json", staging / "tokenizer.json")
        encoder = OnnxQueryEncoder(staging, info, int(model.max_seq_length))
        texts = [p + t for p in {"", *info.model_prompts.values()} for t in CHECK_TEXTS]
        reference = np.asarray(model.encode(texts, convert_to_numpy=True), dtype=np.float32)
        ours = encoder.encode(texts)
        cosine = float(np.min(np.sum(unit(reference) * unit(ours), axis=1)))
        if cosine < MIN_CHECK_COSINE:
            raise OnnxUnavailable(f"ONNX output differs from sentence-transformers (cos {cosine})")
        info = OnnxModelInfo(**{**asdict(info), "min_check_cosine": round(cosine, 7)})
        (staging / META_FILE).write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return OnnxQueryEncoder(target, info, int(model.max_seq_length))


@dataclass(frozen=True)
class Int8Recipe:
    """How the fp32 export is quantised; its ``tag`` names the file and the vectors it gives."""

    per_channel: bool
    reduce_range: bool
    op_types: tuple[str, ...] | None  # None: ONNX Runtime's default (MatMul and Gather here)

    @property
    def tag(self) -> str:
        ops = "all" if self.op_types is None else "+".join(t.lower() for t in self.op_types)
        channel = "pc" if self.per_channel else "pt"
        return f"int8-{channel}{'-rr' if self.reduce_range else ''}-{ops}-v1"

    @property
    def file_name(self) -> str:
        return f"model-{self.tag}.onnx"


#: The recipe planqa uses. Min / mean cosine to fp32 over 48 bundled chunks: per-channel
#: 0.9953 / 0.9967, per-tensor 0.9831 / 0.9864; reduce_range (7-bit weights) 0.940 per-tensor
#: and no better per-channel; leaving the embedding Gather in fp32 changed nothing but the file
#: size (388 MB against 112 MB).
INT8_RECIPE = Int8Recipe(per_channel=True, reduce_range=False, op_types=None)
#: An int8 copy further than this from fp32 on the check texts is refused as broken. Measured:
#: ≥ 0.995 on real passages, but 0.947 on the degenerate "十四五" × 300 check text.
MIN_INT8_CHECK_COSINE = 0.9


def int8_encoder(
    fp32: OnnxQueryEncoder, *, recipe: Int8Recipe = INT8_RECIPE, progress: bool = True
) -> OnnxQueryEncoder:
    """The int8 copy of ``fp32``'s export beside it, quantised now if not there (once per model).

    Dynamic quantisation (int8 weights, activations scaled per run) needs no calibration data,
    so it can run on the user's machine (~20 s here). The file is written under a temporary name
    and renamed, so a killed process never leaves a half-written model that later loads.
    """
    directory, length = fp32.directory, fp32.max_length
    target = directory / recipe.file_name
    if target.is_file():
        try:
            return OnnxQueryEncoder(directory, fp32.info, length, model_file=recipe.file_name)
        except OnnxUnavailable:
            target.unlink(missing_ok=True)  # damaged: quantise again
    if progress:
        print("planqa: preparing the int8 passage encoder (once per model, ~30 s)", file=sys.stderr)
    quantize_file(directory / fp32.model_file, target, recipe)
    encoder = OnnxQueryEncoder(directory, fp32.info, length, model_file=recipe.file_name)
    texts = [fp32.info.model_prompts.get("passage", "") + t for t in CHECK_TEXTS]
    cosine = float(np.min(np.sum(unit(fp32.encode(texts)) * unit(encoder.encode(texts)), axis=1)))
    if cosine < MIN_INT8_CHECK_COSINE:
        target.unlink(missing_ok=True)
        raise OnnxUnavailable(f"the int8 model differs too much from fp32 (cos {cosine:.4f})")
    return encoder


def quantize_file(source: Path, target: Path, recipe: Int8Recipe) -> None:
    """``quantize_dynamic`` of ``source`` into ``target``, published atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # ONNX Runtime logs "consider pre-processing" on the root logger; that step (symbolic shape
    # inference, graph optimisation) is optional and the graph quantises without it.
    quiet, root = _DropMessages("pre-processing"), logging.getLogger()
    handle, staging = tempfile.mkstemp(prefix=".int8-", suffix=".onnx", dir=target.parent)
    os.close(handle)
    root.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                source,
                staging,
                op_types_to_quantize=list(recipe.op_types) if recipe.op_types else None,
                per_channel=recipe.per_channel,
                reduce_range=recipe.reduce_range,
                weight_type=QuantType.QInt8,
            )
        os.chmod(staging, 0o644)  # mkstemp's 0600 would differ from the export beside it
        os.replace(staging, target)
    finally:
        root.removeFilter(quiet)
        Path(staging).unlink(missing_ok=True)


class _DropMessages(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
