"""Choose the extractive answerer's abstention threshold — or, with the answer model on, the
model's accept, veto and weight (rag/judging.py) — by cross-validation over gold sets.

The threshold (the best passage's keyword coverage below which planqa refuses) trades refusals
against answers; the model's numbers trade rescued rewordings against wrongly accepted
neighbours. Fitted to one gold set they fit its questions, so each set is scored
with the values chosen on the *other* sets (leave one set out), and the reported numbers are those
held-out scores, per set and per question type. The retrieval of each question is done once; only
the answering step is repeated per grid point, through the real ``ExtractiveAnswerer``.

    planqa index --index /tmp/nine corpus/documents ../shared/more-docs/*.txt
    python -m planqa.eval.calibrate eval/gold/{dev,probes,generality}.jsonl --index /tmp/nine

(``PLANQA_ANSWER_MODEL=shipped``, or a CrossEncoder of your own, for the answer model's grid.)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from planqa.corpus.config import load_settings
from planqa.eval.gold import GoldItem, load_gold
from planqa.eval.metrics import question_correct
from planqa.rag.answer_model import SentenceJudge
from planqa.rag.extractive import DEFAULT_ABSTAIN_THRESHOLD
from planqa.rag.judging import JudgeTuning
from planqa.rag.pipeline import Pipeline

THRESHOLDS = (0.12, 0.16, 0.20, 0.24, 0.28, 0.32, 0.36, 0.40)
#: The answer model's grid (rag/judging.py); an accept of 1.01 never rescues, a veto of 0 never
#: vetoes, a weight of 0 leaves the lexical order — so "the model changes nothing" is a point too.
ACCEPTS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.01)
VETOES = (0.0, 0.05, 0.1, 0.2, 0.3)
WEIGHTS = (0.0, 0.1, 0.2, 0.4)

#: One grid point: the abstention threshold and, with the answer model, its tuning.
Point = tuple[float, JudgeTuning | None]


def grid(pipeline: Pipeline) -> list[Point]:
    """Thresholds for the lexical answerer; with the answer model its three numbers at the
    default threshold (itself chosen by cross-validation without the model)."""
    if pipeline.extractive.judging is None:
        return [(t, None) for t in THRESHOLDS]
    return [
        (DEFAULT_ABSTAIN_THRESHOLD, JudgeTuning(accept, veto, weight))
        for accept in ACCEPTS
        for veto in VETOES
        for weight in WEIGHTS
    ]


class _Remembered:
    """The judge's probabilities computed once per question and candidates: every grid point
    judges the same sentences, so only the first pays for the model."""

    def __init__(self, judge: SentenceJudge) -> None:
        self.judge = judge
        self.name = judge.name
        self._seen: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        key = (question, tuple(sentences))
        if key not in self._seen:
            self._seen[key] = self.judge.probabilities(question, sentences)
        return self._seen[key]


def outcomes(
    pipeline: Pipeline, items: list[GoldItem], points: list[Point]
) -> dict[Point, list[bool]]:
    """Per grid point, whether each item was answered correctly."""
    answerer = pipeline.extractive
    judging = answerer.judging
    if judging is not None:
        judging.judge = _Remembered(judging.judge)
    prepared = [pipeline.prepare(item.question) for item in items]
    results: dict[Point, list[bool]] = {}
    for point in tqdm(points, desc="grid", unit="point", file=sys.stderr):
        answerer.threshold, tuning = point
        if judging is not None and tuning is not None:
            judging.tuning = tuning
        results[point] = [
            question_correct(answer.answer, answer.abstained, item.answers, item.answerable)
            for item, (analysis, hits) in zip(items, prepared, strict=True)
            for answer in [answerer.answer(analysis, hits)]
        ]
    return results


def best_point(scored: dict[str, dict[Point, list[bool]]]) -> Point:
    """The point with the best accuracy averaged over the sets (each set weighs the same);
    ties go to the cautious side: the higher threshold, then the stricter model."""

    def rank(point: Point) -> tuple[float, ...]:
        mean = sum(sum(s[point]) / len(s[point]) for s in scored.values()) / len(scored)
        threshold, tuning = point
        cautious = (tuning.accept, tuning.veto, -tuning.weight) if tuning else ()
        return (round(mean, 9), threshold, *cautious)

    return max(next(iter(scored.values())), key=rank)


def describe(point: Point) -> dict[str, float]:
    threshold, tuning = point
    return {"threshold": threshold, **(asdict(tuning) if tuning else {})}


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
    points = grid(pipeline)
    scored = {name: outcomes(pipeline, items, points) for name, items in sets.items()}
    report = {}
    for held_out, items in sets.items():
        others = [name for name in sets if name != held_out]

        chosen = best_point({name: scored[name] for name in others})
        correct = scored[held_out][chosen]
        report[held_out] = {
            "chosen_on": others,
            **describe(chosen),
            "accuracy": round(sum(correct) / len(correct), 3),
            "by_type": by_type(items, correct),
        }
    report["chosen_on_all"] = describe(best_point(scored))
    if len(points) <= len(THRESHOLDS):
        report["grid"] = {
            str(p[0]): {name: round(sum(s[p]) / len(s[p]), 3) for name, s in scored.items()}
            for p in points
        }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
