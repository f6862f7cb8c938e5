"""The 评测 tab's issue-20 behaviour without a browser: mistakes shown once in a status line
(never gradio's "Error" overlay), one progress bar counting questions in words, agreement per
evaluator and between evaluators, and Chinese-only badges.

The browser half (the overlay really is absent, the next click works, no English on the page)
is in test_browser.py.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import gradio as gr
import pytest
from html_checks import assert_no_active_content as assert_inert
from test_review import write_gold

from planqa.corpus.errors import InputError
from planqa.eval.raters import rater_agreement
from planqa.eval.review import open_review, run_for_gold
from planqa.eval.verdicts import VerdictStore
from planqa.rag.pipeline import Pipeline
from planqa.ui.render_review import agreement_html, review_item_html
from planqa.ui.shared import INTERNAL_ERROR
from planqa.ui.tab_review import ReviewHandlers
from planqa.ui.tab_review_layout import NOTICE_LINES, inline
from planqa.ui.web import build_app

XSS_NAME = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("review-ui") / "runs"


@pytest.fixture(scope="module")
def gold_file(runs_dir: Path) -> Path:
    return write_gold(runs_dir.parent / "small-gold.jsonl")


@pytest.fixture
def handlers(pipeline: Pipeline, runs_dir: Path, tmp_path: Path) -> ReviewHandlers:
    return ReviewHandlers(
        pipeline, runs_dir, runs_dir / "verdicts.sqlite3", lambda kind: tmp_path / f"{kind}.csv"
    )


def lines_of(result: tuple) -> dict[str, str]:
    """The status lines at the end of an ``inline`` handler's result, by name."""
    return dict(zip(NOTICE_LINES, result[-len(NOTICE_LINES) :], strict=True))


# --------------------------------------------------------------------------- progress


def test_loading_a_gold_file_counts_the_questions_in_words(
    handlers: ReviewHandlers, gold_file: Path
) -> None:
    """The one progress bar says 「已回答 k/n 题」, from 0 to n (not "planqa 22%| 9/40 q")."""
    calls: list[tuple[float, str]] = []

    def progress(value: float, desc: str = "") -> None:
        calls.append((value, desc))

    handlers.load("upload", str(gold_file), None, "", "张", progress=progress)
    words = [desc for _, desc in calls]
    assert words[0] == "正在载入…"
    assert words[1:] == [f"已回答 {k}/4 题" for k in range(5)]
    assert [value for value, _ in calls[1:]] == [k / 4 for k in range(5)]
    calls.clear()
    handlers.load("upload", str(gold_file), None, "", "张", progress=progress)
    assert [desc for _, desc in calls] == ["正在载入…"]  # the run is reused: nothing answered


def test_run_for_gold_reports_each_answer(pipeline: Pipeline, tmp_path: Path) -> None:
    counts: list[tuple[int, int]] = []
    gold = write_gold(tmp_path / "g.jsonl", hostile=False)
    run_for_gold(gold, pipeline, tmp_path / "runs", on_answer=lambda d, t: counts.append((d, t)))
    assert counts == [(k, 3) for k in range(4)]


def test_the_tab_shows_one_progress_bar(pipeline: Pipeline, tmp_path: Path) -> None:
    """Every 评测 event that updates the question shows progress on one component at most:
    载入 on the status panel, the rest none (gradio would put a bar on each of eleven)."""
    demo = build_app(pipeline, runs_dir=tmp_path / "runs")
    events = [
        fn
        for fn in demo.fns.values()
        if any(getattr(out, "elem_id", None) == "pq-review-item" for out in fn.outputs)
    ]
    assert len(events) >= 7
    for fn in events:
        shown_on = fn.show_progress_on or fn.outputs
        assert fn.show_progress == "hidden" or len(shown_on) == 1, fn.name
    load = [fn for fn in events if fn.name == "load"]
    assert [out.elem_id for out in load[0].show_progress_on] == ["pq-review-status"]


# --------------------------------------------------------------------------- inline errors


def test_a_mistake_is_a_line_beside_the_control_not_an_error(
    handlers: ReviewHandlers, gold_file: Path
) -> None:
    """保存 without a verdict: no exception (gradio would cover every output with "Error"),
    the outputs unchanged, the message once, in the form's line; the next click works."""
    save = inline(handlers.save, "form")
    state = inline(handlers.load, "load")("upload", str(gold_file), None, "", "张")[0]
    result = save(state, "张", None, "yes", "")
    *outputs, _, _, _ = result
    assert all(out == {"__type__": "update"} for out in outputs)  # nothing changed
    lines = lines_of(result)
    assert lines["load"] == lines["nav"] == ""
    assert "请选择判定" in lines["form"] and 'role="alert"' in lines["form"]
    assert sum("请选择判定" in line for line in lines.values()) == 1

    result = save(state, "张", "correct", "yes", "")  # the next click just works
    assert "已保存 d001：正确" in lines_of(result)["form"]
    assert result[0].review.path == state.review.path

    moved = inline(handlers.jump, "nav")(state, "张", "d999")
    assert "不在本次运行中" in lines_of(moved)["nav"] and lines_of(moved)["form"] == ""
    refused = inline(handlers.load, "load")("upload", None, None, "", "张")
    assert "请先上传金标文件" in lines_of(refused)["load"]


