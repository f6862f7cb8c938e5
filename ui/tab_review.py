"""The 评测 tab's event handlers: human review of a run's answers.

The layout and the wiring are in :mod:`ui.tab_review_layout`.

What a review *does* (open or make a run, record a verdict, agreement, export) is in
:mod:`eval.review`, as plain functions, and the question on screen is drawn by
:mod:`ui.render_review`; this module turns them into gradio updates, so the handlers stay a
few lines each and the logic is tested without a browser.

A run folder typed into the tab must lie inside the runs folder (:mod:`ui.paths`), and messages
name folders relative to it (:mod:`ui.messages`), never by their absolute server path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from planqa.corpus.chunking import Chunk
from planqa.corpus.documents import Document
from planqa.corpus.errors import InputError
from planqa.eval.gold import BUNDLED_DEV_GOLD
from planqa.eval.review import (
    Review,
    find_runs,
    first_unjudged,
    judged,
    open_review,
    review_agreement,
    run_for_gold,
    save_verdict,
)
from planqa.eval.verdict_export import export_csv
from planqa.eval.verdicts import VerdictStore
from planqa.rag.pipeline import Pipeline
from planqa.ui.index_watch import LiveIndex
from planqa.ui.messages import scrub_paths
from planqa.ui.paths import confine_run_dir, within_runs
from planqa.ui.render_review import (
    VERDICT_LABELS,
    review_item_html,
    review_status_html,
)
from planqa.ui.shared import LiveHandlers, notice_html

SOURCE_CHOICES = [
    ("内置开发集（eval/gold/dev.jsonl）", "dev"),
    ("上传金标文件（.jsonl）", "upload"),
    ("已有运行", "run"),
]
#: "na" is stored as no answer (NULL): unanswerable questions have no citation to judge.
SUPPORT_CHOICES = [("支持", "yes"), ("不支持", "no"), ("不适用 / 未判断", "na")]
DEFAULT_EVALUATOR = "评测员"


@dataclass(frozen=True)
class ReviewState:
    """One browser session's review: the opened run and the question on screen."""

    review: Review
    index: int


def supports_value(choice: str | None) -> bool | None:
    """The form's citation choice as the store's value (yes/no, else not judged)."""
    return {"yes": True, "no": False}.get(choice or "")


def supports_choice(value: bool | None) -> str:
    return "na" if value is None else ("yes" if value else "no")


