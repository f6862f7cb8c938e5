"""Plain-text formatting shared by report.md and ``compare``: metric names, numbers, tables.

Kept apart from ``eval.report`` so that comparing two run folders imports no pipeline code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def metric_rows(ks: Sequence[int]) -> list[tuple[str, str]]:
    """``(key, label)`` of every headline metric, in report order (keys as in metrics.json)."""
    return [
        ("questions", "questions"),
        ("answer_accuracy", "answer accuracy (answerable)"),
        ("abstention_accuracy", "abstention accuracy (unanswerable)"),
        ("false_abstention_rate", "false-abstention rate (lower is better)"),
        ("accuracy", "overall accuracy (all questions)"),
        ("citation_hit", "citation hit"),
        ("citation_precision", "citation precision"),
        *((f"recall@{k}", f"evidence recall@{k}") for k in ks),
        ("mrr", "MRR@10"),
        ("ndcg@10", "nDCG@10"),
        ("latency_p50_ms", "latency p50 (ms)"),
        ("latency_p95_ms", "latency p95 (ms)"),
    ]


def fmt(value: float | int | None, key: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key in ("questions", "answerable") or isinstance(value, int):
        return str(value)
    if key.startswith("latency"):
        return f"{value:.1f}"
    return f"{value:.3f}"


def fmt_delta(a: float | None, b: float | None, key: str) -> str:
    if a is None or b is None or key == "questions":
        return ""
    delta = a - b
    return f"{delta:+.1f}" if key.startswith("latency") else f"{delta:+.3f}"


def one_line(text: str, limit: int) -> str:
    """Collapse whitespace, escape table pipes, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
