"""The 文档 tab's 知识库 section (ui/tab_knowledge.py, ui/render_knowledge.py): its handlers on
the server's real writer and job runner over a small hash-embedder index, and its rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from writable_corpus import SMALL_PLANS, writable_corpus

from planqa.ui.corpus_writer import CorpusWriter
from planqa.ui.index_watch import LiveIndex
from planqa.ui.jobs import FAILED, INDEXED, QUEUED, RUNNING, Job
from planqa.ui.render_knowledge import failure_text, job_row
from planqa.ui.tab_knowledge import READ_ONLY_MESSAGE, KnowledgeHandlers

NEW_PLAN = (
    "青柳湾区湿地保护规划\n\n第一章 总体要求\n\n"
    "青柳湾区将建设朱鹮栖息湿地保护示范区，到2025年湿地保护率达到百分之九十。\n\n"
    "第二章 重点任务\n\n完善朱鹮栖息湿地的监测站点和巡护道路。"
)


def english(text: str) -> set[str]:
    """Latin words of three letters or more, less file names and markup (data, not text)."""
    rest = re.sub(r"<[^>]*>|\S+\.(?:txt|md|pdf|docx|html)\b", " ", text)
    return set(re.findall(r"[A-Za-z]{3,}", rest)) - {"PDF", "DOCX", "UTF"}


@pytest.fixture
def handlers(tmp_path: Path) -> KnowledgeHandlers:
    from planqa.rag.pipeline import Pipeline
    from planqa.ui.shared import LiveHandlers

    settings = writable_corpus(tmp_path, index_lock_timeout=10)
    live = LiveIndex(Pipeline.open(settings))
    writer = CorpusWriter(settings, live)
    return KnowledgeHandlers(live, writer, LiveHandlers(live).document_choices)


def upload_file(handlers: KnowledgeHandlers, tmp_path: Path, name: str, data: bytes) -> tuple:
    folder = tmp_path / "browser" / name  # gradio keeps the browser's name as the last part
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return handlers.upload([str(folder / name)], False, [])


def finish(handlers: KnowledgeHandlers, ids: list[str]) -> list[list[str]]:
    assert handlers.writer is not None
    for job in handlers.jobs(ids):
        handlers.writer.runner.wait(job, 60)
    table, timer = handlers.refresh(ids)
    assert timer.active is False
    return table


def test_upload_indexes_answers_and_delete_removes(
    handlers: KnowledgeHandlers, tmp_path: Path
) -> None:
    ids, table, timer, cleared, line = upload_file(
        handlers, tmp_path, "青柳湾区规划.txt", NEW_PLAN.encode()
    )
    assert len(ids) == 1 and cleared is None and "已提交 1 个文件" in line
    assert table[0][0] == "青柳湾区规划.txt"
    rows = finish(handlers, ids)
    assert rows[0][:3] == ["青柳湾区规划.txt", "已入库", "100%"]
    choices, generation = handlers.sync_choices(None, 0)
    assert generation == handlers.live.generation > 0
    assert "青柳湾区规划.txt" in [value for _, value in choices["choices"]]
    assert handlers.sync_choices(None, generation)[0] == {"__type__": "update"}
    answer = handlers.live.current().ask("青柳湾区将建设什么保护示范区？")
    assert any(c.doc == "青柳湾区规划.txt" for c in answer.citations)

    _, _, _, _, refused = upload_file(handlers, tmp_path, "青柳湾区规划.txt", b"x")
    assert "已有同名文件" in refused and "pq-line-error" in refused and not english(refused)

    row, question, line = handlers.ask_delete("青柳湾区规划.txt")
    assert row["visible"] is True and "青柳湾区湿地保护规划" in question and line == ""
    ids, table, timer, row, line = handlers.confirm_delete("青柳湾区规划.txt", ids)
    assert timer.active is True and row["visible"] is False and "已提交删除" in line
    rows = finish(handlers, ids)
    assert rows[0][:2] == ["青柳湾区规划.txt", "已删除"] and rows[1][1] == "已入库"
    assert "青柳湾区规划.txt" not in handlers.live.current().searcher.documents
    choices, _ = handlers.sync_choices("青柳湾区规划.txt", generation)
    assert choices["value"] is None  # the picked document is gone
    assert "青柳湾区规划.txt" not in [value for _, value in choices["choices"]]


def test_a_bad_file_fails_in_chinese_and_others_go_on(
    handlers: KnowledgeHandlers, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    (folder / "空白.txt").write_bytes(b"  \n")
    (folder / "乱码.txt").write_bytes(bytes(range(1, 32)) * 40)
    (folder / "好的.md").write_text(NEW_PLAN.replace("青柳", "白杨"), encoding="utf-8")
    (folder / "脚本.sh").write_text("echo", encoding="utf-8")
    files = [str(folder / n) for n in ("空白.txt", "乱码.txt", "好的.md", "脚本.sh")]
    ids, _, timer, _, line = handlers.upload(files, False, [])
    assert len(ids) == 3 and timer.active is True
    assert "pq-line-warning" in line and "脚本.sh" in line and "不支持这种文件类型" in line
    rows = {row[0]: row for row in finish(handlers, ids)}
    assert rows["空白.txt"][1] == "失败：文件是空的（没有文字），请检查后重新上传。"
    assert rows["乱码.txt"][1].startswith("失败：这不是文本文件")
    assert rows["好的.md"][1] == "已入库"
    for row in rows.values():
        assert not english(" ".join(row)), row


def test_mistakes_are_status_lines(handlers: KnowledgeHandlers) -> None:
    assert "请先选择要上传的文件" in handlers.upload([], False, [])[-1]
    assert "请先选择文件" in handlers.ask_delete(None)[-1]
    line = handlers.confirm_delete("没有这个.txt", [])[-1]
    assert "pq-line-error" in line and "知识库中没有文件" in line and not english(line)


def test_read_only_refuses_everything(handlers: KnowledgeHandlers, tmp_path: Path) -> None:
    read_only = KnowledgeHandlers(handlers.live, None, handlers.document_choices)
    assert not read_only.enabled
    (tmp_path / "a.txt").write_text(NEW_PLAN, encoding="utf-8")
    for result in (
        read_only.upload([str(tmp_path / "a.txt")], False, []),
        read_only.ask_delete(SMALL_PLANS[0]),
        read_only.confirm_delete(SMALL_PLANS[0], []),
    ):
        assert READ_ONLY_MESSAGE in result[-1]
    assert (
        read_only.table(["x"]) == [] and SMALL_PLANS[0] in handlers.live.pipeline.searcher.documents
    )


def test_the_page_has_the_section_only_with_a_writer(handlers: KnowledgeHandlers) -> None:
    from planqa.ui.app import build_blocks

    def labels(demo) -> set[str]:
        return {getattr(b, "label", None) for b in demo.blocks.values()}

    with_writer = build_blocks(handlers.live, writer=handlers.writer)
    assert "知识库：上传、修改与删除文件" in labels(with_writer)
    public = [f.api_name for f in with_writer.fns.values() if f.api_visibility == "public"]
    assert public == ["ask"]
    assert "知识库：上传、修改与删除文件" not in labels(build_blocks(handlers.live))


def job(state: str, stage: str = "", done: int = 0, total: int = 0, **extra: object) -> Job:
    made = Job(kind=str(extra.pop("kind", "add")), documents=["规划.pdf"])
    made.state, made.stage, made.done, made.total = state, stage, done, total
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_rows_say_each_state_in_chinese() -> None:
    assert job_row(job(QUEUED), 2)[1] == "排队中（第 2 位）"
    assert job_row(job(RUNNING, "parsing"), None)[1] == "解析中"
    assert job_row(job(RUNNING, "embedding", 12, 40), None)[1:3] == ["向量化 12/40", "30%"]
    assert job_row(job(RUNNING, "removing", kind="delete"), None)[1] == "删除中"
    pdf = job(FAILED, error_type="DocumentError", error="x.pdf: no extractable text in this PDF")
    assert (
        job_row(pdf, None)[1]
        == "失败：这份 PDF 没有文字层（可能是扫描件），请先转成可复制文字的 PDF 再上传。"
    )
    assert "编码" in failure_text("DocumentError", "a.txt: cannot detect the text encoding; x")
    assert "唯一" in failure_text("ApiError", "a.txt is the index's only document; an index")
    assert "磁盘" in failure_text("OSError", "No space left on device")
    assert "内部错误" in failure_text("InternalError", "KeyError: 'x'")
    assert failure_text("DocumentError", "something new") == (
        "这份文件无法读取（可能已损坏、为空或不是文本），请联系管理员。"
    )
    assert job_row(job(INDEXED, result={"embedded": 7}), None)[1:] == [
        "已入库",
        "100%",
        "新增 7 个段落，可以提问了",
    ]


def test_the_panel_edits_a_region_that_survives_a_restart(
    handlers: KnowledgeHandlers, tmp_path: Path
) -> None:
    """Pick a document, correct its region and aliases, save: the job re-indexes it, the
    manifest keeps the edit (a fresh load of the folder has it), region search finds it."""
    import json

    from planqa.corpus.loader import load_corpus
    from planqa.corpus.settings import BUNDLED_CORPUS_DIR
    from planqa.ui.knowledge_meta import NOTHING_CHANGED, MetadataHandlers

    panel = MetadataHandlers(handlers, export_dir=tmp_path / "exports")
    ids, *_ = upload_file(handlers, tmp_path, "青柳湾区规划.txt", NEW_PLAN.encode())
    finish(handlers, ids)
    shown = panel.show("青柳湾区规划.txt")
    region, _, title, _, period, date, issuer, record, download = shown
    assert region and title == "青柳湾区湿地保护规划"
    assert "自动识别" in record and "入库时间" in record
    assert download["visible"] is True
    assert Path(download["value"]).read_bytes() == NEW_PLAN.encode()

    fields = ["青柳湾新区", "青柳湾、青柳", title, "年度工作计划", period, date, issuer]
    ids, table, timer, line = panel.save("青柳湾区规划.txt", *fields, ids)
    assert timer.active is True and "已提交修改" in line and table[0][-1] == "修改信息"
    rows = finish(handlers, ids)
    assert rows[0][:2] == ["青柳湾区规划.txt", "已更新"] and not english(" ".join(rows[0]))
    meta = handlers.live.current().searcher.documents["青柳湾区规划.txt"].meta
    assert (meta.region, meta.aliases, meta.kind) == (
        "青柳湾新区",
        ("青柳湾", "青柳"),
        "年度工作计划",
    )
    assert meta.inferred is False and "清单" in panel.record("青柳湾区规划.txt")
    assert handlers.writer is not None
    corpus = handlers.writer.corpus_dir
    entry = next(
        e
        for e in json.loads((corpus / "manifest.json").read_text("utf-8"))["documents"]
        if e["file"] == "青柳湾区规划.txt"
    )
    assert entry["region"] == "青柳湾新区" and entry["aliases"] == ["青柳湾", "青柳"]
    reloaded = load_corpus([corpus / "青柳湾区规划.txt"]).documents[0].meta
    assert reloaded.region == "青柳湾新区"
    answer = handlers.live.current().ask("青柳湾将建设什么保护示范区？")
    assert any(c.doc == "青柳湾区规划.txt" for c in answer.citations)

    assert NOTHING_CHANGED in panel.save("青柳湾区规划.txt", *fields, ids)[-1]
    empty = inline_save(panel, "青柳湾区规划.txt", ["", *fields[1:]], ids)
    assert "地区不能为空" in empty and "pq-line-error" in empty

    ids = handlers.confirm_delete("青柳湾区规划.txt", ids)[0]
    finish(handlers, ids)
    manifest = json.loads((corpus / "manifest.json").read_text("utf-8"))
    assert "青柳湾区规划.txt" not in {e["file"] for e in manifest["documents"]}
    bundled = json.loads((BUNDLED_CORPUS_DIR / "manifest.json").read_text("utf-8"))
    assert manifest["documents"] == bundled["documents"]  # the others' entries as they were


def inline_save(panel, name: str, fields: list[str], ids: list[str]) -> str:
    """The status line the page shows for a save (the section wraps the handler so)."""
    from planqa.ui.tab_knowledge import inline

    return inline(outputs=4)(panel.save)(name, *fields, ids)[-1]


def test_the_table_shows_other_clients_unfinished_jobs(handlers: KnowledgeHandlers) -> None:
    """An API client's upload waiting in the queue is visible on a page that started none;
    once finished it leaves that page's table (it was not this page's job)."""
    import threading

    assert handlers.writer is not None
    release = threading.Event()
    runner = handlers.writer.runner
    running = runner.submit("add", ["接口上传.docx"], lambda job: {"ok": release.wait(10)})
    queued = runner.submit("delete", ["另一份.txt"], lambda job: {})
    try:
        for _ in range(200):  # the worker picks the first job up
            if running.state == RUNNING:
                break
            threading.Event().wait(0.05)
        rows = handlers.table([])
        assert [row[0] for row in rows] == ["另一份.txt", "接口上传.docx"]
        assert rows[0][1] == "排队中（第 1 位）" and handlers.pending([])
    finally:
        release.set()
    runner.wait(running, 10)
    runner.wait(queued, 10)
    assert handlers.table([]) == [] and not handlers.pending([])


def test_only_the_admin_may_write(handlers: KnowledgeHandlers, tmp_path: Path) -> None:
    """With an admin login, another logged-in user's page hides the section and every write
    handler refuses that user on the server; the admin's upload goes through."""
    from types import SimpleNamespace

    from planqa.ui.tab_knowledge import NOT_ADMIN_MESSAGE

    guarded = KnowledgeHandlers(
        handlers.live, handlers.writer, handlers.document_choices, frozenset({"chief"})
    )
    staff, chief = SimpleNamespace(username="planner"), SimpleNamespace(username="chief")
    assert guarded.visible_for(staff)["visible"] is False
    assert guarded.visible_for(chief)["visible"] is True
    (tmp_path / "b.txt").write_text(NEW_PLAN, encoding="utf-8")
    for result in (
        guarded.upload([str(tmp_path / "b.txt")], False, [], staff),
        guarded.ask_delete(SMALL_PLANS[0], staff),
        guarded.confirm_delete(SMALL_PLANS[0], [], staff),
        guarded.upload([str(tmp_path / "b.txt")], False, []),  # no login at all
    ):
        assert NOT_ADMIN_MESSAGE in result[-1]
    assert "b.txt" not in guarded.live.current().searcher.documents
    ids = guarded.upload([str(tmp_path / "b.txt")], False, [], chief)[0]
    assert finish(guarded, ids)[0][1] == "已入库"