class ReviewHandlers(LiveHandlers):
    """The 评测 tab's event handlers. Each returns the same tuple of updates (see ``VIEW``).

    The verdict store is opened on first use, so a server whose 评测 tab is never used does not
    create ``runs/verdicts.sqlite3`` in the working directory.
    """

    #: Output order of every handler that shows a question; "notice" is the line beside the
    #: control that was used (a save's confirmation; empty after moving).
    VIEW = ("state", "item", "jump", "verdict", "supports", "note", "status", "download", "notice")

    def __init__(
        self,
        pipeline: Pipeline | LiveIndex,
        runs_dir: Path,
        store_path: Path,
        export_path: Callable[[str], Path],
    ) -> None:
        LiveHandlers.__init__(self, pipeline)
        self.runs_dir = Path(runs_dir)
        self.store_path = Path(store_path)
        self.export_path = export_path
        self._store: VerdictStore | None = None
        self._chunks_by_doc: dict[str, list[Chunk]] | None = None
        self._chunks_generation = self.live.generation

    @property
    def documents(self) -> Mapping[str, Document]:
        return self.live.pipeline.searcher.documents

    @property
    def store(self) -> VerdictStore:
        if self._store is None:
            self._store = VerdictStore(self.store_path)
        return self._store

    def chapter_of(self, doc: str, position: int) -> str:
        """The chapter of the indexed passage holding ``position`` ("" if none does)."""
        if self._chunks_by_doc is None or self._chunks_generation != self.live.generation:
            self._chunks_generation = self.live.generation
            grouped: dict[str, list[Chunk]] = {}
            for chunk in self.pipeline.searcher.contents.chunks:
                grouped.setdefault(chunk.doc, []).append(chunk)
            self._chunks_by_doc = grouped
        for chunk in self._chunks_by_doc.get(doc, ()):
            if chunk.start <= position < chunk.end:
                return chunk.chapter
        return ""

    # ------------------------------------------------------------------ choosing a source

    def run_choices(self) -> list[tuple[str, str]]:
        """Runs of the runs folder; a link in it pointing elsewhere is not one of them."""
        return [
            (run.label, str(run.path))
            for run in find_runs(self.runs_dir)
            if within_runs(run.path, self.runs_dir)
        ]

    def refresh_runs(self) -> Any:
        return gr.update(choices=self.run_choices())

    def source_changed(self, source: str) -> tuple[Any, Any]:
        """Show the upload box or the run picker, whichever the chosen source needs."""
        return gr.update(visible=source == "upload"), gr.update(visible=source == "run")

    def restore_evaluator(self, saved: str | None, request: gr.Request | None = None) -> Any:
        """On page load: the name remembered in this browser, else the login name; else the
        field is left alone (it already shows the default, and the evaluator may be typing)."""
        username = getattr(request, "username", None) if request is not None else None
        name = (saved or "").strip() or (username or "").strip()
        return name if name else gr.update()

    def remember_evaluator(self, name: str) -> str:
        return (name or "").strip()

    def open_source(
        self,
        source: str,
        upload: str | None,
        run_choice: str | None,
        run_path: str,
        *,
        on_answer: Callable[[int, int], None] | None = None,
    ) -> Review:
        """The run to review: the chosen run folder (inside the runs folder), or the gold file's
        run (made if needed). Errors name folders relative to the runs folder."""
        try:
            if source == "run":
                path = (run_path or "").strip() or (run_choice or "")
                return open_review(confine_run_dir(path, self.runs_dir))
            if source == "upload":
                if not upload:
                    raise InputError("请先上传金标文件（.jsonl，每行一个问题）。")
                gold = Path(upload)
            else:
                gold = BUNDLED_DEV_GOLD
            pipeline = self.live.current()
            run_dir = run_for_gold(gold, pipeline, self.runs_dir, on_answer=on_answer)
            return open_review(run_dir)
        except InputError as exc:
            raise InputError(scrub_paths(str(exc), self.runs_dir)) from None

    def load(
        self,
        source: str,
        upload: str | None,
        run_choice: str | None,
        run_path: str,
        evaluator: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's idiom)
    ) -> tuple[Any, ...]:
        """Open the source and show the evaluator's first unjudged question (where to resume).

        A gold file not yet answered is answered here; the one progress bar (on the status
        panel) counts the questions in words, not tqdm's "planqa 22%| 9/40 q"."""
        progress(0, desc="正在载入…")

        def answered(done: int, total: int) -> None:
            progress(done / max(total, 1), desc=f"已回答 {done}/{total} 题")

        review = self.open_source(source, upload, run_choice, run_path, on_answer=answered)
        start = first_unjudged(review, self.store, evaluator)
        return self.view(ReviewState(review, start), evaluator, refresh=True)

    # ------------------------------------------------------------------ moving

    def view(
        self, state: ReviewState, evaluator: str, *, refresh: bool = False, notice: str = ""
    ) -> tuple[Any, ...]:
        """Updates for the question at ``state.index``, the form filled with the saved verdict.

        ``refresh`` also recomputes the progress/agreement panel and writes a fresh CSV export
        (after a load or a save); plain navigation leaves them as they are.
        """
        review = state.review
        index = review.clamp(state.index)
        state = ReviewState(review, index)
        done = judged(review, self.store, evaluator)
        saved = done.get(review.row(index)["id"])
        item = review_item_html(
            review, index, documents=self.documents, saved=saved, chapter_of=self.chapter_of
        )
        status: Any = gr.update()
        download: Any = gr.update()
        if refresh:
            status = review_status_html(
                review,
                evaluator=evaluator,
                judged_count=len(done),
                result=review_agreement(review, self.store),
            )
            path = self.export_path(f"verdicts-{review.run_id}")
            rows = export_csv(review, self.store, path)
            download = gr.update(value=str(path), visible=True, label=f"导出判定 CSV（{rows} 条）")
        return (
            state,
            item,
            str(index + 1),
            saved.verdict if saved else None,
            supports_choice(saved.citation_supports) if saved else "na",
            saved.note if saved else "",
            status,
            download,
            notice,
        )

    def _require(self, state: ReviewState | None) -> ReviewState:
        if state is None:
            raise InputError("请先选择评测来源并点击“载入”。")
        return state

    def go(self, state: ReviewState | None, evaluator: str, delta: int) -> tuple[Any, ...]:
        state = self._require(state)
        return self.view(ReviewState(state.review, state.index + delta), evaluator)

    def previous(self, state: ReviewState | None, evaluator: str) -> tuple[Any, ...]:
        return self.go(state, evaluator, -1)

    def next(self, state: ReviewState | None, evaluator: str) -> tuple[Any, ...]:
        return self.go(state, evaluator, 1)

    def jump(self, state: ReviewState | None, evaluator: str, target: str) -> tuple[Any, ...]:
        """To a position (1-based) or a question id."""
        state = self._require(state)
        target = (target or "").strip()
        index = int(target) - 1 if target.isdigit() else state.review.index_of(target)
        return self.view(ReviewState(state.review, index), evaluator)

    def next_unjudged(self, state: ReviewState | None, evaluator: str) -> tuple[Any, ...]:
        state = self._require(state)
        index = first_unjudged(state.review, self.store, evaluator, state.index + 1)
        return self.view(ReviewState(state.review, index), evaluator)

    # ------------------------------------------------------------------ judging

    def save(
        self,
        state: ReviewState | None,
        evaluator: str,
        verdict: str | None,
        supports: str | None,
        note: str,
        advance: bool = False,
    ) -> tuple[Any, ...]:
        """Record the verdict on the question on screen (committed before this returns)."""
        state = self._require(state)
        evaluator = (evaluator or "").strip()
        if not evaluator:
            raise InputError("请填写评测人。")
        if not verdict:
            raise InputError("请选择判定：正确、部分正确或错误。")
        review = state.review
        question_id = review.row(state.index)["id"]
        saved = save_verdict(
            review,
            self.store,
            question_id,
            evaluator=evaluator,
            verdict=verdict,
            citation_supports=supports_value(supports),
            note=note,
        )
        if saved.report_error:
            # The cause (an OS message, English) is in the server log; the page says it in words.
            notice = notice_html(
                "判定已保存，但未能更新 report.md（运行文件夹可能只读，详情见服务器日志）。",
                "warning",
            )
        else:
            notice = notice_html(f"已保存 {question_id}：{VERDICT_LABELS[verdict]}", "ok")
        index = state.index + 1 if advance else state.index
        return self.view(ReviewState(review, index), evaluator, refresh=True, notice=notice)

    def save_and_next(
        self,
        state: ReviewState | None,
        evaluator: str,
        verdict: str | None,
        supports: str | None,
        note: str,
    ) -> tuple[Any, ...]:
        return self.save(state, evaluator, verdict, supports, note, advance=True)