def test_an_unexpected_error_is_logged_and_shown_as_a_line(
    handlers: ReviewHandlers, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire at /srv/secret")

    with caplog.at_level(logging.ERROR, logger="planqa.ui"):
        result = inline(broken, "nav")()
    assert lines_of(result)["nav"].endswith(f"{INTERNAL_ERROR}</div>")
    assert "disk on fire" in caplog.text and "secret" not in lines_of(result)["nav"]


def test_inline_keeps_the_progress_parameter_visible_to_gradio(handlers: ReviewHandlers) -> None:
    import inspect

    parameters = inspect.signature(inline(handlers.load, "load")).parameters
    assert isinstance(parameters["progress"].default, gr.Progress)


def test_the_handlers_still_raise_for_scripts(handlers: ReviewHandlers) -> None:
    """Outside the page (tests, scripts) the handlers raise as before; only the wiring turns
    errors into lines."""
    with pytest.raises(InputError, match="载入"):
        handlers.save(None, "张", "correct", "yes", "")


# --------------------------------------------------------------------------- agreement


def results(*rows: tuple[str, bool, bool | None]) -> list[dict]:
    return [
        {"id": qid, "verdicts": {"correct": correct, "citation_hit": hit}}
        for qid, correct, hit in rows
    ]


def test_agreement_is_per_evaluator_and_between_evaluators(tmp_path: Path) -> None:
    rows = results(
        ("q1", True, True), ("q2", True, False), ("q3", False, None), ("q4", False, True)
    )
    store = VerdictStore(tmp_path / "v.sqlite3")
    for qid, verdict, supports in [
        ("q1", "correct", True),
        ("q2", "correct", False),
        ("q3", "wrong", None),
        ("q4", "wrong", True),
    ]:
        store.record("run", qid, verdict, evaluator="王", citation_supports=supports)
    for qid, verdict, supports in [("q1", "partial", True), ("q2", "wrong", True)]:
        store.record("run", qid, verdict, evaluator="李", citation_supports=supports)
    store.record("other-run", "q1", "wrong", evaluator="赵")

    result = rater_agreement("run", rows, store)
    assert result.verdicts == 6
    by_name = {row.evaluator: row for row in result.evaluators}
    assert list(by_name) == ["李", "王"]  # 赵 judged another run only
    wang, li = by_name["王"], by_name["李"]
    assert (wang.verdicts, wang.answers.pairs, wang.answers.agreeing) == (4, 4, 4)
    assert wang.answers.kappa == 1.0 and wang.citations.pairs == 3
    # 李's partial counts as wrong against the automatic verdict, as in report.md.
    assert (li.answers.pairs, li.answers.agreeing) == (2, 0)
    assert li.answers.confusion == {"correct/wrong": 2}

    (pair,) = result.between
    assert (pair.first, pair.second, pair.common) == ("李", "王", 2)
    assert pair.answers.agreeing == 0 and pair.answers.confusion == {
        "partial/correct": 1,
        "wrong/correct": 1,
    }
    assert (pair.citations.pairs, pair.citations.agreeing) == (2, 1)

    html = agreement_html(result)
    assert_inert(html)
    assert html.count("<tr><td>") == 3  # two evaluators, one pair: never a pooled row
    assert "李 × 王" in html and "评测人之间的一致性" in html


def test_kappa_matches_scikit_learn(tmp_path: Path) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    truth = [True, True, False, False, True, False, True, True]
    human = ["correct", "wrong", "wrong", "correct", "correct", "wrong", "correct", "partial"]
    rows = results(*((f"q{i}", t, None) for i, t in enumerate(truth)))
    store = VerdictStore(tmp_path / "v.sqlite3")
    for i, verdict in enumerate(human):
        store.record("run", f"q{i}", verdict, evaluator="王")
    other = ["correct", "partial", "wrong", "wrong", "correct", "correct", "correct", "partial"]
    for i, verdict in enumerate(other):
        store.record("run", f"q{i}", verdict, evaluator="李")
    result = rater_agreement("run", rows, store)
    wang = next(row for row in result.evaluators if row.evaluator == "王")
    auto = ["correct" if t else "wrong" for t in truth]
    mapped = [v if v != "partial" else "wrong" for v in human]
    assert math.isclose(wang.answers.kappa, metrics.cohen_kappa_score(auto, mapped))
    assert math.isclose(result.between[0].answers.kappa, metrics.cohen_kappa_score(other, human))


def test_one_evaluator_says_a_second_is_needed(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path / "v.sqlite3")
    assert "还没有人工判定" in agreement_html(rater_agreement("run", results(), store))
    store.record("run", "q1", "correct", evaluator=XSS_NAME)
    html = agreement_html(rater_agreement("run", results(("q1", True, None)), store))
    assert_inert(html)
    assert "需要两位评测人" in html and "&lt;img" in html


def test_the_type_badge_is_chinese_only(handlers: ReviewHandlers, gold_file: Path) -> None:
    review = open_review(handlers.load("upload", str(gold_file), None, "", "张")[0].review.path)
    text = re.sub(r"<[^>]+>", " ", review_item_html(review, 0, documents=handlers.documents))
    assert "事实" in text and "fact" not in text


def test_a_report_that_cannot_be_written_is_a_warning_line_in_chinese(
    handlers: ReviewHandlers, gold_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import planqa.eval.review

    def read_only(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(planqa.eval.review, "refresh_agreement", read_only)
    state = handlers.load("upload", str(gold_file), None, "", "钱")[0]
    notice = handlers.save(state, "钱", "wrong", "na", "")[-1]
    assert "判定已保存，但未能更新 report.md" in notice and "pq-line-warning" in notice
    assert "read-only" not in notice
