"""The 检索 tab: precedent search over every plan, grouped for reading, exported as CSV/XLSX.

Passages come from ``HybridSearcher.search`` as they are; this module filters by chapter,
renders them (:mod:`ui.render_search`) and writes the downloads (:mod:`ui.export`). The export
directory is shared with the 评测 tab's verdict CSV (:meth:`SearchHandlers.export_path`) and
cleans itself, so a long-running server does not fill its disk.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from planqa.rag.pipeline import Pipeline
from planqa.ui.export import write_csv, write_xlsx
from planqa.ui.index_watch import LiveIndex
from planqa.ui.render_search import search_results_html, search_summary
from planqa.ui.shared import BUSY, LiveHandlers, clean_text, private, user_facing

#: Upper bound of the 检索 tab's result count (the brief: every match, up to 50).
MAX_SEARCH_RESULTS = 50
#: With a chapter keyword, this many passages are ranked before the keyword filter is applied.
CHAPTER_FILTER_POOL = 300
#: Exported files older than this are deleted when a new export is written.
EXPORT_MAX_AGE_S = 3600
SEARCH_MODES = [("混合", "hybrid"), ("语义", "dense"), ("关键词", "bm25")]


class SearchHandlers(LiveHandlers):
    """The 检索 tab's handlers, and the export directory every download is written to."""

    def __init__(self, pipeline: Pipeline | LiveIndex, export_dir: Path | None = None) -> None:
        LiveHandlers.__init__(self, pipeline)
        self.export_dir = export_dir or Path(tempfile.mkdtemp(prefix="planqa-export-"))

    @user_facing
    def search(
        self, query: str, k: float, region: str, doc: str, chapter: str, mode: str
    ) -> tuple[str, str, Any, Any]:
        """Ranked passages grouped for reading, plus CSV and XLSX downloads of the same rows."""
        k = max(1, min(int(k or 10), MAX_SEARCH_RESULTS))
        query, region = clean_text(query), clean_text(region)
        doc, chapter = clean_text(doc), clean_text(chapter)
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
        summary = search_summary(hits, k, chapter)
        if not hits:
            hidden = gr.update(visible=False, value=None)
            return summary, search_results_html(hits), hidden, hidden
        stem = self._export_stem()
        csv_path = write_csv(hits, self.export_dir / f"{stem}.csv")
        xlsx_path = write_xlsx(hits, self.export_dir / f"{stem}.xlsx")
        return (
            summary,
            search_results_html(hits),
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

    @user_facing
    def documents_for_region(self, region: str) -> Any:
        """The 文档 filter offers only the chosen region's documents."""
        names = self.searcher.documents_for_region(region) if region else self.searcher.documents
        return gr.update(choices=self.document_choices(names), value="")


@dataclass(frozen=True)
class SearchTab:
    """The 检索 components the page wires beyond the tab (the index line refreshes them)."""

    region: gr.Dropdown
    doc: gr.Dropdown


def build_search_tab(handlers: SearchHandlers, region_choices: list[tuple[str, str]]) -> SearchTab:
    """The 检索 tab's layout and events; call inside ``gr.Tabs``."""
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
            region = gr.Dropdown(region_choices, value="", label="地区", scale=2, min_width=160)
            doc = gr.Dropdown(
                handlers.document_choices(), value="", label="文件", scale=3, min_width=200
            )
            chapter = gr.Textbox(
                label="章节关键词", placeholder="如：产业、生态", scale=2, min_width=140
            )
            k = gr.Slider(
                1, MAX_SEARCH_RESULTS, value=20, step=1, label="结果数", scale=2, min_width=160
            )
            mode = gr.Radio(SEARCH_MODES, value="hybrid", label="检索方式", scale=3, min_width=300)
        with gr.Row(equal_height=True):
            summary = gr.Markdown("", elem_id="pq-search-summary")
            csv_file = gr.DownloadButton(
                "下载 CSV", visible=False, size="sm", scale=0, min_width=130
            )
            xlsx_file = gr.DownloadButton(
                "下载 Excel", visible=False, size="sm", scale=0, min_width=130
            )
        results = gr.HTML('<div class="pq-empty">输入关键词后点击“检索”。</div>', js_on_load=None)
        search_event = {
            "fn": handlers.search,
            "inputs": [query, k, region, doc, chapter, mode],
            "outputs": [summary, results, csv_file, xlsx_file],
        }
        query.submit(**search_event, **private(**BUSY))
        run_search.click(**search_event, **private(**BUSY))
        region.input(handlers.documents_for_region, [region], [doc], **private())
    return SearchTab(region=region, doc=doc)
