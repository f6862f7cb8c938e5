"""The 评测 tab without a browser: gold file -> run, verdicts, agreement, export, handlers, HTML.

Uses the hash-embedder index and a four-question gold file (fast); the browser test in
test_browser.py drives the same tab in Chromium with the full development set.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from html_checks import assert_no_active_content as assert_inert

import planqa.eval.review
from planqa.corpus.errors import InputError
from planqa.eval.gold import BUNDLED_DEV_GOLD
from planqa.eval.report import AGREEMENT_START
from planqa.eval.review import (
    GOLD_COPY,
    find_runs,
    first_unjudged,
    gold_run_id,
    open_review,
    run_agreement,
    run_for_gold,
    save_verdict,
)
from planqa.eval.rundir import METRICS_FILE, REPORT_FILE, RESULTS_FILE
from planqa.eval.verdict_export import EXPORT_COLUMNS, export_csv
from planqa.eval.verdicts import VerdictStore
from planqa.rag.pipeline import Pipeline
from planqa.ui.render_review import review_item_html
from planqa.ui.tab_review import (
    ReviewHandlers,
    ReviewState,
    supports_choice,
    supports_value,
)
from planqa.ui.web import build_app

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"
#: d001 (fact), d024 (compare), d036 (unanswerable) of the development set, and d001 again with
#: markup in its question and gold answer (an uploaded gold file is arbitrary text).
DEV_IDS = ("d001", "d024", "d036")


def dev_records() -> dict[str, dict]:
    lines = BUNDLED_DEV_GOLD.read_text(encoding="utf-8").splitlines()
    return {record["id"]: record for record in map(json.loads, filter(None, lines))}


def write_gold(path: Path, *, hostile: bool = True) -> Path:
    records = dev_records()
    chosen = [records[i] for i in DEV_IDS]
    if hostile:
        chosen.append(
            {
                **records["d001"],
                "id": "x001",
                "question": f"{XSS_SCRIPT}{XSS_IMG}南通开发区“十三五”期间实际利用外资累计多少？",
                "answers": [f"{XSS_IMG}32.5亿美元", "32.5亿"],
            }
        )
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in chosen) + "\n", "utf-8")
    return path


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("review") / "runs"


@pytest.fixture(scope="module")
def gold_file(runs_dir: Path) -> Path:
    return write_gold(runs_dir.parent / "small-gold.jsonl")


@pytest.fixture(scope="module")
def run_dir(gold_file: Path, pipeline: Pipeline, runs_dir: Path) -> Path:
    """The small gold file answered once for the whole module (a few seconds)."""
    return run_for_gold(gold_file, pipeline, runs_dir)


@pytest.fixture
def store(tmp_path: Path) -> VerdictStore:
    return VerdictStore(tmp_path / "verdicts.sqlite3")


# --------------------------------------------------------------------------- gold -> run


def test_a_gold_file_becomes_a_complete_run_once(
    run_dir: Path, gold_file: Path, pipeline: Pipeline, runs_dir: Path, monkeypatch
) -> None:
    assert run_dir.parent == runs_dir and run_dir.name.startswith("ui-small-gold-")
    for name in (METRICS_FILE, RESULTS_FILE, REPORT_FILE, GOLD_COPY):
        assert (run_dir / name).is_file(), name
    assert not [p for p in runs_dir.iterdir() if p.name.startswith(".tmp-")]
    rows = (run_dir / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    assert [json.loads(r)["id"] for r in rows] == [*DEV_IDS, "x001"]

    # Loading the same gold file again reuses the run: nothing is answered a second time.
    def no_answering(*args, **kwargs):
        raise AssertionError("the run was answered again")

    monkeypatch.setattr(planqa.eval.review, "run_evaluation", no_answering)
    assert run_for_gold(gold_file, pipeline, runs_dir) == run_dir
    assert [run.path for run in find_runs(runs_dir)] == [run_dir]
    assert find_runs(runs_dir)[0].questions == 4


def test_run_id_follows_the_gold_content(tmp_path: Path, pipeline: Pipeline) -> None:
    first = write_gold(tmp_path / "a.jsonl")
    same = write_gold(tmp_path / "b.jsonl")
    other = write_gold(tmp_path / "c.jsonl", hostile=False)
    assert gold_run_id(first, pipeline, name="x") == gold_run_id(same, pipeline, name="x")
    assert gold_run_id(first, pipeline, name="x") != gold_run_id(other, pipeline, name="x")
    assert gold_run_id(first, pipeline, name="../../etc 名单").startswith("ui-etc_名单-")


def test_a_bad_gold_file_is_reported_and_writes_nothing(tmp_path: Path, pipeline: Pipeline) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "q1", "question": "?"}\nnot json\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 1: .*\n.*line 2: bad JSON"):
        run_for_gold(bad, pipeline, tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_find_runs_skips_what_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / METRICS_FILE).write_text("{not json", encoding="utf-8")
    (tmp_path / ".tmp-half").mkdir()
    assert find_runs(tmp_path) == [] and find_runs(tmp_path / "missing") == []


# --------------------------------------------------------------------------- a review


def test_evidence_comes_from_the_runs_gold_copy_or_the_dev_set(
    run_dir: Path, tmp_path: Path
) -> None:
    review = open_review(run_dir)
    assert review.size == 4 and review.gold_source == run_dir / GOLD_COPY
    assert review.evidence["d001"][0].doc == "000_7b8cb340e9bca2f6.txt"
    assert review.evidence["d036"] == ()

    # A run without its copy (as `planqa eval` writes) borrows the dev set only if it fits.
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (METRICS_FILE, RESULTS_FILE):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    assert open_review(copy).gold_source is None  # x001 is not a dev question
    rows = (copy / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    (copy / RESULTS_FILE).write_text("\n".join(rows[:3]) + "\n", encoding="utf-8")
    assert open_review(copy).gold_source == BUNDLED_DEV_GOLD


def test_open_review_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an evaluation run"):
        open_review(tmp_path)


def test_verdicts_are_saved_durably_and_refresh_the_report(
    run_dir: Path, store: VerdictStore
) -> None:
    review = open_review(run_dir)
    assert first_unjudged(review, store, "王") == 0
    saved = save_verdict(
        review, store, "d001", evaluator=" 王 ", verdict="correct", citation_supports=True
    )
    assert saved.report_error is None and saved.verdict.evaluator == "王"
    save_verdict(
        review,
        store,
        "d024",
        evaluator="王",
        verdict="partial",
        citation_supports=None,
        note="单位",
    )
    # A fresh store on the same file (another process, a restarted server) sees both.
    again = VerdictStore(store.path)
    assert [v.question_id for v in again.verdicts(review.run_id)] == ["d001", "d024"]
    assert first_unjudged(review, again, "王") == 2
    assert first_unjudged(review, again, "李") == 0

    result = run_agreement(review, again)
    assert result.answers.pairs == 2 and result.evaluators == ("王",)
    report = (run_dir / REPORT_FILE).read_text(encoding="utf-8")
    assert "## Human verdicts" in report.split(AGREEMENT_START, 1)[1]


def test_a_verdict_is_kept_when_the_report_cannot_be_written(
    run_dir: Path, store: VerdictStore, monkeypatch
) -> None:
    def read_only(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(planqa.eval.review, "refresh_agreement", read_only)
    review = open_review(run_dir)
    saved = save_verdict(
        review, store, "d036", evaluator="王", verdict="wrong", citation_supports=None
    )
    assert "read-only" in (saved.report_error or "")
    assert store.verdict(review.run_id, "d036", "王").verdict == "wrong"


def test_bad_verdicts_are_input_errors(run_dir: Path, store: VerdictStore) -> None:
    review = open_review(run_dir)
    with pytest.raises(InputError, match="not in run"):
        save_verdict(
            review, store, "nope", evaluator="王", verdict="correct", citation_supports=None
        )
    with pytest.raises(InputError, match="not one of"):
        save_verdict(review, store, "d001", evaluator="王", verdict="ok", citation_supports=None)
    assert store.verdicts(review.run_id) == []


def test_export_is_excel_safe_and_carries_the_context(
    run_dir: Path, store: VerdictStore, tmp_path: Path
) -> None:
    review = open_review(run_dir)
    save_verdict(
        review,
        store,
        "x001",
        evaluator="李",
        verdict="wrong",
        citation_supports=False,
        note='=HYPERLINK("http://x") 单位错',
    )
    save_verdict(review, store, "d001", evaluator="王", verdict="correct", citation_supports=True)
    out = tmp_path / "verdicts.csv"
    assert export_csv(review, store, out) == 2
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [r["题目 ID"] for r in rows] == ["d001", "x001"]  # in run order
    assert rows[1]["备注"] == '\'=HYPERLINK("http://x") 单位错'
    # Words for people, codes for tools, side by side.
    assert (rows[1]["人工判定"], rows[1]["判定代码"]) == ("错误", "wrong")
    assert (rows[1]["引用是否支持回答"], rows[1]["引用支持代码"]) == ("不支持", "false")
    assert (rows[0]["题型"], rows[0]["题型代码"]) == ("事实", "fact")
    assert rows[0]["可回答"] == "是" and rows[0]["自动判定"] in ("正确", "错误")
    assert rows[0]["自动判定代码"] == {"正确": "true", "错误": "false"}[rows[0]["自动判定"]]
    assert XSS_SCRIPT in rows[1]["问题"] and "32.5亿" in rows[0]["金标答案"]
    assert all(not any("a" <= c <= "z" for c in name.replace("planqa", "")) for name in rows[0])


# --------------------------------------------------------------------------- HTML


def test_item_html_shows_everything_and_is_inert(run_dir: Path, pipeline: Pipeline) -> None:
    review = open_review(run_dir)
    documents = pipeline.searcher.documents
    hostile = review_item_html(review, 3, documents=documents)
    assert_inert(hostile)
    assert "&lt;script&gt;" in hostile and "&lt;img src=x" in hostile
    assert "第 4 / 4 题" in hostile

    fact = review_item_html(review, 0, documents=documents)
    assert_inert(fact)
    for part in ("planqa 的回答", "金标答案与证据", "自动判定", "32.5亿美元", "证据1"):
        assert part in fact
    assert 'mark class="pq-quote"' in fact and "planqa_doc=000_7b8cb340e9bca2f6.txt" in fact
    unanswerable = review_item_html(review, 2, documents=documents)
    assert "不可回答" in unanswerable and "应拒答" in unanswerable
    assert "第 4 / 4 题" in review_item_html(review, 99, documents=documents)  # clamped


def test_supports_choice_round_trips() -> None:
    for value in (True, False, None):
        assert supports_value(supports_choice(value)) is value
    assert supports_value(None) is None


# --------------------------------------------------------------------------- handlers


def handlers_for(pipeline: Pipeline, runs_dir: Path, tmp_path: Path) -> ReviewHandlers:
    exports = tmp_path / "exports"
    exports.mkdir(exist_ok=True)
    return ReviewHandlers(
        pipeline, runs_dir, runs_dir / "verdicts.sqlite3", lambda kind: exports / f"{kind}.csv"
    )


def test_handlers_step_judge_and_resume_after_a_reload(
    pipeline: Pipeline, run_dir: Path, gold_file: Path, runs_dir: Path, tmp_path: Path
) -> None:
    handlers = handlers_for(pipeline, runs_dir, tmp_path)
    state, item, jump, verdict, supports, note, status, download, notice = handlers.load(
        "upload", str(gold_file), None, "", "张"
    )
    assert isinstance(state, ReviewState) and state.review.path == run_dir
    assert jump == "1" and verdict is None and supports == "na" and note == "" and notice == ""
    assert "张 已评 0 / 4 题" in status and download["visible"] is True

    state, item, jump, *_ = handlers.next(state, "张")
    assert jump == "2" and "第 2 / 4 题" in item
    state, *_ = handlers.previous(state, "张")
    state, *_ = handlers.previous(state, "张")  # stays on the first question
    assert state.index == 0
    state, item, jump, *_ = handlers.jump(state, "张", "d024")
    assert jump == "2"

    shown = handlers.save(state, "张", "partial", "no", "  少了单位  ")
    state, item, jump, verdict, supports, note, status, download, notice = shown
    assert (jump, verdict, supports, note) == ("2", "partial", "no", "少了单位")
    assert "已评：部分正确" in item and "张 已评 1 / 4 题" in status
    assert "已保存 d024：部分正确" in notice and "pq-line-ok" in notice
    with open(download["value"], encoding="utf-8-sig", newline="") as handle:
        assert [r["备注"] for r in csv.DictReader(handle)] == ["少了单位"]

    # A reload is a new session: load the same source again, step to question 2.
    fresh = handlers_for(pipeline, runs_dir, tmp_path)
    state, item, jump, *_ = fresh.load("run", None, None, str(run_dir), "张")
    assert jump == "1"  # the first question not yet judged
    state, item, jump, verdict, supports, note, *_ = fresh.jump(state, "张", "2")
    assert (verdict, supports, note) == ("partial", "no", "少了单位")
    state, item, jump, *_ = fresh.next_unjudged(state, "张")
    assert jump == "3"

    state, *_ = fresh.save_and_next(state, "张", "correct", "na", "")
    assert state.index == 3
    stored = VerdictStore(runs_dir / "verdicts.sqlite3").verdict(state.review.run_id, "d036", "张")
    assert stored.verdict == "correct" and stored.citation_supports is None


def test_handlers_refuse_incomplete_input(
    pipeline: Pipeline, run_dir: Path, runs_dir: Path, tmp_path: Path
) -> None:
    handlers = handlers_for(pipeline, runs_dir, tmp_path)
    with pytest.raises(InputError, match="载入"):
        handlers.next(None, "张")
    with pytest.raises(InputError, match="上传"):
        handlers.load("upload", None, None, "", "张")
    with pytest.raises(InputError, match="选择"):
        handlers.load("run", None, None, "  ", "张")
    with pytest.raises(InputError, match="not an evaluation run"):
        handlers.load("run", None, None, str(tmp_path), "张")
    state = handlers.load("run", None, str(run_dir), "", "张")[0]
    with pytest.raises(InputError, match="判定"):
        handlers.save(state, "张", None, "yes", "")
    with pytest.raises(InputError, match="评测人"):
        handlers.save(state, "  ", "correct", "yes", "")
    with pytest.raises(InputError, match="not in run"):
        handlers.jump(state, "张", "d999")


def test_run_list_and_source_switch(
    pipeline: Pipeline, run_dir: Path, runs_dir: Path, tmp_path: Path
) -> None:
    handlers = handlers_for(pipeline, runs_dir, tmp_path)
    assert handlers.run_choices()[0][1] == str(run_dir)
    assert handlers.refresh_runs()["choices"] == handlers.run_choices()
    upload, run_row = handlers.source_changed("run")
    assert upload["visible"] is False and run_row["visible"] is True
    assert handlers.restore_evaluator("  王  ") == "王"
    assert handlers.restore_evaluator(None) == {"__type__": "update"}  # keeps the default


def test_the_app_creates_no_store_until_the_tab_is_used(pipeline: Pipeline, tmp_path: Path) -> None:
    build_app(pipeline, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
