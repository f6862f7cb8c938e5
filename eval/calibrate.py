"""Choose the extractive answerer's abstention threshold by cross-validation over gold sets.

The threshold (the best passage's keyword coverage below which planqa refuses) trades refusals
against answers. Fitted to one gold set they fit its questions, so each set is scored
with the values chosen on the *other* sets (leave one set out), and the reported numbers are those
held-out scores, per set and per question type. The retrieval of each question is done once; only
the answering step is repeated per grid point, through the real ``ExtractiveAnswerer``.

    planqa index --index /tmp/nine corpus/documents ../shared/more-docs/*.txt
    python -m planqa.eval.calibrate eval/gold/{dev,probes,generality}.jsonl --index /tmp/nine
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from planqa.corpus.config import load_settings
from planqa.eval.gold import GoldItem, load_gold
from planqa.eval.metrics import question_correct
from planqa.rag.pipeline import Pipeline

THRESHOLDS = (0.12, 0.16, 0.20, 0.24, 0.28, 0.32, 0.36, 0.40)


def outcomes(
    pipeline: Pipeline, items: list[GoldItem], grid: tuple[float, ...] = THRESHOLDS
) -> dict[float, list[bool]]:
    """Per threshold, whether each item was answered correctly."""
    answerer = pipeline.extractive
    prepared = [pipeline.prepare(item.question) for item in items]
    results: dict[float, list[bool]] = {}
    for threshold in grid:
        answerer.threshold = threshold
        results[threshold] = [
            question_correct(answer.answer, answer.abstained, item.answers, item.answerable)
            for item, (analysis, hits) in zip(items, prepared, strict=True)
            for answer in [answerer.answer(analysis, hits)]
        ]
    return results


def best_threshold(scored: dict[str, dict[float, list[bool]]]) -> float:
    """The threshold with the best accuracy averaged over the sets (each set weighs the same);
    ties go to the higher threshold, the cautious side."""

    def mean_accuracy(threshold: float) -> float:
        return sum(sum(s[threshold]) / len(s[threshold]) for s in scored.values()) / len(scored)

    return max(THRESHOLDS, key=lambda t: (mean_accuracy(t), t))


def by_type(items: list[GoldItem], correct: list[bool]) -> dict[str, float]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for item, ok in zip(items, correct, strict=True):
        groups[item.type].append(ok)
    return {kind: round(sum(v) / len(v), 3) for kind, v in sorted(groups.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gold", nargs="+", type=Path, help="Gold sets (one fold each).")
    parser.add_argument("--index", type=Path, required=True, help="Index holding their documents.")
    args = parser.parse_args(argv)
    pipeline = Pipeline.open(load_settings(index_dir=args.index))
    sets = {path.stem: load_gold(path) for path in args.gold}
    scored = {name: outcomes(pipeline, items) for name, items in sets.items()}
    report = {}
    for held_out, items in sets.items():
        others = [name for name in sets if name != held_out]

        chosen = best_threshold({name: scored[name] for name in others})
        correct = scored[held_out][chosen]
        report[held_out] = {
            "chosen_on": others,
            "threshold": chosen,
            "accuracy": round(sum(correct) / len(correct), 3),
            "by_type": by_type(items, correct),
        }
    report["chosen_on_all"] = {"threshold": best_threshold(scored)}
    report["grid"] = {
        str(t): {name: round(sum(s[t]) / len(s[t]), 3) for name, s in scored.items()}
        for t in THRESHOLDS
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
