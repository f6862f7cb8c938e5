"""The 评测 tab's layout and event wiring (the handlers are :mod:`ui.tab_review`).

Its one rule beyond the other tabs': **a mistake never blocks the form.** The tab is used for
hours, one question after another, and a 保存 without a verdict is an ordinary slip; so every
handler is wrapped by :func:`inline`, which shows errors in a status line beside the control
that was used instead of raising ``gr.Error`` (whose "Error" overlay covers every output
component). While a set loads there is one progress bar, on the status panel, counting the
questions in words; moving and saving show none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

import gradio as gr

from planqa.ui.render_review import VERDICT_CHOICES
from planqa.ui.shared import BUSY, error_message, notice_html, private
from planqa.ui.tab_review import (
    DEFAULT_EVALUATOR,
    SOURCE_CHOICES,
    SUPPORT_CHOICES,
    ReviewHandlers,
)

#: The tab's status lines, one beside each group of controls: 载入, the navigation row, the
#: verdict form. A message appears in the line of the control that was used, and only there.
NOTICE_LINES = ("load", "nav", "form")


def inline(fn: Callable[..., tuple[Any, ...]], line: str) -> Callable[..., tuple[Any, ...]]:
    """A handler whose errors are shown in the status line ``line`` (one of NOTICE_LINES).

    Raising ``gr.Error`` would mark every output component with gradio's "Error" overlay (the
    question, the form and the status panel, all covered at once); here the outputs
    stay as they were and the message appears once, beside the control that was used. The
    other lines are cleared, so an old message never sits next to a new one. The result is
    the handler's ``VIEW`` less its notice, then one value per status line.
    """

    @wraps(fn)  # keeps the signature: gradio finds the progress parameter through it
    def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        try:
            *shown, notice = fn(*args, **kwargs)
        except Exception as exc:  # every error becomes a message; one event never breaks the tab
            shown = [gr.update()] * (len(ReviewHandlers.VIEW) - 1)
            notice = notice_html(error_message(exc, fn.__name__))
        return (*shown, *(notice if name == line else "" for name in NOTICE_LINES))

    return wrapper


@dataclass(frozen=True)
class ReviewTab:
    """The 评测 component the page wires beyond the tab: the evaluator's name, restored from
    the browser on page load."""

    evaluator: gr.Textbox


def build_review_tab(
    review: ReviewHandlers, runs_dir: Path, evaluator_memory: gr.BrowserState
) -> ReviewTab:
    """The 评测 tab's layout and events; call inside ``gr.Tabs``. ``evaluator_memory`` is the
    browser's copy of the evaluator's name (outside the tabs: a component in a tab not yet
    shown is not mounted when the page's load event reads it)."""
    with gr.Tab("评测", id="eval") as eval_tab:
        state = gr.State(None)  # a ReviewState, created by 载入
        gr.Markdown(
            "逐题核对回答：查看 planqa 的回答与引用、金标答案与证据、自动判定，"
            "给出人工判定。每次“保存”立即写入判定库；重新载入同一来源即可继续。"
        )
        with gr.Row(equal_height=True):
            source = gr.Radio(
                SOURCE_CHOICES, value="dev", label="评测来源", scale=3, elem_id="pq-review-source"
            )
            evaluator = gr.Textbox(
                value=DEFAULT_EVALUATOR,
                label="评测人",
                scale=1,
                min_width=160,
                elem_id="pq-review-evaluator",
            )
        gold_upload = gr.File(
            label="金标文件（.jsonl：每行一个 JSON 对象，格式见 eval/gold/README.md）",
            file_types=[".jsonl"],
            type="filepath",
            visible=False,
            elem_id="pq-review-upload",
        )
        with gr.Row(visible=False, equal_height=True) as run_row:
            run_choice = gr.Dropdown(
                review.run_choices(),
                value=None,
                # The runs folder by its name only: no server path in the page.
                label=f"已有运行（{Path(runs_dir).name or runs_dir}）",
                scale=3,
                elem_id="pq-review-run",
            )
            refresh_runs = gr.Button("刷新列表", size="sm", scale=0, min_width=90)
            run_path = gr.Textbox(
                label="或运行目录（运行文件夹中的目录名）",
                placeholder="例如 ui-dev-…",
                scale=3,
                elem_id="pq-review-path",
            )
        with gr.Row(equal_height=True):
            load = gr.Button(
                "载入", variant="primary", scale=0, min_width=160, elem_id="pq-review-load"
            )
            load_line = gr.HTML("", js_on_load=None, elem_id="pq-review-load-line")
        status = gr.HTML(
            '<div class="pq-empty">选择来源后点击“载入”。金标文件第一次载入时用当前索引'
            "回答全部问题（抽取式）并保存为一次运行，之后直接复用。</div>",
            js_on_load=None,
            elem_id="pq-review-status",
        )
        with gr.Row(equal_height=True, elem_id="pq-review-nav"):
            nav = {"size": "sm", "scale": 0, "min_width": 110}
            prev_q = gr.Button("← 上一题", elem_id="pq-review-prev", **nav)
            jump_to = gr.Textbox(
                label="跳到题目",
                show_label=False,
                placeholder="题号或 ID",
                scale=0,
                min_width=120,
                elem_id="pq-review-jump",
            )
            jump_go = gr.Button("跳转", elem_id="pq-review-go", **nav)
            next_q = gr.Button("下一题 →", elem_id="pq-review-next", **nav)
            next_open = gr.Button("下一道未评", elem_id="pq-review-open", **nav)
            nav_line = gr.HTML("", js_on_load=None, elem_id="pq-review-nav-line")
        with gr.Row():
            with gr.Column(scale=3, min_width=480):
                item = gr.HTML("", js_on_load=None, elem_id="pq-review-item")
            with gr.Column(scale=2, min_width=300):
                verdict = gr.Radio(
                    VERDICT_CHOICES,
                    value=None,
                    label="判定：回答是否正确",
                    elem_id="pq-review-verdict",
                )
                supports = gr.Radio(
                    SUPPORT_CHOICES,
                    value="na",
                    label="引用是否支持回答",
                    elem_id="pq-review-supports",
                )
                note = gr.Textbox(label="备注", lines=3, elem_id="pq-review-note")
                with gr.Row():
                    save = gr.Button("保存", variant="primary", elem_id="pq-review-save")
                    save_next = gr.Button("保存并下一题", elem_id="pq-review-save-next")
                form_line = gr.HTML("", js_on_load=None, elem_id="pq-review-form-line")
                export = gr.DownloadButton(
                    "导出判定 CSV", visible=False, size="sm", elem_id="pq-review-export"
                )
        # ReviewHandlers.VIEW less its notice, then the status lines in NOTICE_LINES order.
        shown = [state, item, jump_to, verdict, supports, note, status, export]
        shown += [load_line, nav_line, form_line]
        moving = [state, evaluator]
        form = [state, evaluator, verdict, supports, note]
        # One progress bar, on the status panel, while a set loads; moving and saving are
        # quick and show none (each output would otherwise get its own).
        quiet = private(show_progress="hidden")
        source.change(review.source_changed, [source], [gold_upload, run_row], **private())
        refresh_runs.click(review.refresh_runs, None, [run_choice], **private())
        eval_tab.select(review.refresh_runs, None, [run_choice], **quiet)
        load.click(
            inline(review.load, "load"),
            [source, gold_upload, run_choice, run_path, evaluator],
            shown,
            show_progress_on=[status],
            **private(**BUSY),
        )
        prev_q.click(inline(review.previous, "nav"), moving, shown, **quiet)
        next_q.click(inline(review.next, "nav"), moving, shown, **quiet)
        next_open.click(inline(review.next_unjudged, "nav"), moving, shown, **quiet)
        for jump_event in (jump_go.click, jump_to.submit):
            jump_event(inline(review.jump, "nav"), [*moving, jump_to], shown, **quiet)
        save.click(inline(review.save, "form"), form, shown, **quiet)
        save_next.click(inline(review.save_and_next, "form"), form, shown, **quiet)
        # change, not input: it also fires when the name is pasted or filled in.
        evaluator.change(review.remember_evaluator, [evaluator], [evaluator_memory], **private())
    return ReviewTab(evaluator=evaluator)
