"""The web UI's layout and event handlers (built by :func:`ui.web.build_app`).

The UI is a thin adapter like the CLI: every answer comes from ``Pipeline.ask`` (or the LLM
answerer's stream), every passage from ``HybridSearcher.search``; this module only turns them
into HTML (see :mod:`ui.render`, which escapes everything) and files (:mod:`ui.export`).

* **Errors are messages.** A :class:`~corpus.errors.PlanqaError` is shown as its message; any
  other exception is logged with its traceback on the server and shown as a short notice. One
  failed request never takes the server down.
* **One public API endpoint, ``/ask``.** The UI's own event handlers are private, so the API page
  and ``gradio_client`` see exactly one documented function.
* **Not callable from outside the page.** ``api_visibility="private"`` only hides a handler from
  the API page; :mod:`ui.security` refuses calls of it that do not come from a page this server
  sent. Error toasts are text (:mod:`ui.messages`: markup escaped, no server paths).
* **The index's latest version.** Every request starts on the pipeline :mod:`ui.index_watch`
  holds, which switches to a version ``planqa index`` publishes while the server runs; a line
  under the title says so.
* **A queue with a concurrency limit.** Search and answering share one model; the queue runs
  at most ``concurrency`` of them at a time and holds up to ``max_queue`` waiting requests, so
  twenty simultaneous users wait their turn instead of exhausting memory or threads.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import gradio as gr

from planqa.corpus.errors import InputError, PlanqaError
from planqa.corpus.structure import parse_structure
from planqa.corpus.text_edges import valid_text
from planqa.eval.review import DEFAULT_RUNS_DIR, default_store_path
from planqa.rag.answer import Answer
from planqa.rag.pipeline import Conversation, Pipeline
from planqa.ui import render
from planqa.ui.export import write_csv, write_xlsx
from planqa.ui.index_watch import INDEX_CHECK_SECONDS, IndexLine, LiveIndex, title_markdown
from planqa.ui.messages import scrub_paths, toast_text
from planqa.ui.review import (
    DEFAULT_EVALUATOR,
    SOURCE_CHOICES,
    SUPPORT_CHOICES,
    VERDICT_CHOICES,
    ReviewHandlers,
)

if TYPE_CHECKING:
    from planqa.index.search import HybridSearcher

log = logging.getLogger("planqa.ui")

EXAMPLE_QUESTIONS = [
    "哪个区规划了集成电路测试产业园？",
    "海州区2020年人均地区生产总值是多少？",
    "港闸经济开发区2022年计划引进多少个重大项目？",
    "海门区未来五年的发展目标是什么？",
    "江阴高新区“十三五”期间重点发展哪些产业集群？",
]
#: Upper bound of the 检索 tab's result count (the brief: every match, up to 50).
MAX_SEARCH_RESULTS = 50
#: With a chapter keyword, this many passages are ranked before the keyword filter is applied.
CHAPTER_FILTER_POOL = 300
#: Exported files older than this are deleted when a new export is written.
EXPORT_MAX_AGE_S = 3600
INTERNAL_ERROR = "内部错误：这次请求没有完成（详情已记录在服务器日志中），请重试或换个问法。"
SEARCH_MODES = [("混合", "hybrid"), ("语义", "dense"), ("关键词", "bm25")]

T = TypeVar("T")


@dataclass
class ChatSession:
    """Per-browser-session chat state: the pipeline's Conversation and the rendered messages."""

    conversation: Conversation = field(default_factory=Conversation)
    messages: list[dict[str, str]] = field(default_factory=list)


