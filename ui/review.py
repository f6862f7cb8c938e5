"""The 评测 tab: HTML for a question under review, and the tab's event handlers.

What a review *does* (open or make a run, record a verdict, agreement, export) is in
:mod:`eval.review`, as plain functions; this module only turns it into HTML and gradio updates,
so the handlers stay a few lines each and the logic is tested without a browser.

The HTML follows :mod:`ui.render`'s rule: every string from a run, a gold file or a document is
escaped before any tag is added (a run's answers quote documents, and an uploaded gold file is
arbitrary text). Citations and evidence reuse ``render.passage_block``, so they look like the
问答 tab's and their "在文档中查看原文" links open the 文档 tab through the same click bridge.

A run folder typed into the tab must lie inside the runs folder (:mod:`ui.paths`), and messages
name folders relative to it (:mod:`ui.messages`), never by their absolute server path.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from planqa.corpus.chunking import Chunk
from planqa.corpus.documents import Document
from planqa.corpus.errors import InputError
from planqa.eval.gold import BUNDLED_DEV_GOLD, Evidence, find_quote
from planqa.eval.review import (
    Review,
    export_csv,
    find_runs,
    first_unjudged,
    judged,
    open_review,
    run_agreement,
    run_for_gold,
    save_verdict,
)
from planqa.eval.verdicts import Agreement, AgreementPart, HumanVerdict, VerdictStore
from planqa.rag.answer import NOT_FOUND
from planqa.rag.pipeline import Pipeline
from planqa.ui import render
from planqa.ui.index_watch import LiveIndex
from planqa.ui.messages import scrub_paths, toast_text
from planqa.ui.paths import confine_run_dir, within_runs
from planqa.ui.render import esc, one_block, text_html

log = logging.getLogger("planqa.ui.review")

SOURCE_CHOICES = [
    ("内置开发集（eval/gold/dev.jsonl）", "dev"),
    ("上传金标文件（.jsonl）", "upload"),
    ("已有运行", "run"),
]
VERDICT_CHOICES = [("正确", "correct"), ("部分正确", "partial"), ("错误", "wrong")]
VERDICT_LABELS = dict((value, label) for label, value in VERDICT_CHOICES)
#: "na" is stored as no answer (NULL): unanswerable questions have no citation to judge.
SUPPORT_CHOICES = [("支持", "yes"), ("不支持", "no"), ("不适用 / 未判断", "na")]
TYPE_LABELS = {
    "fact": "事实",
    "which_region": "哪个地区",
    "list": "列举",
    "compare": "比较",
    "paraphrase": "改写",
    "unanswerable": "不可回答",
}
DEFAULT_EVALUATOR = "评测员"
#: Characters of document text shown on each side of a gold evidence quote.
EVIDENCE_CONTEXT_CHARS = 80


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


# --------------------------------------------------------------------------- HTML


def _yes_no(value: Any) -> str:
    return "不适用" if value is None else ("是" if value else "否")


def _passage(
    documents: Mapping[str, Document],
    *,
    label: str,
    doc: str,
    start: int,
    end: int,
    chapter: str,
    text: str,
    quote: tuple[int, int] | None = None,
) -> str:
    """A passage from a run or gold file, titled from the index's document metadata if known."""
    document = documents.get(doc)
    meta = document.meta if document is not None else None
    return render.passage_block(
        label=label,
        region=meta.region if meta else "",
        title=(meta.title or doc) if meta else doc,
        chapter=chapter,
        doc=doc,
        start=start,
        end=end,
        text=text,
        quote=quote,
    )


def _answer_section(row: Mapping[str, Any], documents: Mapping[str, Document]) -> str:
    parts = ['<div class="pq-answer">']
    if row.get("notice"):
        parts.append(f'<div class="pq-notice">{text_html(row["notice"])}</div>')
    answer = str(row.get("answer") or "")
    if row.get("abstained") and answer.strip() == NOT_FOUND:
        parts.append(f'<div class="pq-notfound">{esc(NOT_FOUND)}</div>')
        closest = list(row.get("retrieved") or [])[: render.REFERENCE_PASSAGES]
        if closest:
            parts.append('<div class="pq-cites-title">最接近的段落（检索结果）：</div>')
            parts.append('<div class="pq-cites">')
            for passage in closest:
                label = f"参考{passage['rank']}" + (" · 含证据" if passage.get("covers") else "")
                parts.append(
                    _passage(
                        documents,
                        label=label,
                        doc=passage["doc"],
                        start=passage["start"],
                        end=passage["end"],
                        chapter=passage.get("chapter", ""),
                        text=passage["text"],
                    )
                )
            parts.append("</div>")
    else:
        parts.append(f'<div class="pq-answer-text">{render.answer_text_html(answer)}</div>')
        citations = list(row.get("citations") or [])
        if citations:
            parts.append(f'<div class="pq-cites-title">引用来源（{len(citations)} 条）</div>')
            parts.append('<div class="pq-cites">')
            for citation in citations:
                hit = "命中证据" if citation.get("hit") else "未命中证据"
                parts.append(
                    _passage(
                        documents,
                        label=f"[{citation['n']}] · {hit}",
                        doc=citation["doc"],
                        start=citation["start"],
                        end=citation["end"],
                        chapter=citation.get("chapter", ""),
                        text=citation["text"],
                        quote=(citation["quote_start"], citation["quote_end"]),
                    )
                )
            parts.append("</div>")
        else:
            parts.append('<div class="pq-uncited">这个回答没有引用。</div>')
    parts.append("</div>")
    return "".join(parts)


