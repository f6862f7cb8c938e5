"""What the 文档 tab's 知识库 section shows of index jobs (ui/jobs.py): one Chinese row per job.

A job carries English for the API and the log (its stage names, its error's class name and
message); staff managing documents read Chinese. The row is therefore built here from the
job's *fields*, never its text: the state and stage pick a fixed Chinese word, and a failure is
rebuilt as its error class and put through :func:`ui.messages.user_message`, so an empty file,
an undecodable one or a PDF without a text layer each get their own Chinese reason and any
other error its class's message. Nothing of the English message reaches the page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from planqa.corpus.errors import (
    DocumentError,
    IndexStoreError,
    InputError,
    ModelError,
    PlanqaError,
)
from planqa.ui.corpus_writer import ApiError
from planqa.ui.jobs import FAILED, INDEXED, QUEUED, Job
from planqa.ui.messages import GENERIC_MESSAGE, user_message

KNOWLEDGE_COLUMNS = ["文件", "状态", "进度", "说明"]
KNOWLEDGE_COLUMN_WIDTHS = ["30%", "30%", "10%", "30%"]
#: What a job does, as its 说明 while it is not finished.
KIND_NAMES = {
    "add": "上传入库",
    "edit": "修改信息",
    "delete": "删除",
    "upgrade": "向量升级：完成前用快速模型检索",
}
#: Running stages (ui/jobs.py, ui/corpus_writer.py) in Chinese.
STAGE_NAMES = {"parsing": "解析中", "embedding": "向量化", "removing": "删除中", "done": "收尾中"}
#: A write failure (OSError: a full disk, a read-only folder) and a bug, as the job records them.
WRITE_FAILED = "无法写入知识库文件夹或索引（磁盘已满或没有写入权限），请联系管理员。"
JOB_INTERNAL_ERROR = "内部错误：这项任务没有完成（详情已记录在服务器日志中），请重试。"
_ERROR_CLASSES: dict[str, type[PlanqaError]] = {
    cls.__name__: cls for cls in (InputError, DocumentError, IndexStoreError, ModelError)
}
_OS_ERRORS = {"OSError", "PermissionError", "FileNotFoundError", "IsADirectoryError"}


class Positions(Protocol):
    """The runner's queue positions (a :class:`ui.jobs.JobRunner`, or a test's stand-in)."""

    def position(self, job: Job) -> int | None: ...


def failure_text(error_type: str, message: str) -> str:
    """A failed job's reason in Chinese, chosen by its error class (see the module docstring)."""
    if error_type == "ApiError":
        return user_message(ApiError(409, message))
    if error_type in _ERROR_CLASSES:
        return user_message(_ERROR_CLASSES[error_type](message))
    if error_type in _OS_ERRORS:
        return WRITE_FAILED
    if error_type == "InternalError":
        return JOB_INTERNAL_ERROR
    text = user_message(PlanqaError(message))
    return text if text != GENERIC_MESSAGE else "入库未能完成，请重试或联系管理员。"


def job_row(job: Job, position: int | None) -> list[str]:
    """[文件, 状态, 进度, 说明] for one job: 排队中（第 n 位）, 解析中, 向量化 12/40, 已入库
    (已删除 for a removal) or 失败：<reason>."""
    name = "、".join(job.documents) or "全部文档"
    kind = KIND_NAMES.get(job.kind, job.kind)
    if job.state == QUEUED:
        where = f"（第 {position} 位）" if position else ""
        return [name, f"排队中{where}", "", kind]
    if job.state == FAILED:
        return [name, f"失败：{failure_text(job.error_type, job.error)}", "", f"{kind}未完成"]
    if job.state == INDEXED:
        if job.kind == "delete":
            return [name, "已删除", "100%", "已从知识库删除"]
        if job.kind == "edit":
            return [name, "已更新", "100%", "信息已保存并重新索引"]
        if job.kind == "upgrade":
            return [name, "已升级", "100%", "检索已换用完整模型的向量"]
        chunks = job.result.get("embedded")
        detail = f"新增 {chunks} 个段落，可以提问了" if chunks else "可以提问了"
        return [name, "已入库", "100%", detail]
    stage = STAGE_NAMES.get(job.stage, "处理中")
    if job.stage == "embedding" and job.total:
        percent = f"{min(100, round(100 * job.done / job.total))}%"
        return [name, f"{stage} {job.done}/{job.total}", percent, kind]
    return [name, stage, "", kind]


def job_rows(jobs: Iterable[Job], runner: Positions) -> list[list[str]]:
    """The status table, newest job first (the one just started is where the eye is)."""
    return [job_row(job, runner.position(job)) for job in reversed(list(jobs))]