def _user_facing(fn: Callable[..., T]) -> Callable[..., T]:
    """Show planqa errors as their message and anything else as a logged internal error."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except PlanqaError as exc:
            raise gr.Error(toast_text(str(exc)), title="无法完成", print_exception=False) from None
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(INTERNAL_ERROR, title="出错了", print_exception=False) from None

    return wrapper


def _text(value: Any) -> Any:
    """A text input as valid text: a lone surrogate (half an emoji from a browser or an API
    client) would otherwise be kept in the session, where gradio's JSON encoder fails on it —
    dropping the connection and every later answer of the session."""
    return valid_text(value) if isinstance(value, str) else value


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


class WebHandlers:
    """The UI's event handlers, separate from the layout so tests can call them directly.

    ``pipeline`` may be a :class:`LiveIndex` shared with the 评测 tab; a plain pipeline gets its
    own. Handlers that start a request take ``self.live.current()`` once (switching to a newly
    published index version first) and use that pipeline throughout.
    """

    def __init__(self, pipeline: Pipeline | LiveIndex, export_dir: Path | None = None) -> None:
        self.live = pipeline if isinstance(pipeline, LiveIndex) else LiveIndex(pipeline)
        self.export_dir = export_dir or Path(tempfile.mkdtemp(prefix="planqa-export-"))
        self._structures: dict[str, Any] = {}
        self._structures_generation = self.live.generation

    @property
    def pipeline(self) -> Pipeline:
        return self.live.pipeline

    @property
    def searcher(self) -> HybridSearcher:
        return self.live.pipeline.searcher

    # ------------------------------------------------------------------ 问答

    def chat(
        self, question: str, mode: str, region: str, session: ChatSession | None
    ) -> Iterator[tuple[list[dict[str, str]], ChatSession, str]]:
        """One chat turn; yields (messages, session, textbox) as the answer takes shape.

        In LLM mode the model's words are shown while they arrive, then replaced by the
        verified answer; in extractive mode there is one step.
        """
        session = session or ChatSession()
        pipeline = self.live.current()
        question, region = (_text(question) or "").strip(), _text(region)
        if not question:
            gr.Warning("请输入问题。")
            yield list(session.messages), session, ""
            return
        session.messages.append({"role": "user", "content": render.question_html(question)})
        session.messages.append({"role": "assistant", "content": render.pending_html()})
        yield list(session.messages), session, ""
        try:
            steps = self._answer_steps(question, mode, region, session.conversation, pipeline)
            for step in steps:
                if isinstance(step, Answer):
                    content = render.answer_html(step)
                else:
                    content = render.draft_html(step)
                session.messages[-1] = {"role": "assistant", "content": content}
                yield list(session.messages), session, ""
        except PlanqaError as exc:
            message = render.error_html(scrub_paths(str(exc)))
            session.messages[-1] = {"role": "assistant", "content": message}
            yield list(session.messages), session, ""
        except Exception:
            log.exception("unexpected error while answering %r", question)
            session.messages[-1] = {
                "role": "assistant",
                "content": render.error_html(INTERNAL_ERROR),
            }
            yield list(session.messages), session, ""

    def _answer_steps(
        self,
        question: str,
        mode: str,
        region: str,
        conversation: Conversation,
        pipeline: Pipeline | None = None,
    ) -> Iterator[str | Answer]:
        """Drafts (str) then the final Answer.

        Streaming uses the public pieces the pipeline provides for it (``prepare`` and the
        answerer's ``stream``) and, like ``Pipeline.ask``, records the turn in the conversation.
        Answerers without ``stream`` (extraction) are simply asked.
        """
        mode = mode or "extractive"
        pipeline = pipeline or self.pipeline
        answerer = pipeline.answerer(mode)
        if not hasattr(answerer, "stream"):
            yield pipeline.ask(
                question, mode=mode, region=region or None, conversation=conversation
            )
            return
        started = time.perf_counter()
        analysis, hits = pipeline.prepare(question, region or None, conversation)
        stream = answerer.stream(analysis, hits)
        draft = ""
        for delta in stream:
            draft += delta
            yield draft
        answer = stream.result()
        answer = replace(
            answer,
            question=question,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            details={**answer.details, "resolved_question": analysis.text},
        )
        conversation.previous = analysis
        conversation.turns.append(answer)
        yield answer

    def clear_chat(self, session: ChatSession | None) -> tuple[list[dict[str, str]], ChatSession]:
        session = session or ChatSession()
        session.conversation.clear()
        session.messages.clear()
        return [], session

    def api_ask(
        self, question: str, region: str = "", mode: str = "extractive"
    ) -> tuple[str, dict[str, Any]]:
        """Answer a question about the planning documents, with numbered citations.

        Args:
            question: The question in Chinese, e.g. 哪个区规划了集成电路测试产业园？
            region: Only search this region (full name or alias); "" searches all regions.
            mode: "extractive" (offline, default) or "llm" (when the server has an LLM).

        Returns:
            The answer text with [n] citation markers (or 未在现有文件中找到相关内容), and the
            full answer as JSON: citations (n, doc, region, title, chapter, start, end, text,
            quote_start, quote_end), abstained, notice, retrieved passages, mode, latency_ms.
        """
        try:
            if not isinstance(question, str) or not question.strip():
                raise InputError("the question is empty")
            question = valid_text(question)
            answer = self.live.current().ask(
                question, mode=(mode or "extractive"), region=(_text(region) or "").strip() or None
            )
        except PlanqaError as exc:
            # Scrubbed but not escaped: API callers read the text, no page renders it.
            raise gr.Error(scrub_paths(str(exc)), print_exception=False) from None
        except Exception:
            log.exception("unexpected error in /ask for %r", question)
            raise gr.Error(INTERNAL_ERROR, print_exception=False) from None
        return answer.answer, answer.to_dict()

    # ------------------------------------------------------------------ 检索

    @_user_facing
    def search(
        self, query: str, k: float, region: str, doc: str, chapter: str, mode: str
    ) -> tuple[str, str, Any, Any]:
        """Ranked passages grouped for reading, plus CSV and XLSX downloads of the same rows."""
        k = max(1, min(int(k or 10), MAX_SEARCH_RESULTS))
        query, region, doc, chapter = _text(query), _text(region), _text(doc), _text(chapter)
        chapter = (chapter or "").strip()
        searcher = self.live.current().searcher
        total = len(searcher.contents.chunks)
        pool = min(total, CHAPTER_FILTER_POOL if chapter else k)
        hits = searcher.search(
            query, pool, region=region or None, doc=doc or None, mode=mode or "hybrid"
        )
        if chapter:
            hits = [hit for hit in hits if chapter in hit.chunk.chapter]
        hits = hits[:k]
        summary = render.search_summary(hits, k, chapter)
        if not hits:
            hidden = gr.update(visible=False, value=None)
            return summary, render.search_results_html(hits), hidden, hidden
        stem = self._export_stem()
        csv_path = write_csv(hits, self.export_dir / f"{stem}.csv")
        xlsx_path = write_xlsx(hits, self.export_dir / f"{stem}.xlsx")
        return (
            summary,
            render.search_results_html(hits),
            gr.update(value=str(csv_path), visible=True),
            gr.update(value=str(xlsx_path), visible=True),
        )

    def _export_stem(self, kind: str = "search") -> str:
        """A fresh file name; old exports are removed so the directory does not grow."""
        self.export_dir.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - EXPORT_MAX_AGE_S
        for old in self.export_dir.glob("planqa-*"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:
                pass
        return f"planqa-{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"

    def export_path(self, kind: str, suffix: str = ".csv") -> Path:
        """A fresh path in the export directory (the 评测 tab's CSV uses it too)."""
        return self.export_dir / f"{self._export_stem(kind)}{suffix}"

    @_user_facing
    def documents_for_region(self, region: str) -> Any:
        """The 文档 filter offers only the chosen region's documents."""
        names = self.searcher.documents_for_region(region) if region else self.searcher.documents
        return gr.update(choices=self.document_choices(names), value="")

    def document_choices(self, names: Any = None) -> list[tuple[str, str]]:
        docs = self.searcher.documents
        wanted = sorted(
            names if names is not None else docs, key=lambda n: (docs[n].meta.region, n)
        )
        return [("全部文件", "")] + [
            (f"{docs[n].meta.region} · {docs[n].meta.title}", n) for n in wanted
        ]

    # ------------------------------------------------------------------ 文档

    def _headings(self, doc: str) -> tuple[Any, ...]:
        if self._structures_generation != self.live.generation:
            self._structures, self._structures_generation = {}, self.live.generation
        if doc not in self._structures:
            self._structures[doc] = parse_structure(self.searcher.documents[doc].text).headings
        return self._structures[doc]

    def document_view(self, doc: str, focus: render.Focus | None = None) -> tuple[str, str]:
        """(chapter tree, viewer) HTML for a document, optionally focused on a passage."""
        document = self.searcher.documents.get(doc)
        if document is None:
            raise InputError(f"unknown document {doc!r}")
        headings = self._headings(doc)
        clipped = focus.clipped(len(document.text)) if focus else None
        return (
            render.document_tree_html(headings, clipped),
            render.document_viewer_html(document, headings, clipped),
        )

    @_user_facing
    def open_document(self, doc: str) -> tuple[str, str]:
        return self.document_view(doc)

    @_user_facing
    def select_document_row(self, evt: gr.SelectData) -> tuple[Any, str, str]:
        """A click on a row of the documents table opens that document.

        The row is matched by its region and title, not its position, because the table
        can be sorted in the browser.
        """
        row = list(getattr(evt, "row_value", None) or [])
        docs = self.searcher.documents
        matches = [
            name
            for name in render.ordered_documents(docs)
            if row[:2] == [docs[name].meta.region, docs[name].meta.title or name]
        ]
        if not matches:
            return gr.update(), gr.update(), gr.update()
        return (gr.update(value=matches[0]), *self.document_view(matches[0]))

    def open_passage(self, params: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
        """Open the 文档 tab at a passage: (tabs, document dropdown, tree, viewer) updates.

        ``params`` holds the ``planqa_*`` values of a viewer link (see ``render.open_href``),
        from an in-page click or a deep link's query string; anything unusable changes nothing.
        """
        keys = render.OPEN_KEYS
        doc = str(params.get(keys[0]) or "")
        start, end = _int_or_none(params.get(keys[1])), _int_or_none(params.get(keys[2]))
        if doc not in self.searcher.documents or start is None or end is None:
            if doc:
                gr.Warning("找不到这段原文（索引可能已更新），请重新提问或检索。")
            return gr.update(), gr.update(), gr.update(), gr.update()
        focus = render.Focus(
            start, end, _int_or_none(params.get(keys[3])), _int_or_none(params.get(keys[4]))
        )
        tree, viewer = self.document_view(doc, focus)
        return gr.update(selected="docs"), gr.update(value=doc), tree, viewer

    @_user_facing
    def on_open_event(self, evt: gr.EventData) -> tuple[Any, Any, Any, Any]:
        """A click on a viewer link, relayed by the page's click bridge (see ``_BRIDGE_JS``)."""
        return self.open_passage({key: getattr(evt, key, "") for key in render.OPEN_KEYS})

    @_user_facing
    def on_page_load(self, request: gr.Request) -> tuple[Any, Any, Any, Any]:
        """A deep link (``/?planqa_doc=…&planqa_start=…``) opens the viewer at the passage."""
        params = dict(request.query_params) if request is not None else {}
        self.live.current()
        if render.OPEN_KEYS[0] not in params:
            return gr.update(), gr.update(), gr.update(), gr.update()
        return self.open_passage(params)


# --------------------------------------------------------------------------- layout

#: Catches clicks on "在文档中查看" links anywhere on the page (chat messages are sanitised
#: Markdown, so they cannot carry their own handlers) and asks the server to open the viewer.
#: Ctrl/Cmd/middle clicks are left alone: they open the same link as a deep link in a new tab.
_BRIDGE_JS = """
window.__planqaOpen = (detail) => trigger('open_passage', detail);
if (!window.__planqaOpenBound) {
  window.__planqaOpenBound = true;
  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? event.target.closest('a.pq-open') : null;
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const url = new URL(link.getAttribute('href') || '', window.location.href);
    if (!url.searchParams.has('planqa_doc')) return;
    event.preventDefault();
    event.stopPropagation();
    const detail = {};
    for (const key of ['planqa_doc', 'planqa_start', 'planqa_end', 'planqa_qs', 'planqa_qe']) {
      detail[key] = url.searchParams.get(key) || '';
    }
    window.__planqaOpen(detail);
  }, true);
}
"""

#: Chapter tree: a click scrolls the viewer to the heading (no server round trip); a newly
#: shown tree scrolls itself (not the page) to the chapter of the focused passage.
_TREE_JS = """
const showCurrent = () => {
  const nav = element.querySelector('.pq-tree');
  const current = element.querySelector('.pq-current');
  if (nav && current) nav.scrollTop = Math.max(0, current.offsetTop - nav.clientHeight / 3);
};
const showSoon = () => {
  showCurrent();
  setTimeout(showCurrent, 150);
  setTimeout(showCurrent, 500);
};
showSoon();
watch('value', showSoon);
element.addEventListener('click', (event) => {
  const link = event.target instanceof Element ? event.target.closest('a[data-pos]') : null;
  if (!link) return;
  event.preventDefault();
  const target = document.getElementById('pq-pos-' + link.dataset.pos);
  if (target) target.scrollIntoView({block: 'start', behavior: 'smooth'});
});
"""

#: Viewer: bring the focused passage into view whenever a new one is shown. Retried briefly,
#: because the 文档 tab may become visible in the same update that fills the viewer.
_VIEWER_JS = """
const reveal = () => {
  const target = element.querySelector('#pq-focus-anchor');
  if (target) target.scrollIntoView({block: 'center'});
};
const revealSoon = () => { reveal(); setTimeout(reveal, 150); setTimeout(reveal, 500); };
revealSoon();
watch('value', revealSoon);
"""

CSS = """
/* Full width up to a readable maximum, the same on every tab (a short tab must not shrink it). */
.gradio-container { width: 100% !important; max-width: 1320px !important;
  margin: 0 auto !important; }
.gradio-container > .main { width: 100%; max-width: 1280px; }
#pq-title h1 { margin-bottom: 0.1em; }
#pq-title p { color: var(--body-text-color-subdued); margin-top: 0; }
.pq-q { white-space: normal; }
.pq-answer { line-height: 1.7; }
.pq-answer-text { font-size: 1.02em; }
.pq-ref { color: var(--color-accent); font-weight: 600; margin: 0 1px; }
.pq-pending, .pq-draft-note { color: var(--body-text-color-subdued); font-style: italic; }
.pq-notice { background: #fff7e6; border-left: 3px solid #fa8c16; padding: 4px 10px;
  margin-bottom: 8px; border-radius: 4px; color: #874d00; }
.pq-error { background: #fff1f0; border-left: 3px solid #f5222d; padding: 6px 10px;
  border-radius: 4px; color: #a8071a; }
.pq-notfound { font-weight: 600; font-size: 1.05em; background: #f5f5f5;
  border-left: 3px solid #8c8c8c; padding: 6px 10px; border-radius: 4px; }
.pq-uncited { margin-top: 8px; color: #874d00; font-size: 0.92em; }
.pq-cites-title { margin-top: 12px; font-size: 0.9em; color: var(--body-text-color-subdued); }
.pq-cites { margin-top: 4px; display: flex; flex-direction: column; gap: 6px; }
details.pq-cite { border: 1px solid var(--border-color-primary); border-radius: 6px;
  padding: 4px 10px; background: var(--background-fill-secondary); }
details.pq-cite > summary { cursor: pointer; font-size: 0.93em; }
details.pq-cite[open] > summary { margin-bottom: 6px; }
.pq-n { font-weight: 700; color: var(--color-accent); }
.pq-region { font-weight: 600; }
.pq-meta { font-size: 0.85em; color: var(--body-text-color-subdued); margin-bottom: 4px; }
.pq-passage { font-size: 0.92em; line-height: 1.7; white-space: normal; }
.pq-passage mark, .pq-viewer mark { background: #ffe58f; color: inherit; padding: 0 1px; }
a.pq-open { display: inline-block; margin-top: 6px; font-size: 0.88em; }
.pq-foot { margin-top: 8px; font-size: 0.78em; color: var(--body-text-color-subdued); }
.pq-results { display: flex; flex-direction: column; gap: 14px; }
.pq-group { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 8px 14px; }
.pq-group-title { margin: 2px 0 8px 0; font-size: 1.08em; }
.pq-count, .pq-file { font-weight: normal; font-size: 0.8em;
  color: var(--body-text-color-subdued); margin-left: 10px; }
.pq-doc { margin: 6px 0 10px 0; }
.pq-doc-title { font-weight: 600; margin-bottom: 6px; }
.pq-hit { border-left: 3px solid var(--border-color-accent); padding: 4px 10px;
  margin: 0 0 8px 4px; background: var(--background-fill-secondary); border-radius: 0 6px 6px 0; }
.pq-hit-head { font-size: 0.85em; color: var(--body-text-color-subdued);
  display: flex; gap: 12px; flex-wrap: wrap; }
.pq-rank { font-weight: 700; color: var(--color-accent); }
.pq-hit-text { line-height: 1.7; margin-top: 2px; }
.pq-empty { color: var(--body-text-color-subdued); padding: 8px 0; }
.pq-tree { max-height: 72vh; overflow-y: auto; font-size: 0.88em; text-align: left;
  position: relative; }
.pq-tree ul { list-style: none; padding-left: 0; margin: 0; }
.pq-tree-item a { text-decoration: none; color: var(--body-text-color); display: block;
  text-align: left; padding: 2px 4px; border-radius: 4px; }
.pq-tree-item a:hover { background: var(--background-fill-secondary); }
.pq-lv0 a { font-weight: 700; }
.pq-lv1 { padding-left: 0.9em; } .pq-lv1 a { font-weight: 600; }
.pq-lv2 { padding-left: 1.8em; } .pq-lv3 { padding-left: 2.7em; }
.pq-lv4, .pq-lv5 { padding-left: 3.6em; }
.pq-current > a { background: #e6f4ff; }
.pq-doc-header { border-bottom: 1px solid var(--border-color-primary); padding-bottom: 6px; }
.pq-doc-name { font-size: 1.12em; font-weight: 700; margin-bottom: 4px; }
.pq-facts { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 0.86em; }
.pq-fact b { color: var(--body-text-color-subdued); font-weight: normal; margin-right: 4px; }
.pq-aliases { font-size: 0.82em; color: var(--body-text-color-subdued); margin-top: 2px; }
.pq-focus-note { font-size: 0.85em; background: #e6f4ff; padding: 4px 10px;
  border-radius: 4px; margin-top: 6px; }
.pq-viewer { white-space: pre-wrap; line-height: 1.8; max-height: 72vh; overflow-y: auto;
  padding: 8px 12px 8px 4px; margin-top: 6px; font-size: 0.95em; }
.pq-viewer .pq-h { font-weight: 700; }
.pq-viewer .pq-h0, .pq-viewer .pq-h1 { color: var(--color-accent); }
.pq-focus { background: #e6f4ff; }
.pq-review { display: flex; flex-direction: column; gap: 12px; }
.pq-review-head { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.pq-review-pos { font-weight: 700; margin-right: 6px; }
.pq-tag { font-size: 0.82em; border: 1px solid var(--border-color-primary); border-radius: 10px;
  padding: 1px 8px; background: var(--background-fill-secondary); }
.pq-tag.pq-judged { background: #e6f4ff; border-color: #91caff; }
.pq-tag.pq-gold { background: #f6ffed; border-color: #b7eb8f; font-size: 0.92em; }
.pq-review-q { font-size: 1.1em; font-weight: 600; line-height: 1.6; }
.pq-review-part { border-top: 1px solid var(--border-color-primary); padding-top: 8px; }
.pq-review-title { font-size: 0.9em; font-weight: 700; color: var(--body-text-color-subdued);
  margin-bottom: 6px; }
.pq-review-gold { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 6px; }
.pq-review-quote { font-size: 0.92em; }
.pq-ok { color: #389e0d; font-weight: 700; } .pq-bad { color: #cf1322; font-weight: 700; }
.pq-review-status { font-size: 0.92em; display: flex; flex-direction: column; gap: 4px; }
.pq-agree { border-collapse: collapse; font-size: 0.92em; max-width: 560px !important; }
.pq-agree th, .pq-agree td { border: 1px solid var(--border-color-primary); padding: 2px 10px;
  text-align: center; }
"""

THEME = gr.themes.Soft(
    primary_hue="blue",
    font=["Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "system-ui", "sans-serif"],
    font_mono=["Noto Sans Mono CJK SC", "ui-monospace", "monospace"],
)


def launch_style() -> dict[str, Any]:
    """Theme and CSS: gradio 6 takes them in ``launch()``, not in ``Blocks()``."""
    return {"theme": THEME, "css": CSS}


def _private(**kwargs: Any) -> dict[str, Any]:
    """UI events are not API endpoints: hidden from the API page and from gradio_client."""
    return {"api_visibility": "private", **kwargs}


def build_blocks(
    pipeline: Pipeline,
    *,
    concurrency: int = 4,
    max_queue: int = 64,
    runs_dir: Path | None = None,
    verdicts: Path | None = None,
) -> gr.Blocks:
    """The Blocks app over a loaded pipeline, queued (``concurrency`` at a time, ``max_queue``
    waiting); launch it with :func:`launch_style` options, or use :func:`serve`.

    ``runs_dir`` is where the 评测 tab finds runs and writes the runs it makes from gold files
    (default ``./runs``, like ``planqa eval``); ``verdicts`` the SQLite verdict store (default
    ``<runs_dir>/verdicts.sqlite3``, the file to pass to ``planqa eval-verdicts --verdicts``).
    """
    live = LiveIndex(pipeline)
    handlers = WebHandlers(live)
    runs_dir = runs_dir or DEFAULT_RUNS_DIR
    review = ReviewHandlers(
        live, runs_dir, verdicts or default_store_path(runs_dir), handlers.export_path
    )
    index_line = IndexLine(live, handlers.document_choices)
    searcher = pipeline.searcher
    documents = searcher.documents
    regions = searcher.regions()
    region_choices = [("全部地区", "")] + [(r, r) for r in regions]
    first_doc = next(iter(render.ordered_documents(documents)), "")
    busy = {"concurrency_id": "planqa", "concurrency_limit": "default"}

    # delete_cache: gradio copies every exported CSV/XLSX into its cache; drop them after a day.
    with gr.Blocks(
        title="planqa · 规划文件问答", analytics_enabled=False, delete_cache=(3600, 86400)
    ) as demo:
        # The only public endpoint; registered first so that it keeps the name "ask".
        gr.api(handlers.api_ask, api_name="ask", **busy)

        title = gr.Markdown(title_markdown(searcher), elem_id="pq-title")
        # Empty until `planqa index` publishes a new version while the server runs.
        index_status = gr.Markdown(live.status.line, elem_id="pq-index-status")
        index_shown = gr.State(live.status.serial)  # the status serial this page shows
        index_timer = gr.Timer(INDEX_CHECK_SECONDS)
        bridge = gr.HTML("", js_on_load=_BRIDGE_JS, visible="hidden", elem_id="pq-bridge")
        # The 评测 evaluator's name survives a reload (localStorage), so a returning evaluator
        # sees their own saved verdicts without retyping it. Outside the tabs: a component in a
        # tab not yet shown is not mounted when the page's load event reads it.
        evaluator_memory = gr.BrowserState("", storage_key="planqa-evaluator")

        with gr.Tabs() as tabs:
            with gr.Tab("问答", id="chat"):
                session = gr.State(None)  # a ChatSession, created by the first turn
                with gr.Row():
                    with gr.Column(scale=4, min_width=480):
                        chatbot = gr.Chatbot(
                            label="问答",
                            height=600,
                            sanitize_html=True,
                            latex_delimiters=[],
                            buttons=[],
                            feedback_options=None,
                            placeholder=(
                                "**请用中文提问**，例如“哪个区规划了集成电路测试产业园？”"
                                "<br>回答中的 [1]、[2] 是引用编号，展开下方的引用即可核对原文。"
                                "<br>可以连续追问（如“那它的GDP目标呢？”），"
                                "点“清空对话”重新开始。"
                            ),
                            elem_id="pq-chatbot",
                        )
                        with gr.Row(equal_height=True):
                            question = gr.Textbox(
                                placeholder="输入问题，按回车发送",
                                show_label=False,
                                scale=6,
                                max_lines=4,
                                elem_id="pq-question",
                            )
                            send = gr.Button("发送", variant="primary", scale=1, min_width=90)
                    with gr.Column(scale=1, min_width=260):
                        chat_region = gr.Dropdown(
                            region_choices, value="", label="地区范围", elem_id="pq-chat-region"
                        )
                        chat_mode = gr.Radio(
                            [("抽取式（离线）", "extractive"), ("LLM 生成", "llm")],
                            value="extractive",
                            label="回答方式",
                            visible=pipeline.llm_configured,
                            elem_id="pq-chat-mode",
                        )
                        clear = gr.Button(
                            "清空对话", variant="secondary", size="md", elem_id="pq-clear"
                        )
                        gr.Examples(
                            [[q] for q in EXAMPLE_QUESTIONS],
                            inputs=[question],
                            label="示例问题（点击填入）",
                            api_visibility="private",
                        )
                turn = {
                    "fn": handlers.chat,
                    "inputs": [question, chat_mode, chat_region, session],
                    "outputs": [chatbot, session, question],
                }
                question.submit(**turn, **_private(**busy))
                send.click(**turn, **_private(**busy))
                clear.click(handlers.clear_chat, [session], [chatbot, session], **_private())
                # The chatbot's own trash icon must forget the context too, not just the display.
                chatbot.clear(handlers.clear_chat, [session], [chatbot, session], **_private())

            with gr.Tab("检索", id="search"):
                gr.Markdown("查找各地规划中的相关表述（先例检索）：结果按地区和文件分组，可导出。")
                with gr.Row(equal_height=True):
                    query = gr.Textbox(
                        placeholder="输入关键词或一句话，例如：集成电路 测试",
                        show_label=False,
                        scale=6,
                        elem_id="pq-query",
                    )
                    run_search = gr.Button("检索", variant="primary", scale=1, min_width=100)
                with gr.Row():
                    search_region = gr.Dropdown(
                        region_choices, value="", label="地区", scale=2, min_width=160
                    )
                    search_doc = gr.Dropdown(
                        handlers.document_choices(), value="", label="文件", scale=3, min_width=200
                    )
                    chapter = gr.Textbox(
                        label="章节关键词", placeholder="如：产业、生态", scale=2, min_width=140
                    )
                    k = gr.Slider(
                        1,
                        MAX_SEARCH_RESULTS,
                        value=20,
                        step=1,
                        label="结果数",
                        scale=2,
                        min_width=160,
                    )
                    search_mode = gr.Radio(
                        SEARCH_MODES, value="hybrid", label="检索方式", scale=3, min_width=300
                    )
                with gr.Row(equal_height=True):
                    summary = gr.Markdown("", elem_id="pq-search-summary")
                    csv_file = gr.DownloadButton(
                        "下载 CSV", visible=False, size="sm", scale=0, min_width=130
                    )
                    xlsx_file = gr.DownloadButton(
                        "下载 Excel", visible=False, size="sm", scale=0, min_width=130
                    )
                results = gr.HTML(
                    '<div class="pq-empty">输入关键词后点击“检索”。</div>', js_on_load=None
                )
                search_event = {
                    "fn": handlers.search,
                    "inputs": [query, k, search_region, search_doc, chapter, search_mode],
                    "outputs": [summary, results, csv_file, xlsx_file],
                }
                query.submit(**search_event, **_private(**busy))
                run_search.click(**search_event, **_private(**busy))
                search_region.input(
                    handlers.documents_for_region, [search_region], [search_doc], **_private()
                )

            with gr.Tab("文档", id="docs"):
                doc_table = gr.Dataframe(
                    value=render.document_rows(documents),
                    headers=render.DOCUMENT_COLUMNS,
                    column_widths=render.DOCUMENT_COLUMN_WIDTHS,
                    interactive=False,
                    wrap=True,
                    label="文件列表（点击一行打开）",
                    elem_id="pq-doc-table",
                )
                doc_choice = gr.Dropdown(
                    handlers.document_choices()[1:],
                    value=first_doc,
                    label="当前文件",
                    elem_id="pq-doc-choice",
                )
                initial_tree, initial_viewer = (
                    handlers.document_view(first_doc) if first_doc else ("", "")
                )
                with gr.Row():
                    with gr.Column(scale=1, min_width=240):
                        gr.Markdown("**章节目录**（点击跳转）")
                        tree = gr.HTML(initial_tree, js_on_load=_TREE_JS, elem_id="pq-tree")
                    with gr.Column(scale=3):
                        viewer = gr.HTML(initial_viewer, js_on_load=_VIEWER_JS, elem_id="pq-viewer")
                doc_choice.input(handlers.open_document, [doc_choice], [tree, viewer], **_private())
                doc_table.select(
                    handlers.select_document_row, None, [doc_choice, tree, viewer], **_private()
                )

            with gr.Tab("评测", id="eval") as eval_tab:
                review_state = gr.State(None)  # a ReviewState, created by 载入
                gr.Markdown(
                    "逐题核对回答：查看 planqa 的回答与引用、金标答案与证据、自动判定，"
                    "给出人工判定。每次“保存”立即写入判定库；重新载入同一来源即可继续。"
                )
                with gr.Row(equal_height=True):
                    review_source = gr.Radio(
                        SOURCE_CHOICES,
                        value="dev",
                        label="评测来源",
                        scale=3,
                        elem_id="pq-review-source",
                    )
                    evaluator = gr.Textbox(
                        value=DEFAULT_EVALUATOR,
                        label="评测人",
                        scale=1,
                        min_width=160,
                        elem_id="pq-review-evaluator",
                    )
                gold_upload = gr.File(
                    label="金标文件（JSON Lines，格式见 eval/gold/README.md）",
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
                load_review = gr.Button("载入", variant="primary", elem_id="pq-review-load")
                review_status = gr.HTML(
                    '<div class="pq-empty">选择来源后点击“载入”。金标文件第一次载入时用当前索引'
                    "回答全部问题（抽取式）并保存为一次运行，之后直接复用。</div>",
                    js_on_load=None,
                    elem_id="pq-review-status",
                )
                with gr.Row(equal_height=True, elem_id="pq-review-nav"):
                    nav = {"size": "sm", "scale": 0, "min_width": 110}
                    prev_q = gr.Button("← 上一题", elem_id="pq-review-prev", **nav)
                    jump_to = gr.Textbox(
                        show_label=False,
                        placeholder="题号或 ID",
                        scale=0,
                        min_width=120,
                        elem_id="pq-review-jump",
                    )
                    jump_go = gr.Button("跳转", elem_id="pq-review-go", **nav)
                    next_q = gr.Button("下一题 →", elem_id="pq-review-next", **nav)
                    next_open = gr.Button("下一道未评", elem_id="pq-review-open", **nav)
                with gr.Row():
                    with gr.Column(scale=3, min_width=480):
                        review_item = gr.HTML("", js_on_load=None, elem_id="pq-review-item")
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
                            save_verdict = gr.Button(
                                "保存", variant="primary", elem_id="pq-review-save"
                            )
                            save_next = gr.Button("保存并下一题", elem_id="pq-review-save-next")
                        export_verdicts = gr.DownloadButton(
                            "导出判定 CSV",
                            visible=False,
                            size="sm",
                            elem_id="pq-review-export",
                        )
                shown = [
                    review_state,
                    review_item,
                    jump_to,
                    verdict,
                    supports,
                    note,
                    review_status,
                    export_verdicts,
                ]
                moving = [review_state, evaluator]
                form = [review_state, evaluator, verdict, supports, note]
                review_source.change(
                    review.source_changed, [review_source], [gold_upload, run_row], **_private()
                )
                refresh_runs.click(review.refresh_runs, None, [run_choice], **_private())
                eval_tab.select(review.refresh_runs, None, [run_choice], **_private())
                load_review.click(
                    _user_facing(review.load),
                    [review_source, gold_upload, run_choice, run_path, evaluator],
                    shown,
                    **_private(**busy),
                )
                prev_q.click(_user_facing(review.previous), moving, shown, **_private())
                next_q.click(_user_facing(review.next), moving, shown, **_private())
                next_open.click(_user_facing(review.next_unjudged), moving, shown, **_private())
                for jump_event in (jump_go.click, jump_to.submit):
                    jump_event(_user_facing(review.jump), [*moving, jump_to], shown, **_private())
                save_verdict.click(_user_facing(review.save), form, shown, **_private())
                save_next.click(_user_facing(review.save_and_next), form, shown, **_private())
                # change, not input: it also fires when the name is pasted or filled in.
                evaluator.change(
                    review.remember_evaluator, [evaluator], [evaluator_memory], **_private()
                )

        opened = [tabs, doc_choice, tree, viewer]
        bridge.open_passage(handlers.on_open_event, None, opened, **_private())
        demo.load(handlers.on_page_load, None, opened, **_private())
        demo.load(review.restore_evaluator, [evaluator_memory], [evaluator], **_private())
        index_outputs = [
            index_shown,
            index_status,
            title,
            chat_region,
            search_region,
            search_doc,
            doc_table,
            doc_choice,
        ]
        for index_event in (demo.load, index_timer.tick):
            index_event(
                index_line.poll,
                [index_shown],
                index_outputs,
                show_progress="hidden",
                **_private(),
            )

    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    return demo