def _evidence_section(
    evidence: Sequence[Evidence] | None,
    documents: Mapping[str, Document],
    chapter_of: Callable[[str, int], str],
) -> str:
    if evidence is None:
        return '<div class="pq-empty">（没有找到这次运行对应的金标文件，无法显示证据原文。）</div>'
    if not evidence:
        return ""
    parts = ['<div class="pq-cites">']
    for number, piece in enumerate(evidence, start=1):
        document = documents.get(piece.doc)
        spans = find_quote(piece.quote, document.text) if document is not None else ()
        if not spans or document is None:
            parts.append(
                f'<div class="pq-review-quote"><b>证据{number}</b> {esc(piece.doc)}：'
                f"{text_html(piece.quote)}（未在当前索引的文件中找到）</div>"
            )
            continue
        start, end = spans[0]
        left = max(0, start - EVIDENCE_CONTEXT_CHARS)
        right = min(len(document.text), end + EVIDENCE_CONTEXT_CHARS)
        parts.append(
            _passage(
                documents,
                label=f"证据{number}",
                doc=piece.doc,
                start=left,
                end=right,
                chapter=chapter_of(piece.doc, start),
                text=document.text[left:right],
                quote=(start, end),
            )
        )
    parts.append("</div>")
    return "".join(parts)


def _auto_section(row: Mapping[str, Any]) -> str:
    auto = row.get("verdicts") or {}
    correct = bool(auto.get("correct"))
    verdict = (
        '<span class="pq-ok">✓ 正确</span>' if correct else '<span class="pq-bad">✗ 错误</span>'
    )
    items = [("答案", verdict), ("拒答", esc(_yes_no(row.get("abstained"))))]
    if row.get("answerable"):
        cited = len(row.get("citations") or [])
        hits = auto.get("citations_hitting", 0)
        hitting = f"{_yes_no(auto.get('citation_hit'))}（{hits}/{cited} 条）"
        items.append(("引用命中证据", esc(hitting)))
        rank = auto.get("first_hit_rank")
        items.append(("证据检索排名", esc(rank if rank is not None else "前列未检索到")))
    return "".join(
        f'<span class="pq-fact"><b>{esc(name)}</b>{value}</span>' for name, value in items
    )


def review_item_html(
    review: Review,
    index: int,
    *,
    documents: Mapping[str, Document],
    saved: HumanVerdict | None = None,
    chapter_of: Callable[[str, int], str] = lambda doc, pos: "",
) -> str:
    """One question: position, type, the question, planqa's answer with its citations, the
    gold answers and evidence, the automatic verdict, and this evaluator's saved verdict."""
    index = review.clamp(index)
    row = review.row(index)
    kind = str(row.get("type", ""))
    answerable = bool(row.get("answerable"))
    tags = [
        f'<span class="pq-review-pos">第 {index + 1} / {review.size} 题</span>',
        f'<span class="pq-tag">{esc(row["id"])}</span>',
        f'<span class="pq-tag">{esc(kind)}（{esc(TYPE_LABELS.get(kind, kind))}）</span>',
        f'<span class="pq-tag">{"可回答" if answerable else "不可回答（应拒答）"}</span>',
    ]
    if saved is not None:
        tags.append(
            f'<span class="pq-tag pq-judged">已评：{esc(VERDICT_LABELS.get(saved.verdict))}'
            f" · {esc(saved.timestamp[:19].replace('T', ' '))} UTC</span>"
        )
    gold_answers = row.get("gold_answers") or []
    gold = (
        "".join(f'<span class="pq-tag pq-gold">{esc(a)}</span>' for a in gold_answers)
        if gold_answers
        else '<span class="pq-empty">（无：文件中没有答案，应拒答）</span>'
    )
    evidence = review.evidence.get(row["id"]) if review.gold_source else None
    return one_block(
        '<div class="pq-review">'
        f'<div class="pq-review-head">{"".join(tags)}</div>'
        f'<div class="pq-review-q">{text_html(str(row.get("question", "")))}</div>'
        '<div class="pq-review-part"><div class="pq-review-title">planqa 的回答</div>'
        f"{_answer_section(row, documents)}</div>"
        '<div class="pq-review-part"><div class="pq-review-title">金标答案与证据</div>'
        f'<div class="pq-review-gold">{gold}</div>'
        f"{_evidence_section(evidence, documents, chapter_of)}</div>"
        '<div class="pq-review-part"><div class="pq-review-title">自动判定</div>'
        f'<div class="pq-facts">{_auto_section(row)}</div></div>'
        "</div>"
    )


