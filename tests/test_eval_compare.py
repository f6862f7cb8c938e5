"""Comparing two run folders: metric deltas, flipped questions, and refusing non-runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from planqa.corpus.errors import InputError
from planqa.eval.compare import compare_runs, format_comparison
from planqa.eval.rundir import RUN_FORMAT


def write_run_dir(
    path: Path, run_id: str, accuracy: float, rows: list[tuple[str, bool, bool, str]]
) -> Path:
    """A minimal run folder: ``rows`` are (id, correct, abstained, answer)."""
    path.mkdir(parents=True)
    overall: dict[str, Any] = {
        "questions": len(rows),
        "answer_accuracy": accuracy,
        "recall@5": 0.8,
        "latency_p50_ms": 120.0,
        "mrr": None,
    }
    metrics = {
        "format": RUN_FORMAT,
        "run_id": run_id,
        "ks": [1, 5],
        "systems": {
            "planqa": {
                "overall": overall,
                "by_type": {
                    "fact": {"answer_accuracy": accuracy},
                    "unanswerable": {"abstention_accuracy": 1.0},
                },
            }
        },
    }
    (path / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False), encoding="utf-8")
    lines = [
        json.dumps(
            {
                "id": qid,
                "type": "fact",
                "question": f"问题{qid}",
                "answer": answer,
                "abstained": abstained,
                "verdicts": {"correct": correct},
            },
            ensure_ascii=False,
        )
        for qid, correct, abstained, answer in rows
    ]
    (path / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    a = write_run_dir(
        tmp_path / "a",
        "run-a",
        0.5,
        [
            ("q1", True, False, "230家"),
            ("q2", False, False, "200家"),
            ("q3", True, False, "35%"),
            ("q4", False, True, "未在现有文件中找到相关内容"),
            ("q5", True, False, "不变"),
            ("old", True, False, "只在 A"),
        ],
    )
    b = write_run_dir(
        tmp_path / "b",
        "run-b",
        0.75,
        [
            ("q1", True, False, "230家"),
            ("q2", True, False, "230家"),
            ("q3", False, True, "未在现有文件中找到相关内容"),
            ("q4", True, False, "7.39万元"),
            ("q5", True, False, "不变"),
            ("new", True, False, "只在 B"),
        ],
    )
    return a, b


def test_flipped_questions_are_found(runs: tuple[Path, Path]) -> None:
    comparison = compare_runs(*runs)
    assert (comparison.run_a, comparison.run_b) == ("run-a", "run-b")
    assert [f.id for f in comparison.became_wrong] == ["q3"]
    assert [f.id for f in comparison.became_correct] == ["q2", "q4"]
    assert [f.id for f in comparison.started_abstaining] == ["q3"]
    assert [f.id for f in comparison.stopped_abstaining] == ["q4"]
    assert comparison.only_in_a == ("old",) and comparison.only_in_b == ("new",)
    flip = comparison.became_correct[0]
    assert (flip.answer_a, flip.answer_b, flip.question) == ("200家", "230家", "问题q2")


def test_metric_deltas(runs: tuple[Path, Path]) -> None:
    comparison = compare_runs(*runs)
    by_key = {m.key: m for m in comparison.metrics}
    assert by_key["answer_accuracy"].delta == pytest.approx(0.25)
    assert by_key["recall@5"].delta == 0.0
    assert by_key["mrr"].delta is None  # null in both runs: unknown, not zero
    assert "recall@1" in by_key and "recall@10" not in by_key  # the runs' own ks
    types = {m.key: m for m in comparison.by_type}
    assert types["fact"].delta == pytest.approx(0.25) and types["unanswerable"].a == 1.0


def test_format_lists_deltas_and_flips(runs: tuple[Path, Path]) -> None:
    text = format_comparison(compare_runs(*runs))
    assert "| answer accuracy (answerable) | 0.500 | 0.750 | +0.250 |" in text
    assert "## correct → wrong: 1" in text and "## wrong → correct: 2" in text
    assert "- q3 [fact] 问题q3" in text and "  - B: 未在现有文件中找到相关内容" in text
    assert "only in A: old" in text and "only in B: new" in text


def test_a_run_compared_with_itself_has_no_flips(runs: tuple[Path, Path]) -> None:
    comparison = compare_runs(runs[0], runs[0])
    assert not (
        comparison.became_wrong
        or comparison.became_correct
        or comparison.started_abstaining
        or comparison.stopped_abstaining
    )
    assert all(m.delta in (0.0, None) for m in comparison.metrics)


def test_not_a_run_is_a_clear_input_error(runs: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = runs
    with pytest.raises(InputError, match="not a directory"):
        compare_runs(tmp_path / "missing", a)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"not an evaluation run: metrics.json and results.jsonl"):
        compare_runs(a, tmp_path / "empty")
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.json").write_text('{"format": "something-else"}', encoding="utf-8")
    (other / "results.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="format"):
        compare_runs(a, other)
    (a / "results.jsonl").write_text('{"id": "q1"}\nnot json\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 1: not a result row.*\n.*line 2: bad JSON"):
        compare_runs(a, a)
