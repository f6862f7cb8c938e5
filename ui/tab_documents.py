"""The 文档 tab: the documents table, a chapter tree and the full-text viewer, below the
知识库 section (uploads and removals, :mod:`ui.tab_knowledge`) on a writable server.

Every "在文档中查看原文" link of the other tabs lands here: in-page through the click bridge
(``static/bridge.js``, relayed by :meth:`DocumentHandlers.on_open_event`) and in a new tab as a
deep link (``/?planqa_doc=…``, opened by :meth:`DocumentHandlers.on_page_load`). Both carry the
passage in the link's query string, so a link in a saved page still works; one that no longer
matches the index changes nothing but a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from planqa.corpus.errors import InputError
from planqa.corpus.structure import Heading, parse_structure
from planqa.rag.pipeline import Pipeline
from planqa.ui import render_documents
from planqa.ui.index_watch import LiveIndex
from planqa.ui.render import OPEN_KEYS
from planqa.ui.render_documents import Focus, ordered_documents
from planqa.ui.shared import LiveHandlers, int_or_none, private, static_text, user_facing
from planqa.ui.tab_knowledge import KnowledgeHandlers, KnowledgeSection, build_knowledge_section

#: (tabs, document dropdown, tree, viewer): what opening a passage updates.
Opened = tuple[Any, Any, Any, Any]


class DocumentHandlers(LiveHandlers):
    """The 文档 tab's handlers. Headings are parsed once per document and index version."""

    def __init__(self, pipeline: Pipeline | LiveIndex) -> None:
        LiveHandlers.__init__(self, pipeline)
        self._structures: dict[str, tuple[Heading, ...]] = {}
        self._structures_generation = self.live.generation

    def _headings(self, doc: str) -> tuple[Heading, ...]:
        if self._structures_generation != self.live.generation:
            self._structures, self._structures_generation = {}, self.live.generation
        if doc not in self._structures:
            self._structures[doc] = parse_structure(self.searcher.documents[doc].text).headings
        return self._structures[doc]

    def document_view(self, doc: str, focus: Focus | None = None) -> tuple[str, str]:
        """(chapter tree, viewer) HTML for a document, optionally focused on a passage."""
        document = self.searcher.documents.get(doc)
        if document is None:
            raise InputError(f"unknown document {doc!r}")
        headings = self._headings(doc)
        clipped = focus.clipped(len(document.text)) if focus else None
        return (
            render_documents.document_tree_html(headings, clipped),
            render_documents.document_viewer_html(document, headings, clipped),
        )

    @user_facing
    def open_document(self, doc: str) -> tuple[str, str]:
        return self.document_view(doc)

    @user_facing
    def select_document_row(self, evt: gr.SelectData) -> tuple[Any, str, str]:
        """A click on a row of the documents table opens that document.

        The row is matched by its region and title, not its position, because the table
        can be sorted in the browser.
        """
        row = list(getattr(evt, "row_value", None) or [])
        docs = self.searcher.documents
        matches = [
            name
            for name in ordered_documents(docs)
            if row[:2] == [docs[name].meta.region, docs[name].meta.title or name]
        ]
        if not matches:
            return gr.update(), gr.update(), gr.update()
        return (gr.update(value=matches[0]), *self.document_view(matches[0]))

    def open_passage(self, params: dict[str, Any]) -> Opened:
        """Open the 文档 tab at a passage: (tabs, document dropdown, tree, viewer) updates.

        ``params`` holds the ``planqa_*`` values of a viewer link (see ``render.open_href``),
        from an in-page click or a deep link's query string; anything unusable changes nothing.
        """
        doc = str(params.get(OPEN_KEYS[0]) or "")
        start, end = int_or_none(params.get(OPEN_KEYS[1])), int_or_none(params.get(OPEN_KEYS[2]))
        if doc not in self.searcher.documents or start is None or end is None:
            if doc:
                gr.Warning("找不到这段原文（索引可能已更新），请重新提问或检索。", title="提示")
            return gr.update(), gr.update(), gr.update(), gr.update()
        focus = Focus(
            start, end, int_or_none(params.get(OPEN_KEYS[3])), int_or_none(params.get(OPEN_KEYS[4]))
        )
        tree, viewer = self.document_view(doc, focus)
        return gr.update(selected="docs"), gr.update(value=doc), tree, viewer

    @user_facing
    def on_open_event(self, evt: gr.EventData) -> Opened:
        """A click on a viewer link, relayed by the page's click bridge (``static/bridge.js``)."""
        return self.open_passage({key: getattr(evt, key, "") for key in OPEN_KEYS})

    @user_facing
    def on_page_load(self, request: gr.Request) -> Opened:
        """A deep link (``/?planqa_doc=…&planqa_start=…``) opens the viewer at the passage."""
        params = dict(request.query_params) if request is not None else {}
        self.live.current()
        if OPEN_KEYS[0] not in params:
            return gr.update(), gr.update(), gr.update(), gr.update()
        return self.open_passage(params)


@dataclass(frozen=True)
class DocumentsTab:
    """The 文档 components the page wires beyond the tab: passage links open them, and the
    index line refreshes the table and the picker; the 知识库 section (None when read-only)
    chains the index line after its jobs."""

    table: gr.Dataframe
    choice: gr.Dropdown
    tree: gr.HTML
    viewer: gr.HTML
    knowledge: KnowledgeSection | None = None


def build_documents_tab(
    handlers: DocumentHandlers, knowledge: KnowledgeHandlers | None = None
) -> DocumentsTab:
    """The 文档 tab's layout and events; call inside ``gr.Tabs``. ``knowledge``: the 知识库
    section's handlers, shown (above the documents) only when they can write."""
    documents = handlers.searcher.documents
    first_doc = next(iter(ordered_documents(documents)), "")
    with gr.Tab("文档", id="docs"):
        section = (
            build_knowledge_section(knowledge)
            if knowledge is not None and knowledge.enabled
            else None
        )
        table = gr.Dataframe(
            value=render_documents.document_rows(documents),
            headers=render_documents.DOCUMENT_COLUMNS,
            column_widths=render_documents.DOCUMENT_COLUMN_WIDTHS,
            interactive=False,
            wrap=True,
            label="文件列表（点击一行打开）",
            buttons=[],  # gradio's copy/fullscreen buttons have English tooltips
            elem_id="pq-doc-table",
        )
        choice = gr.Dropdown(
            handlers.document_choices()[1:],
            value=first_doc,
            label="当前文件",
            elem_id="pq-doc-choice",
        )
        initial_tree, initial_viewer = handlers.document_view(first_doc) if first_doc else ("", "")
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                gr.Markdown("**章节目录**（点击跳转）")
                tree = gr.HTML(initial_tree, js_on_load=static_text("tree.js"), elem_id="pq-tree")
            with gr.Column(scale=3):
                viewer = gr.HTML(
                    initial_viewer, js_on_load=static_text("viewer.js"), elem_id="pq-viewer"
                )
        choice.input(handlers.open_document, [choice], [tree, viewer], **private())
        table.select(handlers.select_document_row, None, [choice, tree, viewer], **private())
    return DocumentsTab(table=table, choice=choice, tree=tree, viewer=viewer, knowledge=section)
