"""The 文档 tab's 知识库 section in a real browser: a staff member uploads a document, sees it
reach 已入库, asks a question only it answers, deletes it and sees it gone. The server, browser
and helpers are test_browser.py's (Chromium from Debian; skipped without it); the index here is
a small writable copy, since this test changes it."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from ports import serving
from test_browser import (
    ANSWER_TIMEOUT_MS,
    PAGE_TIMEOUT_MS,
    ask,
    assert_inert,
    browser,  # noqa: F401  (the fixture, shared)
    english_words,
    screenshot,
    sync_api,
)
from test_file_formats_fixtures import text_pdf
from writable_corpus import writable_corpus

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
]

FILE = "琥珀湾区星光隧道规划.txt"
TITLE = "琥珀湾区星光隧道建设规划"
TEXT = (
    f"{TITLE}\n\n第一章 总体要求\n\n"
    "琥珀湾区将建设星光海底隧道，全长十二公里，连接东西两岸的琥珀港和月亮岛。\n\n"
    "第二章 重点任务\n\n推进星光海底隧道的通风井和应急救援站建设。"
)
QUESTION = "琥珀湾区将建设什么隧道？"


DOCX = "银杏湾区生态廊道规划.docx"
DOCX_TITLE = "银杏湾区生态廊道建设规划"
DOCX_PARAGRAPHS = [
    DOCX_TITLE,
    "第一章 总体要求",
    "银杏湾区将建设白鹭生态廊道，串联北部湿地公园和南部森林公园，全长二十八公里。",
    "第二章 重点任务",
    "在白鹭生态廊道沿线布设鸟类观测站和雨水花园。",
]
PDF = "松针岭镇智慧茶园规划.pdf"
PDF_LINES = [
    "松针岭镇智慧茶园发展规划",
    "",
    "第一章 发展目标",
    "",
    "松针岭镇将建成数字孪生茶园示范基地，茶园面积达到一万二千亩。",
]
NEW_REGION = "银杏湾新区"


@pytest.fixture(scope="module")
def kb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("browser-kb")
    settings = writable_corpus(root)
    with serving(settings, runs_dir=root / "runs") as (url, _):
        yield url


def open_section(page, url: str) -> None:
    """Load the page and open the 文档 tab's 知识库 section."""
    page.goto(url)
    page.wait_for_selector("#pq-question textarea")
    page.get_by_role("tab", name="文档").click()
    page.locator("#pq-kb").get_by_text("知识库：上传、修改与删除文件").click()


def section_text(page) -> str:
    """The 知识库 section's visible text plus its visible tooltips and placeholders."""
    extra = page.evaluate(
        """() => [...document.querySelectorAll('#pq-kb [title], #pq-kb [placeholder]')]
            .filter(e => e.offsetParent !== null)
            .map(e => [e.title, e.placeholder || ''].join(' ')).join(' ')"""
    )
    return page.locator("#pq-kb").inner_text() + " " + (extra or "")


def test_upload_ask_and_delete(browser, kb_url: str, tmp_path: Path) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        open_section(page, kb_url)
        page.locator("#pq-kb-upload").wait_for()
        page.wait_for_timeout(500)
        assert not english_words(section_text(page))

        upload = tmp_path / FILE
        upload.write_text(TEXT, encoding="utf-8")
        page.locator("#pq-kb-upload input[type=file]").set_input_files(str(upload))
        jobs = page.locator("#pq-kb-jobs")
        sync_api.expect(jobs).to_contain_text("已入库", timeout=ANSWER_TIMEOUT_MS)
        assert FILE in jobs.inner_text()
        sync_api.expect(page.locator("#pq-kb-upload-line")).to_contain_text("已提交 1 个文件")
        # The tab's documents list follows the new index version.
        sync_api.expect(page.locator("#pq-doc-table")).to_contain_text(TITLE)
        assert not english_words(section_text(page))
        screenshot(page, "06-knowledge-uploaded.png")

        page.get_by_role("tab", name="问答").click()
        answer = ask(page, QUESTION)
        assert "星光海底隧道" in answer.inner_text()
        citation = answer.locator("details.pq-cite").first
        assert TITLE in citation.locator("summary").inner_text()

        page.get_by_role("tab", name="文档").click()
        picker = page.locator("#pq-kb-choice input")
        picker.click()
        picker.fill("琥珀湾")
        page.get_by_role("option", name=TITLE).first.click()
        page.locator("#pq-kb-delete").click()
        sync_api.expect(page.locator("#pq-kb-confirm-text")).to_contain_text(FILE)
        page.locator("#pq-kb-confirm-yes").click()
        sync_api.expect(jobs).to_contain_text("已删除", timeout=ANSWER_TIMEOUT_MS)
        sync_api.expect(page.locator("#pq-doc-table")).not_to_contain_text(TITLE)
        sync_api.expect(page.locator("#pq-kb-confirm")).to_be_hidden()
        picker.click()
        page.wait_for_timeout(300)
        assert page.get_by_role("option", name=TITLE).count() == 0
        page.keyboard.press("Escape")
        assert not english_words(section_text(page))
        screenshot(page, "07-knowledge-deleted.png")
        assert_inert(page)
        assert dialogs == []
    finally:
        context.close()


