"""The 文档 tab's 知识库 section in a real browser: a staff member uploads a document, sees it
reach 已入库, asks a question only it answers, deletes it and sees it gone. The server, browser
and helpers are test_browser.py's (Chromium from Debian; skipped without it); the index here is
a small writable copy, since this test changes it."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def kb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("browser-kb")
    settings = writable_corpus(root)
    with serving(settings, runs_dir=root / "runs") as (url, _):
        yield url


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
        page.goto(kb_url)
        page.wait_for_selector("#pq-question textarea")
        page.get_by_role("tab", name="文档").click()
        page.locator("#pq-kb").get_by_text("知识库：上传、修改与删除文件").click()
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