def _percent(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 100:.1f}%"


def _kappa(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def _agreement_row(name: str, part: AgreementPart) -> str:
    return (
        f"<tr><td>{esc(name)}</td><td>{part.pairs}</td><td>{part.agreeing}</td>"
        f"<td>{_percent(part.share)}</td><td>{_kappa(part.kappa)}</td></tr>"
    )


def review_status_html(
    review: Review, *, evaluator: str, judged_count: int, result: Agreement
) -> str:
    """The run, this evaluator's progress, and agreement of all human verdicts with the
    automatic ones (the numbers report.md shows)."""
    gold = (
        f"证据来自 {esc(review.gold_source.name)}"
        if review.gold_source
        else "没有对应的金标文件（只显示金标答案）"
    )
    evaluators = "、".join(result.evaluators) or "-"
    return one_block(
        '<div class="pq-review-status">'
        f"<div><b>运行</b> <code>{esc(review.run_id)}</code> · {review.size} 题 · {gold}</div>"
        f'<div id="pq-review-progress"><b>进度</b> {esc(evaluator or "-")} 已评 '
        f"{judged_count} / {review.size} 题</div>"
        f"<div><b>与自动判定的一致性</b>（{result.verdicts} 条人工判定，评测人：{esc(evaluators)}；"
        "“部分正确”计为错误；κ 为 Cohen's kappa，无法计算时为 -）</div>"
        '<table class="pq-agree"><tr><th></th><th>成对</th><th>一致</th><th>一致率</th>'
        "<th>κ</th></tr>"
        f"{_agreement_row('答案判定', result.answers)}"
        f"{_agreement_row('引用是否支持', result.citations)}</table>"
        "</div>"
    )


# --------------------------------------------------------------------------- handlers


class ReviewHandlers:
    """The 评测 tab's event handlers. Each returns the same tuple of updates (see ``VIEW``).

    The verdict store is opened on first use, so a server whose 评测 tab is never used does not
    create ``runs/verdicts.sqlite3`` in the working directory.
    """

    #: Output order of every handler that shows a question.
    VIEW = ("state", "item", "jump", "verdict", "supports", "note", "status", "download")

    def __init__(
        self,
        pipeline: Pipeline | LiveIndex,
        runs_dir: Path,
        store_path: Path,
        export_path: Callable[[str], Path],
    ) -> None:
        self.live = pipeline if isinstance(pipeline, LiveIndex) else LiveIndex(pipeline)
        self.runs_dir = Path(runs_dir)
        self.store_path = Path(store_path)
        self.export_path = export_path
        self._store: VerdictStore | None = None
        self._chunks_by_doc: dict[str, list[Chunk]] | None = None
        self._chunks_generation = self.live.generation

    @property
    def pipeline(self) -> Pipeline:
        return self.live.pipeline

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
        progress: bool = False,
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
            run_dir = run_for_gold(gold, pipeline, self.runs_dir, progress=progress)
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
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (gradio's idiom)
    ) -> tuple[Any, ...]:
        """Open the source and show the evaluator's first unjudged question (where to resume)."""
        progress(0, desc="正在载入…")
        review = self.open_source(source, upload, run_choice, run_path, progress=True)
        start = first_unjudged(review, self.store, evaluator)
        return self.view(ReviewState(review, start), evaluator, refresh=True)

    # ------------------------------------------------------------------ moving

    def view(self, state: ReviewState, evaluator: str, *, refresh: bool = False) -> tuple[Any, ...]:
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
                result=run_agreement(review, self.store),
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
            problem = toast_text(saved.report_error, self.runs_dir)
            gr.Warning(f"判定已保存，但未能更新 report.md：{problem}")
        else:
            gr.Info(toast_text(f"已保存 {question_id}：{VERDICT_LABELS[verdict]}"))
        index = state.index + 1 if advance else state.index
        return self.view(ReviewState(review, index), evaluator, refresh=True)

    def save_and_next(
        self,
        state: ReviewState | None,
        evaluator: str,
        verdict: str | None,
        supports: str | None,
        note: str,
    ) -> tuple[Any, ...]:
        return self.save(state, evaluator, verdict, supports, note, advance=True)
