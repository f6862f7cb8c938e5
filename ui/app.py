"""The web UI's page: the four tabs put together (built by :func:`ui.web.build_app`).

The UI is a thin adapter like the CLI: every answer comes from the pipeline, every passage from
``HybridSearcher.search``. Each tab is one module with its layout and its handlers —
:mod:`ui.tab_ask` (问答 and ``/ask``), :mod:`ui.tab_search` (检索), :mod:`ui.tab_documents`
(文档); the 评测 tab's handlers are :mod:`ui.tab_review` and its layout
:mod:`ui.tab_review_layout` — and the rules they share are in :mod:`ui.shared`. This module
only assembles the page and wires what crosses tabs:

* **One public API endpoint, ``/ask``.** The tabs' event handlers are private, so the API page
  and ``gradio_client`` see exactly one documented function.
* **Passage links open the 文档 tab** from anywhere on the page, through the click bridge
  (``static/bridge.js``), and from a deep link on page load.
* **The index's latest version.** Every request starts on the pipeline :mod:`ui.index_watch`
  holds, which switches to a version ``planqa index`` publishes while the server runs; a line
  under the title says so, and the tabs' region and document lists follow. The 文档 tab's
  知识库 section (:mod:`ui.tab_knowledge`, only with the server's corpus writer) runs the same
  poll right after its status tick, so a document it indexed or removed shows at once.
* **A queue with a concurrency limit.** Search and answering share one model; the queue runs
  at most ``concurrency`` of them at a time and holds up to ``max_queue`` waiting requests, so
  twenty simultaneous users wait their turn instead of exhausting memory or threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from planqa.eval.review import DEFAULT_RUNS_DIR, default_store_path
from planqa.rag.pipeline import Pipeline
from planqa.ui.index_watch import INDEX_CHECK_SECONDS, IndexLine, LiveIndex, title_markdown
from planqa.ui.page_locale import GRADIO_ZH_MISSING
from planqa.ui.shared import BUSY, INTERNAL_ERROR, STATIC_DIR, private, static_text
from planqa.ui.tab_ask import AskHandlers, build_ask_tab
from planqa.ui.tab_documents import DocumentHandlers, build_documents_tab
from planqa.ui.tab_knowledge import KnowledgeHandlers
from planqa.ui.tab_review import ReviewHandlers
from planqa.ui.tab_review_layout import build_review_tab
from planqa.ui.tab_search import SearchHandlers, build_search_tab

if TYPE_CHECKING:
    from planqa.ui.corpus_writer import CorpusWriter

#: Re-exported: callers (and tests) of the page's handlers know this module.
__all__ = ["INTERNAL_ERROR", "THEME", "WebHandlers", "build_blocks", "launch_style"]

THEME = gr.themes.Soft(
    primary_hue="blue",
    font=["Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "system-ui", "sans-serif"],
    font_mono=["Noto Sans Mono CJK SC", "ui-monospace", "monospace"],
)


def launch_style() -> dict[str, Any]:
    """Theme, style sheet and the Chinese strings gradio lacks: gradio 6 takes them in
    ``launch()``. (The page's language itself is set by :mod:`ui.page_locale`: gradio's
    ``head`` option comes too late for it.)"""
    return {
        "theme": THEME,
        "css_paths": [STATIC_DIR / "app.css"],
        "i18n": gr.I18n(**{"zh-CN": GRADIO_ZH_MISSING}),
    }


class WebHandlers(AskHandlers, SearchHandlers, DocumentHandlers):
    """The handlers of the 问答, 检索 and 文档 tabs on one pipeline, so that tests (and the
    page) can call any of them on one object.

    ``pipeline`` may be a :class:`LiveIndex` shared with the 评测 tab; a plain pipeline gets its
    own. ``export_dir`` holds the downloads (default: a fresh temporary directory).
    """

    def __init__(self, pipeline: Pipeline | LiveIndex, export_dir: Path | None = None) -> None:
        live = pipeline if isinstance(pipeline, LiveIndex) else LiveIndex(pipeline)
        SearchHandlers.__init__(self, live, export_dir)
        DocumentHandlers.__init__(self, live)


def build_blocks(
    pipeline: Pipeline | LiveIndex,
    *,
    concurrency: int = 4,
    max_queue: int = 64,
    runs_dir: Path | None = None,
    verdicts: Path | None = None,
    writer: CorpusWriter | None = None,
    writers: frozenset[str] | None = None,
) -> gr.Blocks:
    """The Blocks app over a loaded pipeline, queued (``concurrency`` at a time, ``max_queue``
    waiting); launch it with :func:`launch_style` options, or use :func:`ui.web.serve`.

    ``writer`` is the server's corpus writer, the one its HTTP API uploads through: given, the
    文档 tab has the 知识库 section (uploads and removals as jobs of its runner); None (a
    read-only server, or a page built over a bare pipeline) leaves the section out.
    ``writers``: the logged-in users who may use it (None: whoever may open the page).

    ``runs_dir`` is where the 评测 tab finds runs and writes the runs it makes from gold files
    (default ``./runs``, like ``planqa eval``); ``verdicts`` the SQLite verdict store (default
    ``<runs_dir>/verdicts.sqlite3``, the file to pass to ``planqa eval-verdicts --verdicts``).
    """
    live = pipeline if isinstance(pipeline, LiveIndex) else LiveIndex(pipeline)
    handlers = WebHandlers(live)
    runs_dir = runs_dir or DEFAULT_RUNS_DIR
    review = ReviewHandlers(
        live, runs_dir, verdicts or default_store_path(runs_dir), handlers.export_path
    )
    index_line = IndexLine(live, handlers.document_choices)
    searcher = live.pipeline.searcher
    region_choices = [("全部地区", "")] + [(r, r) for r in searcher.regions()]

    # delete_cache: gradio copies every exported CSV/XLSX into its cache; drop them after a day.
    with gr.Blocks(
        title="planqa · 规划文件问答", analytics_enabled=False, delete_cache=(3600, 86400)
    ) as demo:
        # The only public endpoint; registered first so that it keeps the name "ask".
        gr.api(handlers.api_ask, api_name="ask", **BUSY)

        title = gr.Markdown(title_markdown(searcher), elem_id="pq-title")
        # Empty until `planqa index` publishes a new version while the server runs.
        index_status = gr.Markdown(live.status.line, elem_id="pq-index-status")
        index_shown = gr.State(live.status.serial)  # the status serial this page shows
        index_timer = gr.Timer(INDEX_CHECK_SECONDS)
        bridge = gr.HTML(
            "", js_on_load=static_text("bridge.js"), visible="hidden", elem_id="pq-bridge"
        )
        # The 评测 evaluator's name survives a reload (localStorage), so a returning evaluator
        # sees their own saved verdicts without retyping it. Outside the tabs: a component in a
        # tab not yet shown is not mounted when the page's load event reads it.
        evaluator_memory = gr.BrowserState("", storage_key="planqa-evaluator")

        with gr.Tabs(elem_id="pq-tabs") as tabs:
            ask = build_ask_tab(handlers, region_choices, live.pipeline.llm_configured)
            search = build_search_tab(handlers, region_choices)
            knowledge = KnowledgeHandlers(live, writer, handlers.document_choices, writers)
            docs = build_documents_tab(handlers, knowledge)
            evaluation = build_review_tab(review, runs_dir, evaluator_memory)

        opened = [tabs, docs.choice, docs.tree, docs.viewer]
        bridge.open_passage(handlers.on_open_event, None, opened, **private())
        demo.load(handlers.on_page_load, None, opened, **private())
        demo.load(review.restore_evaluator, [evaluator_memory], [evaluation.evaluator], **private())
        index_outputs = [
            index_shown,
            index_status,
            title,
            ask.region,
            search.region,
            search.doc,
            docs.table,
            docs.choice,
        ]
        quiet = {"show_progress": "hidden", **private()}
        section = docs.knowledge
        polls = [demo.load(index_line.poll, [index_shown], index_outputs, **quiet)]
        polls.append(index_timer.tick(index_line.poll, [index_shown], index_outputs, **quiet))
        if section is not None and knowledge.writers is not None:
            demo.load(knowledge.visible_for, None, [section.accordion], **quiet)
        if section is not None:
            # A 知识库 job that finished has switched the index: follow it at once, not at the
            # next index check (the status tick refreshes the job rows first).
            polls.append(
                section.ticked.then(index_line.poll, [index_shown], index_outputs, **quiet)
            )
            for poll in polls:
                poll.then(
                    knowledge.sync_choices,
                    [section.choice, section.generation],
                    [section.choice, section.generation],
                    **quiet,
                )

    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    return demo
