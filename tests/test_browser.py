"""The UI in a real browser (Playwright driving Debian's Chromium): what a user sees and clicks.

The server runs on the bundled corpus plus one planted document whose title and text carry
``<script>`` and ``<img onerror>`` payloads; every test fails if any JavaScript dialog opens or if
an ``<img src=x>`` element exists in the page. Screenshots of each tab go to
``artifacts/screenshots/`` for people to look at.

Needs the ``playwright`` package and a Chromium binary (``/usr/bin/chromium`` from Debian, or
``$PLANQA_CHROMIUM``); Playwright's own browser download is not used. Without them the tests skip.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from ports import serving

from planqa.corpus.settings import BUNDLED_CORPUS_DIR, Settings

pytestmark = [
    pytest.mark.browser,
    # gradio's queue trips pandas 3 deprecations in its own code; nothing planqa can change.
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
]

CHROMIUM = Path(os.environ.get("PLANQA_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set PLANQA_CHROMIUM)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed: pip install playwright"
)

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_FILE = "900_xss.txt"
XSS_TEXT = f"""测试区智慧农业发展规划{XSS_IMG}

一、总体要求
测试区将建设智慧农业示范园{XSS_SCRIPT}，推动{XSS_IMG}数字农业企业集聚，打造长三角智慧农业高地。

