"""Human verdict store: durable across crashes, upserts latest, exports CSV; agreement numbers."""

from __future__ import annotations

import csv
import doctest
import json
import math
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import planqa.eval.verdicts
from planqa.corpus.errors import InputError
from planqa.eval.rundir import RUN_FORMAT
from planqa.eval.verdicts import VerdictStore, agreement

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path: Path) -> VerdictStore:
    return VerdictStore(tmp_path / "verdicts" / "store.sqlite3")


def test_record_and_list_latest(store: VerdictStore) -> None:
    saved = store.record(
        "run1", "d001", "correct", evaluator="王", citation_supports=True, note="数字正确"
    )
    assert saved.verdict == "correct" and saved.timestamp.endswith("+00:00")
    store.record("run1", "d002", "wrong", evaluator="王")
    store.record("run1", "d001", "partial", evaluator="李", citation_supports=False)
    store.record("run2", "d001", "wrong", evaluator="王")
    latest = store.verdicts("run1")
    assert [(v.question_id, v.evaluator, v.verdict) for v in latest] == [
        ("d001", "李", "partial"),
        ("d001", "王", "correct"),
        ("d002", "王", "wrong"),
    ]
    assert latest[1].note == "数字正确" and latest[1].citation_supports is True
    assert latest[2].citation_supports is None
    assert [v.question_id for v in store.verdicts("run1", evaluator="李")] == ["d001"]
    assert store.runs() == ["run1", "run2"]


def test_a_new_verdict_replaces_the_latest_and_history_keeps_both(store: VerdictStore) -> None:
    store.record("run1", "d001", "wrong", evaluator="王", timestamp="2025-01-01T10:00:00+08:00")
    store.record("run1", "d001", "correct", evaluator="王", timestamp="2025-01-02T10:00:00+08:00")
    # An import of an older judgement goes into the history but does not win.
    store.record("run1", "d001", "partial", evaluator="王", timestamp="2024-12-31T00:00:00")
    assert store.verdict("run1", "d001", "王").verdict == "correct"
    assert [v.verdict for v in store.history("run1", "d001")] == ["partial", "wrong", "correct"]
    assert store.history("run1")[1].timestamp == "2025-01-01T02:00:00.000000+00:00"  # UTC
    assert store.verdict("run1", "d001", "nobody") is None


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("run1", "d001", "maybe"), {"evaluator": "王"}, "not one of correct, partial, wrong"),
        (("run1", "d001", "correct"), {"evaluator": " "}, "evaluator"),
        (("", "d001", "correct"), {"evaluator": "王"}, "run_id"),
        (
            ("run1", "d001", "correct"),
            {"evaluator": "王", "citation_supports": "yes"},
            "citation_supports",
        ),
        (("run1", "d001", "correct"), {"evaluator": "王", "timestamp": "yesterday"}, "ISO 8601"),
    ],
)
def test_bad_verdicts_are_input_errors(
    store: VerdictStore, args: tuple, kwargs: dict, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        store.record(*args, **kwargs)
    assert store.history("run1") == []


def test_store_uses_wal(store: VerdictStore) -> None:
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_not_a_database_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="verdict store"):
        VerdictStore(path)


