"""Two evaluation runs side by side: what moved, and which questions flipped.

A change to chunking or the abstention threshold moves averages by a question or two; the
averages alone do not say whether it fixed three questions and broke two others. ``compare_runs``
reads two run folders (no model, no index) and lists the metric deltas and every flipped
question, so a regression is named, not averaged away.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planqa.eval.rundir import RunDir, load_run_dir
from planqa.eval.tables import fmt, fmt_delta, markdown_table, metric_rows, one_line


@dataclass(frozen=True)
class MetricDelta:
    """One metric in both runs; ``delta`` is B − A, None when either side was not measured."""

    key: str
    label: str
    a: float | None
    b: float | None
    delta: float | None

    @classmethod
    def of(cls, key: str, label: str, a: float | None, b: float | None) -> MetricDelta:
        return cls(key, label, a, b, None if a is None or b is None else b - a)


@dataclass(frozen=True)
class FlippedQuestion:
    id: str
    type: str
    question: str
    answer_a: str
    answer_b: str


@dataclass(frozen=True)
class Comparison:
    """Run A is the reference, run B the candidate; deltas are B − A (planqa's metrics)."""

    run_a: str
    run_b: str
    metrics: tuple[MetricDelta, ...]
    by_type: tuple[MetricDelta, ...]  # accuracy per question type
    became_wrong: tuple[FlippedQuestion, ...]
    became_correct: tuple[FlippedQuestion, ...]
    started_abstaining: tuple[FlippedQuestion, ...]
    stopped_abstaining: tuple[FlippedQuestion, ...]
    only_in_a: tuple[str, ...]
    only_in_b: tuple[str, ...]


def compare_runs(dir_a: str | Path, dir_b: str | Path) -> Comparison:
    """Compare two run folders (InputError if either is not one)."""
    a, b = load_run_dir(dir_a), load_run_dir(dir_b)
    ks = sorted({*a.metrics.get("ks", []), *b.metrics.get("ks", [])})
    overall_a, overall_b = _planqa(a)["overall"], _planqa(b)["overall"]
    metrics = tuple(
        MetricDelta.of(key, label, overall_a.get(key), overall_b.get(key))
        for key, label in metric_rows(ks)
    )
    types_a, types_b = _planqa(a).get("by_type", {}), _planqa(b).get("by_type", {})
    by_type = tuple(
        MetricDelta.of(
            kind,
            kind,
            _type_accuracy(kind, types_a.get(kind)),
            _type_accuracy(kind, types_b.get(kind)),
        )
        for kind in dict.fromkeys([*types_a, *types_b])
    )
    rows_a = {row["id"]: row for row in a.results}
    rows_b = {row["id"]: row for row in b.results}
    shared = [qid for qid in rows_a if qid in rows_b]

    def flipped(test) -> tuple[FlippedQuestion, ...]:
        return tuple(
            _flip(rows_a[qid], rows_b[qid]) for qid in shared if test(rows_a[qid], rows_b[qid])
        )

    return Comparison(
        run_a=a.run_id,
        run_b=b.run_id,
        metrics=metrics,
        by_type=by_type,
        became_wrong=flipped(lambda x, y: _correct(x) and not _correct(y)),
        became_correct=flipped(lambda x, y: not _correct(x) and _correct(y)),
        started_abstaining=flipped(lambda x, y: not x.get("abstained") and y.get("abstained")),
        stopped_abstaining=flipped(lambda x, y: x.get("abstained") and not y.get("abstained")),
        only_in_a=tuple(qid for qid in rows_a if qid not in rows_b),
        only_in_b=tuple(qid for qid in rows_b if qid not in rows_a),
    )


def _planqa(run: RunDir) -> dict[str, Any]:
    return run.metrics["systems"]["planqa"]


def _type_accuracy(kind: str, summary: dict[str, Any] | None) -> float | None:
    if summary is None:
        return None
    return summary.get("abstention_accuracy" if kind == "unanswerable" else "answer_accuracy")


def _correct(row: dict[str, Any]) -> bool:
    return bool(row["verdicts"].get("correct"))


def _flip(a: dict[str, Any], b: dict[str, Any]) -> FlippedQuestion:
    return FlippedQuestion(
        a["id"], a.get("type", ""), a.get("question", ""), a.get("answer", ""), b.get("answer", "")
    )


def format_comparison(comparison: Comparison, *, answer_chars: int = 80) -> str:
    """Markdown: metric and per-type tables with deltas, then each group of flipped questions."""

    def table(rows: tuple[MetricDelta, ...], first: str) -> str:
        return markdown_table(
            [first, comparison.run_a, comparison.run_b, "Δ (B − A)"],
            [[r.label, fmt(r.a, r.key), fmt(r.b, r.key), fmt_delta(r.b, r.a, r.key)] for r in rows],
        )

    lines = [
        f"# {comparison.run_a} (A) vs {comparison.run_b} (B): planqa",
        "",
        table(comparison.metrics, "metric"),
        "",
        "Accuracy by question type:",
        "",
        table(comparison.by_type, "type"),
    ]
    groups = (
        ("correct → wrong", comparison.became_wrong),
        ("wrong → correct", comparison.became_correct),
        ("answered → abstained", comparison.started_abstaining),
        ("abstained → answered", comparison.stopped_abstaining),
    )
    for title, flips in groups:
        lines += ["", f"## {title}: {len(flips)}"]
        for f in flips:
            lines.append(f"- {f.id} [{f.type}] {one_line(f.question, 60)}")
            lines.append(f"  - A: {one_line(f.answer_a, answer_chars)}")
            lines.append(f"  - B: {one_line(f.answer_b, answer_chars)}")
    for name, ids in (("only in A", comparison.only_in_a), ("only in B", comparison.only_in_b)):
        if ids:
            lines += ["", f"{name}: {', '.join(ids)}"]
    return "\n".join(lines)
