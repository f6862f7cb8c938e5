"""Run writers: every file is created and readable, report.md shows what evaluators need."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

import planqa.eval.rundir
import planqa.eval.tables
from planqa.corpus.settings import Settings
from planqa.eval.gold import BUNDLED_DEV_GOLD, Evidence, GoldItem, LocatedEvidence, load_gold
from planqa.eval.plots import ACCURACY_PLOT, LATENCY_PLOT, RECALL_PLOT, recall_curve
from planqa.eval.report import AGREEMENT_END, AGREEMENT_START, refresh_agreement, write_run
from planqa.eval.retrieval import Passage
from planqa.eval.run import (
    BASELINE,
    PLANQA,
    EvalRun,
    QuestionOutcome,
    SystemResult,
    run_evaluation,
    score_outcome,
    summarise_outcomes,
)
from planqa.eval.rundir import RUN_FORMAT, load_run_dir
from planqa.eval.verdicts import VerdictStore
from planqa.rag.pipeline import Pipeline

KS = (1, 3, 5, 10)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUOTE = "确保到2025年,市级以上研发机构突破230家"
PIECES = (LocatedEvidence("a.txt", QUOTE, ((1000, 1000 + len(QUOTE)),)),)
HIT = Passage("a.txt", 990, 1100, "x" * 10 + QUOTE, "第二章 创新 > 第一节")
MISS = Passage("a.txt", 0, 120, "序言|无关内容" * 20, "序言")


def gold(qid: str, kind: str = "fact") -> GoldItem:
    if kind == "unanswerable":
        return GoldItem(qid, "海上风电装机多少？", (), (), kind, False)
    return GoldItem(
        qid, f"{qid} 研发机构突破多少家？", ("230家",), (Evidence("a.txt", QUOTE),), kind, True
    )


def system(name: str, rows: list[tuple[GoldItem, str, bool, list[Passage]]]) -> SystemResult:
    outcomes: list[QuestionOutcome] = []
    for number, (item, answer, abstained, ranked) in enumerate(rows):
        cited = [] if abstained else [(1, ranked[0], ranked[0].start, ranked[0].end)]
        pieces = PIECES if item.answerable else ()
        outcomes.append(
            score_outcome(item, pieces, answer, abstained, cited, ranked, 50.0 + 10 * number, KS)
        )
    kinds = {o.type for o in outcomes}
    return SystemResult(
        name,
        summarise_outcomes(outcomes, KS),
        {k: summarise_outcomes([o for o in outcomes if o.type == k], KS) for k in sorted(kinds)},
        tuple(outcomes),
    )


def synthetic_run(baseline: bool = True) -> EvalRun:
    """q1 right, q2 wrong (evidence at rank 2), u1 refused; the baseline gets only q1 right."""
    q1, q2, u1 = gold("q1"), gold("q2", "list"), gold("u1", "unanswerable")
    planqa = system(
        PLANQA,
        [
            (q1, "突破230家[1]", False, [HIT, MISS]),
            (q2, "突破200家[1]", False, [MISS, HIT]),
            (u1, "未在现有文件中找到相关内容", True, [MISS]),
        ],
    )
    base = system(
        BASELINE,
        [
            (q1, "到2025年市级以上研发机构突破230家", False, [HIT]),
            (q2, "序言", False, [MISS]),
            (u1, "序言", False, [MISS]),
        ],
    )
    return EvalRun(
        "synthetic",
        "2025-01-01T00:00:00+00:00",
        "extractive",
        KS,
        10,
        6,
        planqa,
        base if baseline else None,
        {"embedding_model": "hash"},
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    return write_run(synthetic_run(), tmp_path_factory.mktemp("run") / "out")


def test_every_file_is_written(written) -> None:
    names = {p.name for p in written.directory.iterdir()}
    assert {
        "metrics.json",
        "results.jsonl",
        "report.md",
        RECALL_PLOT,
        ACCURACY_PLOT,
        LATENCY_PLOT,
    } <= names
    for plot in written.plots:
        data = plot.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000


def test_metrics_json_holds_both_systems_and_readable_chinese(written) -> None:
    text = written.metrics.read_text(encoding="utf-8")
    metrics = json.loads(text)
    assert metrics["format"] == RUN_FORMAT and metrics["run_id"] == "synthetic"
    planqa = metrics["systems"]["planqa"]["overall"]
    assert planqa["questions"] == 3 and planqa["answerable"] == 2
    assert planqa["answer_accuracy"] == 0.5 and planqa["abstention_accuracy"] == 1.0
    assert planqa["recall@1"] == 0.5 and planqa["recall@3"] == 1.0
    assert metrics["systems"]["baseline"]["overall"]["abstention_accuracy"] == 0.0
    # NaN is not JSON: an unmeasurable metric is null (no answerable question in the group).
    assert metrics["systems"]["planqa"]["by_type"]["unanswerable"]["answer_accuracy"] is None
    assert "NaN" not in text


def test_results_jsonl_has_one_line_per_question(written) -> None:
    rows = [json.loads(line) for line in written.results.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "u1"]
    q2 = rows[1]
    assert {
        "id",
        "question",
        "type",
        "gold_answers",
        "answer",
        "abstained",
        "citations",
        "retrieved",
        "verdicts",
        "baseline",
    } <= set(q2)
    assert q2["gold_answers"] == ["230家"] and q2["verdicts"]["correct"] is False
    assert q2["verdicts"]["first_hit_rank"] == 2 and q2["retrieved"][1]["covers"] == [0]
    assert q2["baseline"]["verdicts"]["correct"] is False
    assert rows[2]["verdicts"]["citation_hit"] is None
    assert "研发机构" in written.results.read_text(encoding="utf-8")  # ensure_ascii=False


def test_report_shows_tables_plots_and_failures_with_passages(written) -> None:
    report = written.report.read_text(encoding="utf-8")
    assert "| answer accuracy (answerable) | 0.500 | 0.500 | +0.000 |" in report
    assert "| abstention accuracy (unanswerable) | 1.000 | 0.000 | +1.000 |" in report
    assert "| list | 1 |" in report  # by-type table
    for plot in (RECALL_PLOT, ACCURACY_PLOT, LATENCY_PLOT):
        assert f"]({plot})" in report
    failures = report.split("## planqa failures", 1)[1]
    assert "### q2 [list]" in failures and "### q1 " not in failures
    assert "第二章 创新 > 第一节 **(evidence)**" in failures  # chapter of the retrieved evidence
    assert "序言\\|无关内容" in failures  # table pipes escaped, snippets cut
    snippet = next(line for line in failures.splitlines() if line.strip().startswith("1. "))
    assert snippet.endswith("…") and len(snippet) < 200
    assert AGREEMENT_START in report and AGREEMENT_END in report


def test_run_dir_loads_back(written) -> None:
    run = load_run_dir(written.directory)
    assert run.run_id == "synthetic" and run.result("q2")["answer"] == "突破200家[1]"
    assert run.result("nope") is None


def test_a_run_without_baseline_has_one_column(tmp_path: Path) -> None:
    files = write_run(synthetic_run(baseline=False), tmp_path)
    report = files.report.read_text(encoding="utf-8")
    assert "| metric | planqa |\n|---|---|\n" in report
    assert "baseline" not in json.loads(files.metrics.read_text(encoding="utf-8"))["systems"]
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in files.plots)


def test_recall_curve_matches_the_table() -> None:
    run = synthetic_run()
    curve = recall_curve(run.planqa, 10)
    assert curve[0] == run.planqa.overall.recall[1] and curve[2] == run.planqa.overall.recall[3]


def test_human_verdict_section_is_refreshed_in_place(written, tmp_path: Path) -> None:
    store = VerdictStore(tmp_path / "verdicts.sqlite3")
    assert refresh_agreement(written.directory, store) is None  # no verdicts: empty section
    store.record("synthetic", "q1", "correct", evaluator="王", citation_supports=True)
    store.record("synthetic", "q2", "partial", evaluator="王", citation_supports=True)
    result = refresh_agreement(written.directory, store)
    assert result is not None and result.answers.pairs == 2
    report = written.report.read_text(encoding="utf-8")
    section = report.split(AGREEMENT_START, 1)[1].split(AGREEMENT_END, 1)[0]
    assert "## Human verdicts" in section and "| answer verdict | 2 | 1.000 |" in section
    refresh_agreement(written.directory, store)  # idempotent: still one section
    assert written.report.read_text(encoding="utf-8").count("## Human verdicts") == 1


def test_write_run_on_a_real_pipeline_run(hash_index_settings: Settings, tmp_path: Path) -> None:
    items = [i for i in load_gold(BUNDLED_DEV_GOLD) if i.id in ("d001", "d019")]
    items += [next(i for i in load_gold(BUNDLED_DEV_GOLD) if not i.answerable)]
    run = run_evaluation(items, Pipeline.open(hash_index_settings), baseline=True, progress=False)
    files = write_run(run, tmp_path / "real")
    rows = files.results.read_text(encoding="utf-8").splitlines()
    assert len(rows) == 3 and all(json.loads(r)["baseline"]["answer"] for r in rows)
    assert all(p.stat().st_size > 5_000 for p in files.plots)


def test_module_docstrings_run() -> None:
    assert doctest.testmod(planqa.eval.rundir).failed == 0
    assert doctest.testmod(planqa.eval.tables).failed == 0