def test_read_only_has_no_section(browser, tmp_path: Path) -> None:  # noqa: F811
    settings = writable_corpus(tmp_path)
    with serving(settings, runs_dir=tmp_path / "runs", read_only=True) as (url, _):
        context = browser.new_context(locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        try:
            page.goto(url)
            page.wait_for_selector("#pq-question textarea")
            page.get_by_role("tab", name="文档").click()
            page.locator("#pq-doc-table").wait_for()
            assert page.locator("#pq-kb").count() == 0
            assert "知识库" not in page.locator("body").inner_text()
        finally:
            context.close()


def api_asker(url: str, stop: threading.Event, results: list[object]) -> None:
    """Another client: asks through the HTTP API until ``stop``, recording each status (or
    the exception) — every one must be a 200 while documents come, change and go."""
    body = json.dumps({"question": "港闸经济开发区2022年的工作目标是什么？"}).encode()
    while not stop.is_set():
        request = urllib.request.Request(
            url + "api/v1/ask", body, {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                results.append(response.status)
        except Exception as exc:  # recorded, asserted below
            results.append(exc)


def pick(page, words: str, label: str) -> None:
    picker = page.locator("#pq-kb-choice input")
    picker.click()
    picker.fill(words)
    page.get_by_role("option", name=label).first.click()


def test_docx_and_pdf_region_edit_citation_and_delete_while_the_api_asks(
    browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The knowledge base as staff use it, end to end, with another system asking meanwhile."""
    docx = pytest.importorskip("docx")
    document = docx.Document()
    for paragraph in DOCX_PARAGRAPHS:
        document.add_paragraph(paragraph)
    data = io.BytesIO()
    document.save(data)
    (tmp_path / DOCX).write_bytes(data.getvalue())
    text_pdf(tmp_path / PDF, PDF_LINES)

    settings = writable_corpus(tmp_path / "kb")
    with serving(settings, runs_dir=tmp_path / "runs") as (url, _):
        stop, results = threading.Event(), []
        asker = threading.Thread(target=api_asker, args=(url, stop, results), daemon=True)
        asker.start()
        context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, locale="zh-CN", accept_downloads=True
        )
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        try:
            open_section(page, url)
            upload = page.locator("#pq-kb-upload input[type=file]")
            upload.set_input_files([str(tmp_path / DOCX), str(tmp_path / PDF)])
            jobs = page.locator("#pq-kb-jobs")
            page.wait_for_function(
                """() => { const t = document.querySelector('#pq-kb-jobs').innerText;
                    return t.includes('已入库') && !/排队中|解析中|向量化|失败/.test(t); }""",
                timeout=ANSWER_TIMEOUT_MS,
            )
            assert DOCX in jobs.inner_text() and PDF in jobs.inner_text()
            sync_api.expect(page.locator("#pq-doc-table")).to_contain_text(DOCX_TITLE)

            # Correct the docx's region: the panel shows it, the edit re-indexes it.
            pick(page, "银杏湾", DOCX_TITLE)
            region = page.locator("#pq-kb-region textarea, #pq-kb-region input").first
            sync_api.expect(region).not_to_have_value("")
            with page.expect_download() as download:
                page.locator("#pq-kb-download").click()
            assert download.value.suggested_filename == DOCX
            region.fill(NEW_REGION)
            page.locator("#pq-kb-save").click()
            sync_api.expect(jobs).to_contain_text("已更新", timeout=ANSWER_TIMEOUT_MS)
            sync_api.expect(page.locator("#pq-doc-table")).to_contain_text(NEW_REGION)
            sync_api.expect(page.locator("#pq-kb-record")).to_contain_text("清单")
            screenshot(page, "08-knowledge-metadata.png")

            # Ask what only the new document says, under its new region, and open the source.
            page.get_by_role("tab", name="问答").click()
            answer = ask(page, f"{NEW_REGION}将建设什么生态廊道？")
            assert "白鹭生态廊道" in answer.inner_text()
            citation = answer.locator("details.pq-cite").first
            assert DOCX_TITLE in citation.locator("summary").inner_text()
            citation.locator("summary").click()
            citation.locator("a.pq-open").click()
            viewer_mark = page.locator("#pq-viewer mark.pq-quote")
            viewer_mark.wait_for()
            assert "白鹭生态廊道" in viewer_mark.inner_text()
            page.get_by_role("tab", name="问答").click()
            pdf_answer = ask(page, "松针岭镇茶园面积达到多少？")
            assert "一万二千亩" in pdf_answer.inner_text()

            # Delete the docx: the same question is no longer answered from it.
            page.get_by_role("tab", name="文档").click()
            pick(page, "银杏湾", DOCX_TITLE)
            page.locator("#pq-kb-delete").click()
            page.locator("#pq-kb-confirm-yes").click()
            sync_api.expect(jobs).to_contain_text("已删除", timeout=ANSWER_TIMEOUT_MS)
            sync_api.expect(page.locator("#pq-doc-table")).not_to_contain_text(DOCX_TITLE)
            page.get_by_role("tab", name="问答").click()
            gone = ask(page, f"{NEW_REGION}将建设什么生态廊道？")
            assert "白鹭生态廊道" not in gone.locator(".pq-answer-text").inner_text()
            assert DOCX_TITLE not in gone.inner_text()
            assert_inert(page)
        finally:
            context.close()
            stop.set()
            asker.join(90)
    assert results and all(result == 200 for result in results), results[:5]
