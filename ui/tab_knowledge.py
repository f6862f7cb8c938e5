"""The 文档 tab's 知识库 section: staff upload, correct and delete documents from the browser.

It is a second door to the write path the HTTP API already has, not a second write path: every
upload and removal goes through the server's one :class:`ui.corpus_writer.CorpusWriter` (safe
names, staged writes, the atomic index builder) and its one :class:`ui.jobs.JobRunner`, so a
page upload and an API upload queue behind each other and refuse the same name the same way.

* **One job per file.** Each file is staged and submitted on its own; a refused file (a name
  already indexed, an unreadable suffix) is named in the status line and the others go on.
* **A status table, polled.** The page keeps the ids of the jobs it started (per browser tab)
  and a 1-second ``gr.Timer`` redraws their rows (ui/render_knowledge.py) while any is pending;
  it stops when all are finished, so an idle page sends nothing.
* **The page follows the index.** A finished job has switched the server's
  :class:`ui.index_watch.LiveIndex` to the new version; the page then runs the index line's
  poll (ui/app.py chains it), which refreshes the documents table and every picker, and
  :meth:`KnowledgeHandlers.sync_choices` refreshes the deletion picker.
* **Errors are lines, not modals.** Every handler here shows its error as a status line
  (``notice_html``) under the control used; a ``gr.Error`` would mark the outputs "Error".
* **One picker, three actions.** The picked document's metadata panel (ui/knowledge_meta.py:
  fields, indexing record, 下载原文件, 保存并重新索引) and 删除 share the section's picker.
* **Who may write.** With an admin login configured (``PLANQA_UI_ADMIN_USER``, ui/web.py),
  only that user sees the section, and every handler checks the logged-in user again on the
  server (the page's visibility is a convenience, not the guard).
* **Read-only servers** (``planqa serve --read-only``, or a page built without a writer) do
  not render the section, and its handlers refuse anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

import gradio as gr

from planqa.corpus.errors import InputError, PlanqaError
from planqa.corpus.loader import SUPPORTED_SUFFIXES
from planqa.ui.corpus_writer import CorpusWriter
from planqa.ui.index_watch import LiveIndex
from planqa.ui.jobs import FAILED, INDEXED, Job
from planqa.ui.knowledge_meta import MetadataHandlers, build_metadata_panel
from planqa.ui.render_knowledge import (
    KNOWLEDGE_COLUMN_WIDTHS,
    KNOWLEDGE_COLUMNS,
    job_rows,
)
from planqa.ui.shared import error_message, notice_html, private

#: Seconds between the status table's refreshes while a job is pending.
POLL_SECONDS = 1.0
READ_ONLY_MESSAGE = "本服务器为只读模式，不能上传或删除文件；请联系管理员。"
NOT_ADMIN_MESSAGE = "只有知识库管理员可以上传、修改或删除文件；请用管理员账号登录。"
NO_FILES = "请先选择要上传的文件。"
NO_CHOICE = "请先选择文件。"


def inline(outputs: int) -> Callable[[Callable[..., tuple[Any, ...]]], Callable[..., Any]]:
    """A handler whose last output is its status line: any error becomes that line (Chinese,
    via ``error_message``) and leaves the handler's other ``outputs - 1`` components as they
    were, so one refused file never breaks the section."""

    def decorate(fn: Callable[..., tuple[Any, ...]]) -> Callable[..., tuple[Any, ...]]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                return (*(gr.update() for _ in range(outputs - 1)), notice(exc, fn.__name__))

        return wrapper

    return decorate


def notice(exc: Exception, where: str) -> str:
    return notice_html(error_message(exc, where))


class KnowledgeHandlers:
    """The section's handlers over the server's writer (None: read-only, everything refused).

    ``document_choices`` is the page's (label, file) list of indexed documents, the same the
    文档 picker offers (``LiveHandlers.document_choices``).
    """

    def __init__(
        self,
        live: LiveIndex,
        writer: CorpusWriter | None,
        document_choices: Callable[[], list[tuple[str, str]]],
        writers: frozenset[str] | None = None,
    ) -> None:
        self.live = live
        self.writer = writer
        self.document_choices = document_choices
        #: The logged-in users who may change the collection; None: whoever may open the page.
        self.writers = writers

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def _writable(self, request: gr.Request | None = None) -> CorpusWriter:
        if self.writer is None:
            raise InputError(READ_ONLY_MESSAGE)
        if not self.may_write(request):
            raise InputError(NOT_ADMIN_MESSAGE)
        return self.writer

    def may_write(self, request: gr.Request | None) -> bool:
        return self.writers is None or getattr(request, "username", None) in self.writers

    def visible_for(self, request: gr.Request | None = None) -> Any:
        """The section for the page's user: shown to those who may write."""
        return gr.update(visible=self.may_write(request))

    # ------------------------------------------------------------------ the table
    def jobs(self, job_ids: list[str] | None) -> list[Job]:
        """This page's jobs the runner still knows (it forgets the oldest finished ones), and
        every other unfinished job (another page's, an API client's): the queue a new upload
        joins is visible, in the order it runs."""
        if self.writer is None:
            return []
        found = [self.writer.runner.get(job_id) for job_id in job_ids or []]
        mine = {job.id: job for job in found if job is not None}
        others = {job.id: job for job in self.writer.runner.pending() if job.id not in mine}
        return sorted([*mine.values(), *others.values()], key=lambda job: job.created)

    def table(self, job_ids: list[str] | None) -> list[list[str]]:
        if self.writer is None:
            return []
        return job_rows(self.jobs(job_ids), self.writer.runner)

    def pending(self, job_ids: list[str] | None) -> bool:
        return any(job.state not in (INDEXED, FAILED) for job in self.jobs(job_ids))

    def refresh(self, job_ids: list[str] | None) -> tuple[Any, Any]:
        """The timer's tick: (table, timer), the timer stopped once no job is pending. The
        server is switched to a finished job's version here, for the index poll that follows."""
        self.live.current()
        return self.table(job_ids), gr.Timer(active=self.pending(job_ids))

    def sync_choices(self, picked: str | None, generation: int | None) -> tuple[Any, int]:
        """(picker, generation): new choices only when the index version changed; the picked
        document stays picked while it is still indexed."""
        self.live.current()
        if generation == self.live.generation:
            return gr.update(), self.live.generation
        choices = self.document_choices()[1:]
        if picked and not any(value == picked for _, value in choices):
            return gr.update(choices=choices, value=None), self.live.generation
        # The value is left alone: a pick made while this ran (``picked`` is what the page
        # had when it started) must not be undone.
        return gr.update(choices=choices), self.live.generation

    # ------------------------------------------------------------------ uploads
    @inline(outputs=5)
    def upload(
        self,
        files: list[str] | None,
        replace: bool,
        job_ids: list[str] | None,
        request: gr.Request | None = None,
    ) -> tuple[Any, ...]:
        """(job ids, table, timer, file box, line): one job per file; a refused file is named
        in the line with its reason and the others are submitted."""
        writer = self._writable(request)
        paths = [Path(str(getattr(f, "name", f))) for f in files or []]
        if not paths:
            raise InputError(NO_FILES)
        ids = list(job_ids or [])
        refused: list[str] = []
        for path in paths:
            try:
                ids.append(self._submit(writer, path, replace).id)
            except PlanqaError as exc:
                refused.append(f"{path.name}：{error_message(exc, 'upload')}")
        submitted = len(ids) - len(job_ids or [])
        lines = [f"已提交 {submitted} 个文件，入库进度见下表。"] if submitted else []
        lines += [f"未提交 {item}" for item in refused]
        kind = "error" if not submitted else "warning" if refused else "ok"
        line = "".join(notice_html(text, kind) for text in lines)
        return ids, self.table(ids), gr.Timer(active=self.pending(ids)), None, line

    def _submit(self, writer: CorpusWriter, path: Path, replace: bool) -> Job:
        """Stage one uploaded file (gradio keeps the browser's file name as the temporary
        file's last part) and queue its job, as ``POST /api/v1/documents`` does."""
        limit = writer.settings.max_upload_bytes
        if path.stat().st_size > limit:
            raise InputError(f"文件过大（上限 {limit / 2**20:.1f} MB），请拆分后上传。")
        with path.open("rb") as source:
            name, staged = writer.stage(path.name, source, replace)
        return writer.submit_add(name, staged)

    # ------------------------------------------------------------------ removal
    @inline(outputs=3)
    def ask_delete(self, name: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """(confirmation row, its question, line): nothing is removed before 确认删除."""
        self._writable(request)
        if not name:
            raise InputError(NO_CHOICE)
        document = self.live.current().searcher.documents.get(name)
        if document is None:
            raise InputError("这份文件已不在知识库中（索引可能已更新），请重新选择。")
        title = document.meta.title or name
        question = notice_html(
            f"确定从知识库删除「{title}」（{name}）吗？删除后问答和检索都不再使用它。", "warning"
        )
        return gr.update(visible=True), question, ""

    @inline(outputs=5)
    def confirm_delete(
        self, name: str | None, job_ids: list[str] | None, request: gr.Request | None = None
    ) -> tuple[Any, ...]:
        """(job ids, table, timer, confirmation row, line): the removal's job joins the table."""
        writer = self._writable(request)
        if not name:
            raise InputError(NO_CHOICE)
        ids = [*(job_ids or []), writer.submit_delete(name).id]
        line = notice_html(f"已提交删除 {name}，进度见上表。", "ok")
        return ids, self.table(ids), gr.Timer(active=True), gr.update(visible=False), line

    def cancel_delete(self) -> tuple[Any, str]:
        return gr.update(visible=False), ""


@dataclass(frozen=True)
class KnowledgeSection:
    """What the page wires beyond the section: the status tick (the index poll follows it),
    the deletion picker and the index generation its choices are from."""

    ticked: Any  # the tick's event (a gradio Dependency): ``.then`` chains after it
    choice: gr.Dropdown
    generation: gr.State
    accordion: gr.Accordion  # shown at page load to a user who may write (``visible_for``)


def build_knowledge_section(handlers: KnowledgeHandlers) -> KnowledgeSection:
    """The 知识库 layout and events; call inside the 文档 tab (only when ``handlers.enabled``)."""
    meta = MetadataHandlers(handlers)
    with gr.Accordion(
        "知识库：上传、修改与删除文件",
        open=False,
        visible=handlers.writers is None,
        elem_id="pq-kb",
    ) as accordion:
        job_ids = gr.State([])
        generation = gr.State(handlers.live.generation)
        timer = gr.Timer(POLL_SECONDS, active=False)
        gr.Markdown(
            "上传的文件逐个解析、向量化后加入知识库，完成后即可在问答和检索中使用；"
            "删除的文件不再用于回答。同一时间只处理一项任务，其余依次排队。"
        )
        with gr.Row(equal_height=True):
            files = gr.File(
                label="上传文件（可多选：文本、DOCX、PDF、网页）",
                file_count="multiple",
                file_types=list(SUPPORTED_SUFFIXES),
                type="filepath",
                height=140,
                scale=3,
                elem_id="pq-kb-upload",
            )
            replace = gr.Checkbox(
                label="替换同名文件", value=False, scale=1, elem_id="pq-kb-replace"
            )
        upload_line = gr.HTML("", js_on_load=None, elem_id="pq-kb-upload-line")
        table = gr.Dataframe(
            value=[],
            headers=KNOWLEDGE_COLUMNS,
            column_widths=KNOWLEDGE_COLUMN_WIDTHS,
            interactive=False,
            wrap=True,
            label="任务状态",
            buttons=[],  # gradio's copy/fullscreen buttons have English tooltips
            elem_id="pq-kb-jobs",
        )
        with gr.Row(equal_height=True):
            choice = gr.Dropdown(
                handlers.document_choices()[1:],
                value=None,
                label="选择文件（查看与修改信息、下载或删除）",
                scale=3,
                elem_id="pq-kb-choice",
            )
            delete = gr.Button(
                "删除…", variant="secondary", scale=0, min_width=120, elem_id="pq-kb-delete"
            )
        panel = build_metadata_panel(meta)
        with gr.Row(visible=False, equal_height=True, elem_id="pq-kb-confirm") as confirm_row:
            question = gr.HTML("", js_on_load=None, elem_id="pq-kb-confirm-text")
            confirm = gr.Button(
                "确认删除", variant="stop", scale=0, min_width=120, elem_id="pq-kb-confirm-yes"
            )
            cancel = gr.Button("取消", scale=0, min_width=90, elem_id="pq-kb-confirm-no")
        delete_line = gr.HTML("", js_on_load=None, elem_id="pq-kb-delete-line")

        files.upload(
            handlers.upload,
            [files, replace, job_ids],
            [job_ids, table, timer, files, upload_line],
            **private(),
        )
        delete.click(
            handlers.ask_delete, [choice], [confirm_row, question, delete_line], **private()
        )
        confirm.click(
            handlers.confirm_delete,
            [choice, job_ids],
            [job_ids, table, timer, confirm_row, delete_line],
            **private(),
        )
        cancel.click(handlers.cancel_delete, None, [confirm_row, delete_line], **private())
        choice.change(meta.show, [choice], panel.shown, **private())
        panel.save.click(
            inline(outputs=4)(meta.save),
            [choice, *panel.fields, job_ids],
            [job_ids, table, timer, panel.line],
            **private(),
        )
        ticked = timer.tick(
            handlers.refresh, [job_ids], [table, timer], show_progress="hidden", **private()
        ).then(meta.record, [choice], [panel.record], show_progress="hidden", **private())
    return KnowledgeSection(
        ticked=ticked, choice=choice, generation=generation, accordion=accordion
    )
