"""The 知识库 section's document panel: see a document's metadata and indexing record, correct
its region, aliases, title…, download its original.

Staff pick a document (the section's picker, shared with 删除); its fields are filled from the
index — inferred ones marked 待核实 — and 保存并重新索引 sends only the fields that differ to
the server's one writer (:meth:`ui.corpus_writer.CorpusWriter.submit_edit`, what
``PATCH /api/v1/documents/{id}`` calls): the edit is stored in the corpus manifest and the
document re-indexed, as a job in the section's status table. Checks a person can act on (an
empty region, a field too long) are Chinese lines here before anything is sent.

下载原文件 copies the original (never a path from the page: an indexed document's name,
resolved inside the corpus folder) into this page's export folder for gradio to serve.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from planqa.corpus.documents import DocumentMeta
from planqa.corpus.errors import InputError
from planqa.corpus.manifest_edits import EDITABLE_FIELDS, checked_edit
from planqa.ui.corpus_writer import original_file
from planqa.ui.render_documents import metadata_source
from planqa.ui.shared import notice_html

#: The panel's text fields, in order, with their Chinese labels.
FIELD_LABELS = {
    "region": "地区",
    "aliases": "别名（用顿号分隔）",
    "title": "标题",
    "kind": "类型",
    "period": "期间",
    "date": "日期",
    "issuer": "发布机构",
}
KIND_CHOICES = ["五年规划纲要", "政府工作报告", "年度工作计划", "党代会报告", "中央文件"]
NOTHING_CHANGED = "信息没有改动。"


@dataclass(frozen=True)
class MetadataPanel:
    fields: list[Any]
    record: gr.HTML
    download: gr.DownloadButton
    save: gr.Button
    line: gr.HTML

    @property
    def shown(self) -> list[Any]:
        """What :meth:`MetadataHandlers.show` fills: the fields, the record, the download."""
        return [*self.fields, self.record, self.download]


class MetadataHandlers:
    """The panel's handlers over the section's (:class:`ui.tab_knowledge.KnowledgeHandlers`)."""

    def __init__(self, knowledge: Any, export_dir: Path | None = None) -> None:
        self.knowledge = knowledge
        self.export_dir = export_dir or Path(tempfile.mkdtemp(prefix="planqa-originals-"))

    def _meta(self, name: str | None) -> DocumentMeta | None:
        document = self.knowledge.live.current().searcher.documents.get(name or "")
        return document.meta if document is not None else None

    def show(self, name: str | None) -> tuple[Any, ...]:
        """The fields, the record line and the download button for the picked document."""
        meta = self._meta(name)
        if meta is None:
            blank = [gr.update(value="") for _ in FIELD_LABELS]
            return (*blank, "", gr.update(visible=False, value=None))
        values = [
            "、".join(meta.aliases) if field == "aliases" else getattr(meta, field)
            for field in FIELD_LABELS
        ]
        return (*values, self.record(name), self._download(meta.file))

    def record(self, name: str | None) -> str:
        """Where the metadata came from, and when and from what text the document was indexed."""
        meta = self._meta(name)
        if meta is None:
            return ""
        contents = self.knowledge.live.current().searcher.contents
        entry = contents.manifest.catalogue().get(name, {})
        parts = [f"信息来源：{metadata_source(meta)}", f"文件：{meta.file}"]
        if entry.get("indexed_at"):
            parts.append(f"入库时间：{entry['indexed_at'].replace('T', ' ')[:16]}（UTC）")
        if entry.get("chunks") is not None:
            parts.append(f"段落 {entry['chunks']} 个")
        if entry.get("sha256"):
            parts.append(f"文本校验 {entry['sha256'][:12]}")
        kind = "warning" if meta.inferred and meta.uncertain else "ok"
        return notice_html(" · ".join(parts), kind)

    def _download(self, name: str) -> Any:
        """A copy of the original in a folder of its own (gradio serves it under its name)."""
        try:
            source = original_file(self.knowledge.live.current().settings.corpus_dir, name)
        except Exception:
            return gr.update(visible=False, value=None)
        folder = self.export_dir / uuid.uuid4().hex[:12]
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / name
        shutil.copyfile(source, copy)
        return gr.update(visible=True, value=str(copy))

    def save(
        self,
        name: str | None,
        region: str,
        aliases: str,
        title: str,
        kind: str | None,
        period: str,
        date: str,
        issuer: str,
        job_ids: list[str] | None,
        request: gr.Request | None = None,
    ) -> tuple[Any, ...]:
        """(job ids, table, timer, line): the changed fields go to the writer as one job."""
        values = [region, aliases, title, kind, period, date, issuer]
        writer = self.knowledge._writable(request)
        meta = self._meta(name)
        if meta is None:
            raise InputError("请先选择要修改的文件。")
        edit = changed_fields(meta, dict(zip(FIELD_LABELS, values, strict=True)))
        if not edit and not meta.inferred:
            return gr.update(), gr.update(), gr.update(), notice_html(NOTHING_CHANGED, "warning")
        if not edit:  # inferred values confirmed as they are: the manifest records them
            edit = {"region": meta.region}
        ids = [*(job_ids or []), writer.submit_edit(meta.file, checked_edit(edit)).id]
        line = notice_html(f"已提交修改 {meta.file}，重新索引的进度见上表。", "ok")
        return ids, self.knowledge.table(ids), gr.Timer(active=True), line


def changed_fields(meta: DocumentMeta, values: dict[str, Any]) -> dict[str, Any]:
    """The fields whose new value differs from ``meta``'s, checked with Chinese messages for
    the mistakes a person makes (the API's own check then runs on what is left)."""
    edit: dict[str, Any] = {}
    for field, raw in values.items():
        value = " ".join(str(raw or "").split())
        if field == "aliases":
            aliases = checked_edit({"aliases": value})["aliases"]
            if aliases != meta.aliases:
                edit[field] = list(aliases)
            continue
        if field == "region" and not value:
            raise InputError("地区不能为空：每份文件都属于一个地区（全国性文件填「全国」）。")
        if len(value) > EDITABLE_FIELDS[field]:
            label = FIELD_LABELS[field]
            raise InputError(f"「{label}」太长了（最多 {EDITABLE_FIELDS[field]} 个字）。")
        if value != getattr(meta, field):
            edit[field] = value
    return edit


def build_metadata_panel(handlers: MetadataHandlers) -> MetadataPanel:
    """The panel's layout (inside the 知识库 section, under the picker); events are wired by
    the section, which owns the picker and the job table."""
    with gr.Group(elem_id="pq-kb-meta"):
        with gr.Row():
            region = gr.Textbox(label=FIELD_LABELS["region"], elem_id="pq-kb-region", scale=2)
            aliases = gr.Textbox(label=FIELD_LABELS["aliases"], elem_id="pq-kb-aliases", scale=3)
        title = gr.Textbox(label=FIELD_LABELS["title"], elem_id="pq-kb-title")
        with gr.Row():
            kind = gr.Dropdown(
                KIND_CHOICES,
                value=None,
                allow_custom_value=True,
                label=FIELD_LABELS["kind"],
                elem_id="pq-kb-kind",
            )
            period = gr.Textbox(label=FIELD_LABELS["period"], elem_id="pq-kb-period")
            date = gr.Textbox(label=FIELD_LABELS["date"], elem_id="pq-kb-date")
            issuer = gr.Textbox(label=FIELD_LABELS["issuer"], elem_id="pq-kb-issuer")
    record = gr.HTML("", js_on_load=None, elem_id="pq-kb-record")
    with gr.Row(equal_height=True):
        save = gr.Button(
            "保存并重新索引", variant="primary", scale=0, min_width=160, elem_id="pq-kb-save"
        )
        download = gr.DownloadButton(
            "下载原文件", visible=False, scale=0, min_width=130, elem_id="pq-kb-download"
        )
    line = gr.HTML("", js_on_load=None, elem_id="pq-kb-meta-line")
    fields = [region, aliases, title, kind, period, date, issuer]
    return MetadataPanel(fields=fields, record=record, download=download, save=save, line=line)
