"""The on-disk shape of an evaluation run, and reading one back.

A run directory is what outlives the process: ``compare`` diffs two of them, the verdict
agreement and the web UI's 评测 tab read them. Keeping the file names and the loader here (and
nothing heavy) lets those readers work without importing the pipeline or matplotlib.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planqa.corpus.errors import InputError

METRICS_FILE = "metrics.json"
RESULTS_FILE = "results.jsonl"
REPORT_FILE = "report.md"
#: Written into metrics.json; a reader refuses any other value rather than misreading it.
RUN_FORMAT = "planqa-eval-run/1"


@dataclass(frozen=True)
class RunDir:
    """A loaded run: ``metrics`` is metrics.json, ``results`` one dict per results.jsonl line."""

    path: Path
    metrics: dict[str, Any]
    results: tuple[dict[str, Any], ...]

    @property
    def run_id(self) -> str:
        return self.metrics["run_id"]

    def result(self, question_id: str) -> dict[str, Any] | None:
        return next((row for row in self.results if row.get("id") == question_id), None)


def json_safe(value: Any) -> Any:
    """NaN/inf become None (JSON has no NaN; "not measured" reads as null), dict keys strings.

    >>> json_safe({1: float("nan"), "a": [1.5, float("inf")]})
    {'1': None, 'a': [1.5, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def load_run_dir(path: str | Path) -> RunDir:
    """Read a run directory written by ``eval.report.write_run``; InputError if it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path} is not a directory; pass the output folder of `planqa eval`")
    metrics_path, results_path = path / METRICS_FILE, path / RESULTS_FILE
    missing = [p.name for p in (metrics_path, results_path) if not p.is_file()]
    if missing:
        raise InputError(
            f"{path} is not an evaluation run: {' and '.join(missing)} missing "
            "(a run folder is written by `planqa eval --out DIR`)"
        )
    metrics = _read_json(metrics_path)
    if not isinstance(metrics, dict) or metrics.get("format") != RUN_FORMAT:
        found = metrics.get("format") if isinstance(metrics, dict) else type(metrics).__name__
        raise InputError(f"{metrics_path} is not a {RUN_FORMAT} metrics file (format: {found!r})")
    if not isinstance(metrics.get("run_id"), str) or "planqa" not in metrics.get("systems", {}):
        raise InputError(f"{metrics_path} lacks run_id or the planqa metrics; re-run the eval")
    return RunDir(path, metrics, tuple(_read_results(results_path)))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path} as JSON ({exc})") from exc


def _read_results(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path} ({exc})") from exc
    rows, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: bad JSON ({exc.msg})")
            continue
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or "verdicts" not in row:
            problems.append(f"line {number}: not a result row (needs id and verdicts)")
            continue
        rows.append(row)
    if problems:
        raise InputError(f"{path} is damaged:\n" + "\n".join(f"  {p}" for p in problems))
    return rows
