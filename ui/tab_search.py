"""The 检索 tab: precedent search over every plan, grouped for reading, exported as CSV/XLSX.

:mod:`ui.precedents` decides which passages are listed (those containing the query's terms;
the ranked search's others only on request); this module renders them (:mod:`ui.render_search`)
and writes the downloads (:mod:`ui.export`), named after the query. The export
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

from planqa.index.manifest import planqa_version
from planqa.rag.pipeline import Pipeline
from planqa.ui.export import ExportHeader, export_name, write_csv, write_xlsx
from planqa.ui.index_watch import LiveIndex, version_of
from planqa.ui.precedents import SORTS, find_precedents
from planqa.ui.render_search import search_results_html, search_summary
from planqa.ui.shared import (
    BUSY,
    LiveHandlers,
    check_query_length,
    clean_text,
    private,
    user_facing,
)

#: Upper bound of the passages listed (the count in the summary is always the true one).
MAX_SEARCH_RESULTS = 200
DEFAULT_SHOWN = 50
#: Exported files older than this are deleted when a new export is written.
EXPORT_MAX_AGE_S = 3600
SEARCH_MODES = [("混合", "hybrid"), ("语义", "dense"), ("关键词", "bm25")]
MODE_LABELS = {value: label for label, value in SEARCH_MODES}
SORT_CHOICES = [("相关度", "relevance"), ("地区", "region"), ("期间（新在前）", "period")]
SORT_LABELS = {value: label for label, value in SORT_CHOICES}


class SearchHandlers(LiveHandlers):
    """The 检索 tab's handlers, and the export directory every download is written to."""

    def __init__(self, pipeline: Pipeline | LiveIndex, export_dir: Path | None = None) -> None:
        LiveHandlers.__init__(self, pipeline)
        self.export_dir = export_dir or Path(tempfile.mkdtemp(prefix="planqa-export-"))

    @user_facing
    def search(
        self,
        query: str,
        limit: float,
        region: str,
        doc: str,
        chapter: str,
        mode: str,
        related: bool = False,
        sort: str = "relevance",
    ) -> tuple[str, str, Any, Any]:
        """The passages that contain the query's terms (see :mod:`ui.precedents`), the related
        ones only when asked, plus CSV and XLSX downloads of exactly the passages shown."""
        limit = max(1, min(int(limit or DEFAULT_SHOWN), MAX_SEARCH_RESULTS))
        query, region = clean_text(query), clean_text(region)
        doc, chapter = clean_text(doc), (clean_text(chapter) or "").strip()
        pipeline = self.live.current()
        too_long = check_query_length(query or "", pipeline.searcher.settings.max_query_chars)
        if too_long:
            raise gr.Error(too_long, title="无法检索", print_exception=False)
        result = find_precedents(
            pipeline.searcher,
            query,
            region=region or None,
            doc=doc or None,
            chapter=chapter,
            mode=mode or "hybrid",
            limit=limit,
            include_related=bool(related),
            sort=sort if sort in SORTS else "relevance",
        )
        summary = search_summary(result, chapter)
        shown = result.shown
        if not shown:
            hidden = gr.update(visible=False, value=None)
            return summary, search_results_html(result), hidden, hidden
        header = ExportHeader(
            query=query,
            filters={
                "地区": region or "",
                "文件": doc or "",
                "章节关键词": chapter,
                "检索方式": MODE_LABELS.get(mode, mode),
                "排序": SORT_LABELS.get(sort, sort),
                "相关段落": "已包含" if related else "未包含",
            },
            matches=len(result.matches),
            planqa_version=planqa_version() or "",
            index_version=version_of(pipeline),
        )
        stem = self._unique(export_name(query))
        csv_path = write_csv(shown, self.export_dir / f"{stem}.csv", header)
        xlsx_path = write_xlsx(shown, self.export_dir / f"{stem}.xlsx", header)
        return (
            summary,
            search_results_html(result),
            gr.update(value=str(csv_path), visible=True),
            gr.update(value=str(xlsx_path), visible=True),
        )

    def _unique(self, stem: str) -> str:
        """``stem`` in a fresh folder of the export directory, so the download keeps the query's
        name and two exports in the same second do not overwrite each other."""
        self._export_stem()  # removes old exports
        folder = self.export_dir / uuid.uuid4().hex[:8]
        folder.mkdir(parents=True, exist_ok=True)
        return f"{folder.name}/{stem}"

    def _export_stem(self, kind: str = "search") -> str:
        """A fresh file name; old exports are removed so the directory does not grow."""
        self.export_dir.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - EXPORT_MAX_AGE_S
        for old in [*self.export_dir.glob("planqa-*"), *self.export_dir.glob("*/planqa-*")]:
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
                    if old.parent != self.export_dir and not any(old.parent.iterdir()):
                        old.parent.rmdir()
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
        gr.Markdown(
            "查找各地规划中的相关表述（先例检索）：列出包含检索词的全部段落，"
            "按地区和文件分组，可导出。"
        )
        with gr.Row(equal_height=True):
            query = gr.Textbox(
                label="检索词",
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
                1,
                MAX_SEARCH_RESULTS,
                value=DEFAULT_SHOWN,
                step=1,
                label="最多显示",
                scale=2,
                min_width=160,
            )
            mode = gr.Radio(SEARCH_MODES, value="hybrid", label="检索方式", scale=3, min_width=300)
        with gr.Row():
            sort = gr.Radio(SORT_CHOICES, value="relevance", label="排列", scale=3, min_width=300)
            related = gr.Checkbox(
                value=False,
                label="同时显示相关段落（不含全部检索词）",
                scale=3,
                elem_id="pq-related",
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
            '<div class="pq-empty">输入关键词后点击“检索”。</div>',
            js_on_load=None,
            elem_id="pq-search-results",
        )
        search_event = {
            "fn": handlers.search,
            "inputs": [query, k, region, doc, chapter, mode, related, sort],
            "outputs": [summary, results, csv_file, xlsx_file],
        }
        query.submit(**search_event, **private(**BUSY))
        run_search.click(**search_event, **private(**BUSY))
        region.input(handlers.documents_for_region, [region], [doc], **private())
    return SearchTab(region=region, doc=doc)