def test_every_saved_verdict_survives_an_abrupt_stop(tmp_path: Path) -> None:
    """A child records 20 verdicts and dies with os._exit (no close, no cleanup, no checkpoint):
    a fresh process sees all of them.

    A second connection held open the whole time (as a web server's reader would) keeps SQLite
    from checkpointing the WAL on close, so the verdicts really are only in the WAL at the crash.
    """
    path = tmp_path / "crash.sqlite3"
    child = textwrap.dedent(f"""
        import os, sqlite3
        from planqa.eval.verdicts import VerdictStore
        store = VerdictStore({str(path)!r})
        held = sqlite3.connect({str(path)!r})
        held.execute("SELECT count(*) FROM latest").fetchone()
        for i in range(20):
            store.record("run1", f"d{{i:03d}}", "correct", evaluator="王", note="笔记")
        os._exit(1)
    """)
    result = subprocess.run(
        [sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1, result.stderr
    assert Path(str(path) + "-wal").stat().st_size > 0  # the verdicts sit in the WAL
    reader = textwrap.dedent(f"""
        from planqa.eval.verdicts import VerdictStore
        print(len(VerdictStore({str(path)!r}).verdicts("run1")))
    """)
    counted = subprocess.run(
        [sys.executable, "-c", reader], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert counted.stdout.strip() == "20"
    assert len(VerdictStore(path).history("run1")) == 20


def test_export_csv(store: VerdictStore, tmp_path: Path) -> None:
    note = '好, "准"'
    store.record("run1", "d001", "correct", evaluator="王", citation_supports=True, note=note)
    store.record("run1", "d001", "wrong", evaluator="王")
    store.record("run1", "d002", "partial", evaluator="李", citation_supports=False)
    store.record("run2", "d003", "wrong", evaluator="李")
    out = tmp_path / "verdicts.csv"
    assert store.export_csv(out, run_id="run1") == 2
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Chinese right
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["question_id"], r["verdict"], r["citation_supports"]) for r in rows] == [
        ("d001", "wrong", ""),
        ("d002", "partial", "false"),
    ]
    assert store.export_csv(out, history=True) == 4
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["note"] == note and rows[0]["citation_supports"] == "true"


# --------------------------------------------------------------------------- agreement


def run_dir(path: Path, verdicts: dict[str, dict]) -> Path:
    path.mkdir()
    metrics = {"format": RUN_FORMAT, "run_id": "run1", "systems": {"planqa": {"overall": {}}}}
    (path / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    lines = [json.dumps({"id": qid, "verdicts": v}) for qid, v in verdicts.items()]
    (path / "results.jsonl").write_text("\n".join(lines), encoding="utf-8")
    return path


def test_agreement_hand_example(store: VerdictStore, tmp_path: Path) -> None:
    """Six answers. Automatic: q1-q4 correct, q5-q6 wrong. Humans: q1 correct, q2 correct,
    q3 partial, q4 wrong, q5 wrong, q6 correct.

    partial -> wrong: pairs (c,c) (c,c) (c,w) (c,w) (w,w) (w,c): agree 3/6 = 0.5;
    auto c 4/6, human c 3/6: p_e = 4/6*3/6 + 2/6*3/6 = 0.5, kappa = 0.
    partial -> correct: agree 4/6; human c 4/6: p_e = 4/6*4/6 + 2/6*2/6 = 5/9,
    kappa = (2/3 - 5/9) / (4/9) = 0.25.
    """
    auto = {f"q{i}": {"correct": i <= 4, "citation_hit": i != 2} for i in range(1, 7)}
    directory = run_dir(tmp_path / "run", auto)
    human = {
        "q1": "correct",
        "q2": "correct",
        "q3": "partial",
        "q4": "wrong",
        "q5": "wrong",
        "q6": "correct",
    }
    for qid, verdict in human.items():
        store.record("run1", qid, verdict, evaluator="王", citation_supports=qid != "q3")
    strict = agreement(directory, store)
    assert (strict.answers.pairs, strict.answers.agreeing) == (6, 3)
    assert strict.answers.share == 0.5 and strict.answers.kappa == pytest.approx(0.0)
    assert strict.answers.confusion == {
        "correct/correct": 2,
        "correct/wrong": 2,
        "wrong/correct": 1,
        "wrong/wrong": 1,
    }
    assert strict.disagreements == ("q3 (王)", "q4 (王)", "q6 (王)")
    lenient = agreement(directory, store, partial_as="correct")
    assert lenient.answers.share == pytest.approx(4 / 6)
    assert lenient.answers.kappa == pytest.approx(0.25)
    excluded = agreement(directory, store, partial_as="exclude")
    assert excluded.answers.pairs == 5 and excluded.verdicts == 6
    # Citations: auto hits all but q2; humans say supports for all but q3: 4 of 6 agree.
    assert strict.citations.pairs == 6 and strict.citations.agreeing == 4
    json.dumps(strict.to_dict())  # NaN-free, serialisable for the web UI


def test_agreement_edge_cases(store: VerdictStore, tmp_path: Path) -> None:
    directory = run_dir(tmp_path / "run", {"q1": {"correct": True, "citation_hit": None}})
    empty = agreement(directory, store)
    assert empty.answers.pairs == 0 and math.isnan(empty.answers.share)
    assert empty.to_dict()["answers"]["kappa"] is None
    store.record("run1", "q1", "correct", evaluator="王", citation_supports=True)
    store.record("run1", "q9", "wrong", evaluator="王")
    store.record("other-run", "q1", "wrong", evaluator="王")
    result = agreement(directory, store)
    assert result.answers.pairs == 1 and result.answers.share == 1.0
    assert math.isnan(result.answers.kappa)  # one label on both sides: kappa undefined
    assert result.citations.pairs == 0  # unanswerable: no automatic citation verdict
    assert result.unknown_questions == ("q9",)
    with pytest.raises(InputError, match="partial_as"):
        agreement(directory, store, partial_as="half")  # type: ignore[arg-type]


def test_module_docstrings_run() -> None:
    assert doctest.testmod(planqa.eval.verdicts).failed == 0