二、重点任务
（一）建设智慧农业示范园
在测试区北部建设智慧农业示范园，配套冷链物流中心{XSS_IMG}和农产品检测平台。
"""
EXAMPLE = "哪个区规划了集成电路测试产业园？"
PAGE_TIMEOUT_MS = 30_000
#: A loaded CI machine can be slow on the first answer (lazy loading in the question analyser).
ANSWER_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def xss_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The bundled corpus plus a document whose title and text are XSS payloads."""
    from planqa.index.builder import build_index

    root = tmp_path_factory.mktemp("browser")
    corpus = root / "corpus"
    shutil.copytree(BUNDLED_CORPUS_DIR, corpus)
    (corpus / XSS_FILE).write_text(XSS_TEXT, encoding="utf-8")
    manifest = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    manifest["documents"].append(
        {
            "file": XSS_FILE,
            "region": "测试区",
            "aliases": ["测试"],
            "title": f"测试区智慧农业发展规划{XSS_IMG}{XSS_SCRIPT}",
            "kind": "专项规划",
            "issuer": f"测试区{XSS_SCRIPT}",
        }
    )
    (corpus / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
    settings = Settings(embedding_model="hash", index_dir=root / "index", corpus_dir=corpus)
    build_index(settings, [corpus], progress=False)
    return settings


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 评测 tab's run folder and verdict store, away from the working directory."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def base_url(xss_settings: Settings, runs_dir: Path) -> Iterator[str]:
    with serving(xss_settings, runs_dir=runs_dir) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, base_url: str, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh page on the app; fails the test if any dialog (alert/confirm) ever opens.

    A failed test leaves ``artifacts/screenshots/failed-<test>.png`` behind for diagnosis.
    """
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, accept_downloads=True, locale="zh-CN"
    )
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(base_url)
    page.wait_for_selector("#pq-question textarea")
    failed_before = request.session.testsfailed
    try:
        yield page
        if request.session.testsfailed > failed_before:
            screenshot(page, f"failed-{request.node.name}.png")
        assert_inert(page)
        assert dialogs == [], f"a script ran: dialogs {dialogs}"
    finally:
        context.close()


def assert_inert(page) -> None:
    """No element was created from the payloads, in any tab. (The page's own config script
    holds the payloads as JSON data with ``<`` escaped; only a *created* element counts.)"""
    injected = page.evaluate(
        """() => ({
            images: document.querySelectorAll('img[src="x"], img[onerror]').length,
            scripts: [...document.querySelectorAll('script')]
                .filter(s => s.textContent.trim() === 'alert(1)').length,
        })"""
    )
    assert injected == {"images": 0, "scripts": 0}


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def ask(page, question: str | None = None) -> object:
    """Ask (an example question when ``question`` is None) and wait for the cited answer."""
    before = page.locator("#pq-chatbot .pq-answer").count()
    textbox = page.locator("#pq-question textarea")
    if question is None:
        # Loading an example is a round trip to the server: wait until it has filled the box.
        page.get_by_role("button", name=EXAMPLE).click()
        sync_api.expect(textbox).to_have_value(EXAMPLE, timeout=ANSWER_TIMEOUT_MS)
    else:
        textbox.fill(question)
    page.get_by_role("button", name="发送").click()
    answer = page.locator("#pq-chatbot .pq-answer").nth(before)
    answer.locator(".pq-foot").wait_for(timeout=ANSWER_TIMEOUT_MS)
    return answer


def test_chat_answer_cites_and_opens_the_source(page) -> None:
    screenshot(page, "00-chat-empty.png")
    answer = ask(page)
    assert "南通" in answer.locator(".pq-answer-text").inner_text()
    citation = answer.locator("details.pq-cite").first
    assert "[1]" in citation.locator("summary").inner_text()
    citation.locator("summary").click()
    quote = citation.locator("mark.pq-quote")
    quote.wait_for()
    quote_text = quote.inner_text()
    assert quote_text
    screenshot(page, "01-chat.png")

    citation.locator("a.pq-open").click()
    viewer_mark = page.locator("#pq-viewer mark.pq-quote")
    viewer_mark.wait_for()
    assert page.get_by_role("tab", name="文档").get_attribute("aria-selected") == "true"
    assert viewer_mark.inner_text() == quote_text
    page.wait_for_timeout(700)  # the viewer scrolls the passage into view
    assert viewer_mark.is_visible()
    box, viewer_box = viewer_mark.bounding_box(), page.locator(".pq-viewer").bounding_box()
    assert viewer_box["y"] <= box["y"] <= viewer_box["y"] + viewer_box["height"]
    screenshot(page, "03-documents.png")

    # The tab bar stays reachable after the jump, and after scrolling further down.
    assert_tab_bar_on_screen(page)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_timeout(300)
    assert page.evaluate("window.scrollY") > 0
    assert_tab_bar_on_screen(page)
    page.get_by_role("tab", name="问答").click()
    sync_api.expect(page.get_by_role("tab", name="问答")).to_have_attribute("aria-selected", "true")


def assert_tab_bar_on_screen(page) -> None:
    """The 问答 tab button is inside the viewport and not covered: a click there hits it."""
    where = page.evaluate(
        """() => {
            const tab = [...document.querySelectorAll('#pq-tabs [role=tab]')]
                .find(t => t.textContent.trim() === '问答');
            const r = tab.getBoundingClientRect();
            const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return {top: r.top, bottom: r.bottom, height: innerHeight,
                    hit: !!hit && tab.contains(hit)};
        }"""
    )
    assert where["top"] >= 0 and where["bottom"] <= where["height"] and where["hit"], where


def test_follow_up_and_clear(page) -> None:
    ask(page)
    ask(page, "那它的GDP目标呢？")
    assert page.locator("#pq-chatbot .pq-answer").count() == 2
    page.locator("#pq-clear").click()
    page.wait_for_function("() => !document.querySelector('#pq-chatbot .pq-answer')")


def search_for(page, query: str) -> None:
    page.get_by_role("tab", name="检索").click()
    page.locator("#pq-query input, #pq-query textarea").first.fill(query)
    page.get_by_role("button", name="检索", exact=True).click()
    page.locator(".pq-results").wait_for()


def test_precedent_search_lists_exactly_the_passages_with_the_term(
    page, xss_settings: Settings
) -> None:
    """人才公寓 is in exactly N passages of the corpus: the page lists N, highlighted, the count
    says N, and the CSV's header carries the query and holds the N rows shown."""
    from planqa.index.search import HybridSearcher

    chunks = HybridSearcher.open(xss_settings).contents.chunks
    n = sum("人才公寓" in chunk.text for chunk in chunks)
    assert 0 < n < 20
    search_for(page, "人才公寓")
    hits = page.locator(".pq-hit")
    sync_api.expect(hits).to_have_count(n)
    marks = page.locator(".pq-hit mark.pq-term").all_inner_texts()
    assert marks.count("人才公寓") >= n and set(marks) <= {"人才公寓", "人才", "公寓"}
    assert f"共 {n} 条段落" in page.locator("#pq-search-summary").inner_text()
    assert page.locator(".pq-count-table tbody tr").count() >= 1
    assert "相关度：高" in hits.first.inner_text()
    assert "包含完整检索词" in hits.first.locator(".pq-rel").get_attribute("title")
    screenshot(page, "02-search.png")

    with page.expect_download() as info:
        page.get_by_role("button", name="下载 CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("planqa-检索-人才公寓-")
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8-sig", newline="") as handle:
        lines = handle.read().splitlines()
    assert "# 检索词：人才公寓" in lines
    rows = list(csv.reader(line for line in lines if not line.startswith("# ")))
    assert rows[0][:3] == ["序号", "相关度", "地区"] and len(rows) == n + 1

    page.locator("#pq-related input").check()
    page.get_by_role("button", name="检索", exact=True).click()
    sync_api.expect(page.locator(".pq-related-title")).to_be_visible()
    assert hits.count() > n
    assert f"共 {n} 条段落" in page.locator("#pq-search-summary").inner_text()

    page.locator(".pq-count-table a").first.click()  # the table links into the list
    hits.first.locator("a.pq-open").click()
    page.locator("#pq-viewer .pq-focus").first.wait_for()


def test_xss_in_question_and_documents_stays_inert(page) -> None:
    question = f"{XSS_SCRIPT}{XSS_IMG}测试区的智慧农业示范园建在哪里？"
    answer = ask(page, question)
    user_text = page.locator("#pq-chatbot .pq-q").last.inner_text()
    assert XSS_SCRIPT in user_text and XSS_IMG in user_text  # shown as text

    page.get_by_role("tab", name="检索").click()
    page.locator("#pq-query input, #pq-query textarea").first.fill("智慧农业示范园 冷链物流")
    page.get_by_role("button", name="检索", exact=True).click()
    page.locator(".pq-results").wait_for()
    planted = page.locator(".pq-hit", has_text="冷链物流中心").first
    assert XSS_IMG in planted.inner_text()
    assert XSS_IMG in page.locator(".pq-doc-title", has_text="智慧农业").first.inner_text()
    assert_inert(page)
    screenshot(page, "05-xss-search.png")

    planted.locator("a.pq-open").click()
    page.locator("#pq-viewer .pq-focus").first.wait_for()
    viewer_text = page.locator(".pq-viewer").inner_text()
    assert XSS_SCRIPT in viewer_text and XSS_IMG in viewer_text
    assert XSS_IMG in page.locator(".pq-doc-name").inner_text()
    assert XSS_SCRIPT in page.locator("#pq-doc-table").inner_text()  # the issuer column
    assert_inert(page)

    page.get_by_role("tab", name="问答").click()
    cites = answer.locator("details.pq-cite")
    for i in range(cites.count()):
        cites.nth(i).locator("summary").click()
    assert_inert(page)


def test_documents_tree_jumps_to_a_heading(page) -> None:
    page.get_by_role("tab", name="文档").click()
    tree = page.locator("#pq-tree .pq-tree-item a")
    assert tree.count() > 3
    target = tree.nth(3)
    target.click()
    page.wait_for_timeout(700)
    heading = page.locator(f"#pq-pos-{target.get_attribute('data-pos')}")
    assert heading.count() == 1
    screenshot(page, "03b-documents-tree.png")


def review_position(page, text: str) -> None:
    """Wait until the 评测 tab shows the question at ``text`` (e.g. "第 2 / 40 题")."""
    sync_api.expect(page.locator("#pq-review-item .pq-review-pos")).to_have_text(
        text, timeout=ANSWER_TIMEOUT_MS
    )


def test_eval_tab_records_a_verdict_that_survives_a_reload(page, runs_dir: Path) -> None:
    """Load the dev set, judge question 2 with a note, reload the page, load again: the verdict
    is still there, counted in the progress, and in the CSV export."""
    note = "数字对，但缺少单位 =1+1"
    page.get_by_role("tab", name="评测").click()
    evaluator = page.locator("#pq-review-evaluator input, #pq-review-evaluator textarea").first
    evaluator.fill("测试员")
    page.locator("#pq-review-load").click()  # the dev set is answered once here (extractive)
    review_position(page, "第 1 / 40 题")
    page.locator("#pq-review-next").click()
    review_position(page, "第 2 / 40 题")
    item = page.locator("#pq-review-item")
    for part in ("planqa 的回答", "金标答案与证据", "自动判定", "d002"):
        assert part in item.inner_text()
    page.locator("#pq-review-verdict").get_by_label("部分正确").check()
    page.locator("#pq-review-supports").get_by_label("不支持").check()
    page.locator("#pq-review-note textarea").fill(note)
    page.locator("#pq-review-save").click()
    sync_api.expect(item.locator(".pq-judged")).to_contain_text("已评：部分正确")
    sync_api.expect(page.locator("#pq-review-progress")).to_contain_text("测试员 已评 1 / 40 题")

    page.reload()
    page.wait_for_selector("#pq-question textarea")
    page.get_by_role("tab", name="评测").click()
    evaluator = page.locator("#pq-review-evaluator input, #pq-review-evaluator textarea").first
    sync_api.expect(evaluator).to_have_value("测试员")  # remembered by the browser
    page.locator("#pq-review-load").click()  # the run is reused, not answered again
    review_position(page, "第 1 / 40 题")  # resumes at the first question not yet judged
    sync_api.expect(page.locator("#pq-review-progress")).to_contain_text("测试员 已评 1 / 40 题")
    page.locator("#pq-review-next").click()
    review_position(page, "第 2 / 40 题")
    sync_api.expect(page.locator("#pq-review-verdict").get_by_label("部分正确")).to_be_checked()
    sync_api.expect(page.locator("#pq-review-supports").get_by_label("不支持")).to_be_checked()
    sync_api.expect(page.locator("#pq-review-note textarea")).to_have_value(note)
    page.locator("#pq-review-item details.pq-cite summary").first.click()
    screenshot(page, "04-eval.png")

    with page.expect_download() as info:
        page.locator("#pq-review-export").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8-sig", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["评测人"] == "测试员"]
    # Chinese headers and words for people, the codes beside them for tools.
    assert [
        (r["题目 ID"], r["人工判定"], r["引用是否支持回答"], r["判定代码"], r["引用支持代码"])
        for r in rows
    ] == [("d002", "部分正确", "不支持", "partial", "false")]
    assert rows[0]["备注"] == note  # starts with a letter, so it needs no formula guard
    assert (runs_dir / "verdicts.sqlite3").is_file()


def test_a_review_mistake_is_one_line_and_the_next_click_works(page) -> None:
    """保存 without a verdict: the message appears once, beside the form, no toast and no
    "Error" overlay on the components; the next 保存 works. A second evaluator's verdicts fill
    the table between evaluators (the docs' screenshot of the tab)."""
    page.get_by_role("tab", name="评测").click()
    evaluator = page.locator("#pq-review-evaluator input, #pq-review-evaluator textarea").first
    evaluator.fill("复核员")
    page.locator("#pq-review-load").click()
    review_position(page, "第 1 / 40 题")
    page.locator("#pq-review-save").click()
    line = page.locator("#pq-review-form-line .pq-line-error")
    sync_api.expect(line).to_contain_text("请选择判定")
    page.wait_for_timeout(500)  # a toast or an overlay would be on screen by now
    assert page.get_by_text("请选择判定").count() == 1
    assert page.locator(".toast-body").count() == 0
    assert page.locator("span.error:visible, .wrap.error:visible").count() == 0
    assert not page.locator("#pq-review-load-line").inner_text().strip()

    page.locator("#pq-review-verdict").get_by_label("正确", exact=True).check()
    page.locator("#pq-review-save-next").click()
    review_position(page, "第 2 / 40 题")
    sync_api.expect(page.locator("#pq-review-form-line")).to_contain_text("已保存 d001：正确")
    assert page.locator("#pq-review-form-line .pq-line-error").count() == 0
    page.locator("#pq-review-verdict").get_by_label("错误", exact=True).check()
    page.locator("#pq-review-supports").get_by_label("不支持").check()
    page.locator("#pq-review-save").click()
    between = page.locator("#pq-agree-between")
    sync_api.expect(between).to_contain_text("×")
    auto_rows = page.locator("#pq-agree-auto tr").all_inner_texts()
    assert any(r.startswith("复核员") for r in auto_rows)
    assert any(r.startswith("测试员") for r in auto_rows)
    page.locator("#pq-review-item details.pq-cite summary").first.click()
    page.locator("#pq-review-status").scroll_into_view_if_needed()
    screenshot(page, "04b-eval-two-evaluators.png")


#: English a Chinese page may show: names, formats and the corpus's own words.
ENGLISH_ALLOWED = {
    *("planqa", "CSV", "Excel", "LLM", "JSON", "PDF", "DOCX", "API", "e5", "ID"),
    *("GDP", "CBD", "PM"),  # the corpus's own words
}
#: File names, run ids (ui-dev-<hash>), index versions and the planted payloads are data, not
#: interface text.
_DATA_TEXT = re.compile(
    r"\S+\.(?:txt|pdf|docx|html|md|jsonl?)\b|<[^>]*>|alert\(1\)|\bv-[\w-]+|\bui-[\w-]+"
)


def english_words(text: str) -> set[str]:
    """Words of two or more Latin letters in ``text``, less file names and the allow-list."""
    return set(re.findall(r"[A-Za-z]{2,}", _DATA_TEXT.sub(" ", text))) - ENGLISH_ALLOWED


def page_text(page) -> str:
    """All the page's visible text, footer included (ui/web.py shows none: its links are
    English), plus the tooltips and placeholders a user reads too. (Not aria-labels: gradio
    writes its own in English for screen readers, and they are not shown.)"""
    extra = page.evaluate(
        """() => [...document.querySelectorAll('[title], [placeholder]')]
            .filter(e => e.offsetParent !== null)
            .map(e => [e.title, e.placeholder || ''].join(' '))
            .join(' ')"""
    )
    return page.locator("body").inner_text() + " " + (extra or "")


def english_on(page, attempts: int = 10) -> set[str]:
    """English words on the page. A status line can show gradio's fallback "Loading" for a
    moment while its Chinese strings load: English must not *stay*, so look a few times."""
    found: set[str] = set()
    for _ in range(attempts):
        page.wait_for_timeout(500)
        found = english_words(page_text(page))
        if not found:
            break
    return found


def test_every_tab_speaks_chinese_to_an_english_browser(browser, base_url: str) -> None:
    """With the browser set to English, no tab shows an English word: gradio's own strings
    (Drop File Here, toast titles) follow the page's language, and a too-long question is
    refused in Chinese and stays in the textbox."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        page.goto(base_url)
        page.wait_for_selector("#pq-question textarea")
        question = "问" * 5000
        page.locator("#pq-question textarea").fill(question)
        page.get_by_role("button", name="发送").click()
        toast = page.locator(".toast-body").first
        toast.wait_for()
        assert "问题过长（5000 字" in toast.inner_text()
        assert not english_words(toast.inner_text())
        sync_api.expect(page.locator("#pq-question textarea")).to_have_value(question)
        page.locator("#pq-question textarea").fill("")
        ask(page)  # an answer, with its citation buttons
        found = {}
        for tab in ("问答", "检索", "文档", "评测"):
            page.get_by_role("tab", name=tab).click()
            found[tab] = english_on(page)
        assert page.locator("footer a").count() == 0  # no "Use via API", "Built with Gradio"

        # 检索 with results; 评测 with the upload box ("Drop File Here"), a loaded set, a
        # mistake in the form.
        search_for(page, "人才公寓")
        found["检索结果"] = english_on(page)
        page.get_by_role("tab", name="评测").click()
        page.locator("#pq-review-source").get_by_label("上传金标文件（.jsonl）").check()
        page.locator("#pq-review-upload").wait_for()
        found["上传"] = english_on(page)
        page.locator("#pq-review-source").get_by_label("内置开发集（eval/gold/dev.jsonl）").check()
        page.locator("#pq-review-load").click()
        review_position(page, "第 1 / 40 题")
        page.locator("#pq-review-save").click()
        page.locator("#pq-review-form-line .pq-line-error").wait_for()
        found["评测中"] = english_on(page)
        assert found == {tab: set() for tab in found}
    finally:
        context.close()
