"""The web UI's handlers and HTML, without a server: escaping, chat turns, search, export, serve.

Uses the hash-embedder index (fast); what the browser actually shows is in test_browser.py.
"""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from html_checks import start_tags

from planqa.corpus.chunking import Chunk
from planqa.corpus.documents import Document, DocumentMeta
from planqa.corpus.errors import InputError
from planqa.corpus.settings import Settings
from planqa.index.search import Hit
from planqa.rag.answer import NOT_FOUND, Answer, Citation
from planqa.rag.pipeline import Pipeline
from planqa.ui import render, render_documents, render_search
from planqa.ui.app import INTERNAL_ERROR, WebHandlers
from planqa.ui.export import EXPORT_COLUMNS, TEXT_COLUMN, export_name, write_csv, write_xlsx
from planqa.ui.precedents import find_precedents
from planqa.ui.tab_ask import ChatSession
from planqa.ui.web import build_app, check_bind, is_loopback, login_from_env, serve

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS = f"规划{XSS_SCRIPT}建设{XSS_IMG}产业园"
#: Every tag ui.render may emit; anything else in the output came from data.
OUR_TAGS = {
    "div",
    "span",
    "sup",
    "mark",
    "details",
    "summary",
    "a",
    "br",
    "ul",
    "li",
    "section",
    "h3",
    "b",
    "nav",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
OUR_ATTRIBUTES = {"class", "id", "href", "target", "rel", "data-pos", "title"}


def assert_inert(markup: str) -> None:
    """Only our own tags and attributes: the XSS strings are text, not elements."""
    for tag, attrs in start_tags(markup):
        assert tag in OUR_TAGS, f"unexpected <{tag}> in output"
        for name, value in attrs:
            assert name in OUR_ATTRIBUTES, f"unexpected attribute {name}={value!r} on <{tag}>"
            assert not (value or "").lower().startswith("javascript:")
    assert "<script" not in markup and "<img" not in markup


def fake_hit(text: str, *, doc: str = "x.txt", start: int = 100, chapter: str = "一、总体") -> Hit:
    chunk = Chunk(
        id="c1",
        doc=doc,
        region=f"测试区{XSS_IMG}",
        title=f"测试规划{XSS_SCRIPT}",
        chapter=f"{chapter} > (一){XSS_IMG}",
        start=start,
        end=start + len(text),
        text=text,
    )
    return Hit(chunk, 0.5, "hybrid", 0.8, 12.0)


def fake_answer(text: str, hit: Hit, **changes: Any) -> Answer:
    chunk = hit.chunk
    quote = (chunk.start + 2, chunk.start + 10)
    citation = Citation.from_hit(1, hit, quote)
    values: dict[str, Any] = dict(
        question=XSS,
        answer=text,
        abstained=False,
        citations=(citation,),
        retrieved=(hit,),
        mode="extractive",
    )
    values.update(changes)
    return Answer(**values)


def last_reply(messages: list[dict[str, str]]) -> str:
    assert messages[-1]["role"] == "assistant"
    return messages[-1]["content"]


def run_turn(handlers: WebHandlers, question: str, session: ChatSession | None = None, **kw):
    steps = list(
        handlers.chat(question, kw.get("mode", "extractive"), kw.get("region", ""), session)
    )
    messages, session, textbox = steps[-1]
    assert textbox == ""
    return messages, session


# --------------------------------------------------------------------------- the app


def test_build_app_exposes_only_ask(pipeline: Pipeline) -> None:
    app = build_app(pipeline)
    assert isinstance(app, gr.Blocks)
    named = app.get_api_info()["named_endpoints"]
    assert list(named) == ["/ask"]
    parameters = [p["parameter_name"] for p in named["/ask"]["parameters"]]
    assert parameters == ["question", "region", "mode"]


def test_mode_switch_only_when_llm_configured(pipeline: Pipeline) -> None:
    app = build_app(pipeline)
    radios = [b for b in app.blocks.values() if isinstance(b, gr.Radio) and b.label == "回答方式"]
    assert len(radios) == 1 and radios[0].visible is False


# --------------------------------------------------------------------------- escaping


def test_answer_html_escapes_answer_citation_and_metadata() -> None:
    hit = fake_hit(f"第一句。{XSS}。第三句。")
    markup = render.answer_html(fake_answer(f"答案{XSS_IMG}在此[1]。", hit, notice=XSS_SCRIPT))
    assert_inert(markup)
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    assert '<sup class="pq-ref">[1]</sup>' in markup
    assert '<mark class="pq-quote">' in markup
    assert "\n" not in markup  # one Markdown HTML block


def test_refusal_shows_not_found_and_closest_passages() -> None:
    hit = fake_hit(f"相关段落{XSS}")
    answer = fake_answer(NOT_FOUND, hit, abstained=True, citations=())
    markup = render.answer_html(answer)
    assert_inert(markup)
    assert NOT_FOUND in markup and "最接近的段落" in markup and "参考1" in markup
    # Each closed reference shows its chapter and first line, so two of one document differ.
    glimpse = markup.split('<span class="pq-glimpse">', 1)[1].split("</span>", 1)[0]
    assert glimpse.startswith(render.esc(render.chapter_path(hit.chunk.chapter)))
    assert "相关段落" in glimpse


def test_question_error_and_draft_are_escaped() -> None:
    for markup in (
        render.question_html(XSS),
        render.error_html(XSS),
        render.draft_html(XSS + "\n\n第二段"),
    ):
        assert_inert(markup)
        assert "\n" not in markup


def test_highlight_handles_overlapping_spans() -> None:
    text = "<b>一、总体</b>\n正文&内容"
    spans = [
        render.Span(10, 20, "span", "pq-h"),
        render.Span(15, 25, "span", "pq-focus"),
        render.Span(17, 19, "mark", "pq-quote"),
        render.Span(15, 15, anchor="pq-focus-anchor"),
    ]
    markup = render.highlight(text, 10, spans)
    assert_inert(markup)
    assert markup.count("<span") == markup.count("</span>")
    assert '<span id="pq-focus-anchor" class="pq-anchor"></span>' in markup
    # Without our tags, what is left is exactly the escaped text.
    assert re.sub(r"<[^>]*>", "", markup) == html.escape(text)


def test_viewer_marks_passage_and_escapes_document() -> None:
    text = f"一、总体要求\n第一句。{XSS}。\n二、重点任务\n建设产业园。"
    document = Document(DocumentMeta(file="x.txt", region=XSS_IMG, title=XSS_SCRIPT), text)
    from planqa.corpus.structure import parse_structure

    headings = parse_structure(text).headings
    start = text.index("第一句")
    focus = render_documents.Focus(start, start + 20, start + 4, start + 10)
    viewer = render_documents.document_viewer_html(document, headings, focus)
    tree = render_documents.document_tree_html(headings, focus)
    for markup in (viewer, tree):
        assert_inert(markup)
    assert 'id="pq-focus-anchor"' in viewer and '<mark class="pq-quote">' in viewer
    assert f'id="pq-pos-{headings[0].start}"' in viewer
    assert f'data-pos="{headings[0].start}"' in tree and "pq-current" in tree


# --------------------------------------------------------------------------- 问答


def test_chat_answers_with_citations_and_keeps_context(handlers: WebHandlers) -> None:
    messages, session = run_turn(handlers, "哪个区规划了集成电路测试产业园？")
    reply = last_reply(messages)
    assert "南通" in reply and 'class="pq-cite"' in reply and "planqa_doc=" in reply
    assert_inert(reply)
    assert session.conversation.previous is not None and len(session.conversation.turns) == 1

    messages, session = run_turn(handlers, "那它的GDP目标呢？", session)
    assert len(messages) == 4 and len(session.conversation.turns) == 2

    messages, session = handlers.clear_chat(session)
    assert messages == [] and session.conversation.previous is None and not session.messages


def test_chat_question_with_markup_is_inert(handlers: WebHandlers) -> None:
    messages, _ = run_turn(handlers, f"{XSS} 集成电路测试产业园在哪里？")
    for message in messages:
        assert_inert(message["content"])
    assert "&lt;script&gt;" in messages[0]["content"]


def test_chat_refusal_state(handlers: WebHandlers) -> None:
    messages, _ = run_turn(handlers, "火星基地的液氧储量规划是多少吨？")
    reply = last_reply(messages)
    assert NOT_FOUND in reply and "最接近的段落" in reply


def test_chat_user_error_becomes_a_message(handlers: WebHandlers) -> None:
    messages, _ = run_turn(handlers, "集成电路测试产业园在哪里？", region="不存在的地区")
    reply = last_reply(messages)
    # Changed for issue 19: the error is shown in Chinese.
    assert 'class="pq-error"' in reply and "没有名为「不存在的地区」的地区" in reply


def test_chat_unexpected_error_is_contained(
    handlers: WebHandlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(handlers.pipeline, "ask", boom)
    messages, _ = run_turn(handlers, "集成电路测试产业园在哪里？")
    reply = last_reply(messages)
    assert render.esc(INTERNAL_ERROR) in reply and "secret" not in reply


def test_empty_question_changes_nothing(handlers: WebHandlers) -> None:
    with pytest.warns(UserWarning):
        messages, session = run_turn(handlers, "   ")
    assert messages == [] and session.conversation.previous is None


def test_llm_mode_streams_a_draft_then_the_verified_answer(hash_index_settings: Settings) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    reply = "南通市经济技术开发区依托国家集成电路测试产业园，大力发展集成电路测试。[1]"
    pipeline = Pipeline.open(hash_index_settings, chat_model=FakeListChatModel(responses=[reply]))
    assert pipeline.llm_configured
    handlers = WebHandlers(pipeline)
    steps = list(handlers.chat("哪个区规划了集成电路测试产业园？", "llm", "", None))
    contents = [last_reply(messages) for messages, _, _ in steps]
    assert any("pq-draft-note" in c for c in contents)
    assert "pq-cite" in contents[-1] and "LLM" in contents[-1]
    session = steps[-1][1]
    assert session.conversation.turns[-1].mode == "llm"


def test_api_ask_returns_text_and_citations(handlers: WebHandlers) -> None:
    text, data = handlers.api_ask("哪个区规划了集成电路测试产业园？")
    assert "南通" in text and data["citations"] and data["answer"] == text
    assert {"doc", "region", "title", "chapter", "quote_start"} <= set(data["citations"][0])
    with pytest.raises(gr.Error):
        handlers.api_ask("  ")
    with pytest.raises(gr.Error, match="unknown mode"):
        handlers.api_ask("集成电路", mode="magic")


# --------------------------------------------------------------------------- 检索 and export


def read_export_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """The ``#`` header lines and the table rows of an exported CSV."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        lines = handle.read().splitlines()
    comments = [line for line in lines if line.startswith("# ")]
    rows = list(csv.reader([line for line in lines if not line.startswith("# ")]))
    return comments, rows


def test_search_lists_only_matching_passages_and_exports_them(handlers: WebHandlers) -> None:
    # Changed for issue 19: the count is the passages containing the terms, not the padded k.
    summary, markup, csv_update, xlsx_update = handlers.search(
        "集成电路 测试", 20, "", "", "", "hybrid"
    )
    result = find_precedents(handlers.searcher, "集成电路 测试", limit=20)
    n = len(result.matches)
    assert 0 < n < 20
    assert all(
        "集成电路" in p.hit.chunk.text and "测试" in p.hit.chunk.text for p in result.matches
    )
    assert summary.startswith(f"共 {n} 条段落")
    assert_inert(markup)
    groups = render_search.group_hits(p.hit for p in result.matches)
    assert markup.count('class="pq-hit"') == n and markup.count('class="pq-group"') == len(groups)
    assert markup.count('<mark class="pq-term">') >= 2 * n

    csv_path = Path(csv_update["value"])
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel needs the BOM
    assert csv_path.name.startswith("planqa-检索-集成电路_测试-")
    comments, rows = read_export_csv(csv_path)
    assert "# 检索词：集成电路 测试" in comments
    assert any(c.startswith("# 索引版本：") for c in comments)
    assert any(c == f"# 包含检索词的段落：{n}" for c in comments)
    assert rows[0] == EXPORT_COLUMNS and len(rows) == n + 1
    assert [r[4] for r in rows[1:]] == [p.hit.chunk.doc for p in result.matches]
    assert rows[1][TEXT_COLUMN] == result.matches[0].hit.chunk.text
    columns = {name: i for i, name in enumerate(EXPORT_COLUMNS)}
    assert rows[1][columns["期间"]] and rows[1][columns["类型"]] and rows[1][columns["文件日期"]]

    from openpyxl import load_workbook

    workbook = load_workbook(xlsx_update["value"])
    assert workbook.sheetnames == ["检索条件", "检索结果"]
    header = dict(workbook["检索条件"].iter_rows(values_only=True))
    assert header["检索词"] == "集成电路 测试" and header["包含检索词的段落"] == str(n)
    values = list(workbook["检索结果"].iter_rows(values_only=True))
    assert list(values[0]) == EXPORT_COLUMNS and len(values) == n + 1
    assert values[1][TEXT_COLUMN] == result.matches[0].hit.chunk.text and values[1][0] == 1


def test_search_with_related_passages_exports_what_is_shown(handlers: WebHandlers) -> None:
    summary, markup, csv_update, _ = handlers.search(
        "集成电路 测试", 20, "", "", "", "hybrid", True, "region"
    )
    n = len(find_precedents(handlers.searcher, "集成电路 测试").matches)
    assert summary.startswith(f"共 {n} 条段落") and "另列出 20 条相关段落" in summary
    assert markup.count('class="pq-hit"') == n + 20 and "相关度：低" in markup
    _, rows = read_export_csv(Path(csv_update["value"]))
    assert len(rows) == n + 21 and rows[-1][1] == "低"


def test_export_name_keeps_safe_characters() -> None:
    name = export_name('人才/公寓 <"..\\x">' + "很" * 80)
    assert name.startswith("planqa-检索-人才_公寓_x_很")
    assert "/" not in name and "\\" not in name and "." not in name and '"' not in name
    assert len(name) < 80


def test_search_filters_by_region_document_and_chapter(handlers: WebHandlers) -> None:
    region = "南通市经济技术开发区"
    _, _, csv_update, _ = handlers.search("产业", 50, region, "", "产业", "hybrid")
    comments, rows = read_export_csv(Path(csv_update["value"]))
    assert f"# 地区：{region}" in comments and "# 章节关键词：产业" in comments
    table = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert table and all(r["地区"] == region and "产业" in r["章节"] for r in table)
    assert all("产业" in r["段落文本"] for r in table)
    choices = handlers.documents_for_region(region)["choices"]
    assert [value for _, value in choices] == ["", "000_7b8cb340e9bca2f6.txt"]


def test_search_without_results_hides_downloads(handlers: WebHandlers) -> None:
    summary, markup, csv_update, xlsx_update = handlers.search(
        "集成电路", 10, "", "", "没有这个章节", "hybrid"
    )
    assert summary.startswith("没有段落包含检索词") and "没有段落包含这些检索词" in markup
    assert csv_update["visible"] is False and xlsx_update["visible"] is False


def test_search_user_error_is_shown(handlers: WebHandlers) -> None:
    # Changed for issue 19: the page shows the core's errors in Chinese.
    with pytest.raises(gr.Error, match="请输入问题或关键词"):
        handlers.search("   ", 10, "", "", "", "hybrid")
    with pytest.raises(gr.Error, match=r"问题过长（5000 字，上限 \d+ 字），请缩短后重试"):
        handlers.search("测" * 5000, 10, "", "", "", "hybrid")
    with pytest.raises(gr.Error, match="没有名为「火星」的地区"):
        handlers.search("产业", 10, "火星", "", "", "hybrid")


def test_core_errors_become_chinese_by_class_and_case() -> None:
    from planqa.corpus.errors import DocumentError, IndexStoreError, ModelError
    from planqa.ui.messages import user_message

    long = InputError(
        "the query has 5000 characters, over the limit of 2000; shorten it or set "
        "PLANQA_MAX_QUERY_CHARS"
    )
    assert user_message(long) == "问题过长（5000 字，上限 2000 字），请缩短后重试。"
    assert "索引" in user_message(IndexStoreError("no index at /srv/x; run planqa index"))
    assert "模型" in user_message(ModelError("model BAAI/bge cannot be loaded"))
    assert "文件" in user_message(DocumentError("x.pdf is binary"))
    for exc in (InputError("--k must be positive"), IndexStoreError("set PLANQA_INDEX_DIR")):
        assert not re.search(r"[A-Za-z]{2,}", user_message(exc))


def test_a_too_long_question_stays_in_the_textbox(handlers: WebHandlers) -> None:
    question = "南通" * 2500
    messages, _, textbox = list(handlers.chat(question, "extractive", "", None))[-1]
    assert textbox == question and messages == []


def test_export_neutralises_formulas_and_keeps_text(tmp_path: Path) -> None:
    hits = [fake_hit('=HYPERLINK("http://x")\x01' + XSS), fake_hit("@SUM(A1)", start=900)]
    with write_csv(hits, tmp_path / "r.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[1][TEXT_COLUMN].startswith("'=HYPERLINK") and rows[2][TEXT_COLUMN] == "'@SUM(A1)"
    from openpyxl import load_workbook

    sheet = load_workbook(write_xlsx(hits, tmp_path / "r.xlsx")).active
    cell = sheet.cell(row=2, column=TEXT_COLUMN + 1)
    assert cell.data_type == "s" and cell.value == '=HYPERLINK("http://x")' + XSS


# --------------------------------------------------------------------------- 文档


def test_open_passage_switches_tab_and_highlights(handlers: WebHandlers) -> None:
    doc = "000_7b8cb340e9bca2f6.txt"
    text = handlers.searcher.documents[doc].text
    start = text.index("依托国家集成电路测试产业园")
    params = dict(
        zip(render.OPEN_KEYS, [doc, start - 20, start + 60, start, start + 13], strict=True)
    )
    tabs, choice, tree, viewer = handlers.open_passage({k: str(v) for k, v in params.items()})
    assert tabs["selected"] == "docs" and choice["value"] == doc
    assert '<mark class="pq-quote">依托国家集成电路测试产业园</mark>' in viewer
    assert "pq-current" in tree


def test_open_passage_ignores_bad_links(handlers: WebHandlers) -> None:
    assert handlers.open_passage({"planqa_start": "1"}) == (gr.update(),) * 4
    with pytest.warns(UserWarning):
        result = handlers.open_passage({"planqa_doc": "nope.txt", "planqa_start": "x"})
    assert result == (gr.update(),) * 4


def test_open_href_round_trips() -> None:
    href = render.open_href("a&b.txt", 1, 2, 3, 4)
    assert href == (
        "?planqa_doc=a%26b.txt&amp;planqa_start=1&amp;planqa_end=2&amp;planqa_qs=3&amp;planqa_qe=4"
    )


# --------------------------------------------------------------------------- serve


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_refuses_remote_bind_without_allow_remote(hash_index_settings: Settings) -> None:
    with pytest.raises(InputError, match="--allow-remote"):
        serve(hash_index_settings, host="0.0.0.0", port=7999)
    check_bind("0.0.0.0", allow_remote=True)
    check_bind("127.0.0.1", allow_remote=False)


def test_login_needs_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLANQA_UI_USER", raising=False)
    monkeypatch.delenv("PLANQA_UI_PASSWORD", raising=False)
    assert login_from_env() is None
    monkeypatch.setenv("PLANQA_UI_USER", "planner")
    with pytest.raises(InputError, match="PLANQA_UI_PASSWORD"):
        login_from_env()
    monkeypatch.setenv("PLANQA_UI_PASSWORD", "s3cret")
    assert login_from_env() == ("planner", "s3cret")


def test_remote_bind_without_login_warns_and_passes_auth(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pipeline: Pipeline
) -> None:
    launched: list[dict[str, Any]] = []

    class FakeApp:
        def launch(self, **kwargs: Any) -> None:
            launched.append(kwargs)

    monkeypatch.setattr("planqa.ui.web.build_app", lambda pipeline, **options: FakeApp())
    monkeypatch.delenv("PLANQA_UI_USER", raising=False)
    monkeypatch.delenv("PLANQA_UI_PASSWORD", raising=False)
    serve(pipeline.settings, host="0.0.0.0", port=7999, allow_remote=True, pipeline=pipeline)
    assert "without a login" in capsys.readouterr().err
    assert launched[-1]["server_name"] == "0.0.0.0" and launched[-1]["auth"] is None

    monkeypatch.setenv("PLANQA_UI_USER", "planner")
    monkeypatch.setenv("PLANQA_UI_PASSWORD", "s3cret")
    serve(pipeline.settings, host="0.0.0.0", port=7999, allow_remote=True, pipeline=pipeline)
    assert "without a login" not in capsys.readouterr().err
    assert launched[-1]["auth"] == [("planner", "s3cret")]


def test_an_admin_login_is_the_only_writer(
    monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline
) -> None:
    launched: list[dict[str, Any]] = []
    built: list[dict[str, Any]] = []

    class FakeApp:
        def launch(self, **kwargs: Any) -> None:
            launched.append(kwargs)

    def fake_build(pipeline: Any, **options: Any) -> FakeApp:
        built.append(options)
        return FakeApp()

    monkeypatch.setattr("planqa.ui.web.build_app", fake_build)
    monkeypatch.setenv("PLANQA_UI_USER", "planner")
    monkeypatch.setenv("PLANQA_UI_PASSWORD", "s3cret")
    monkeypatch.setenv("PLANQA_UI_ADMIN_USER", "chief")
    monkeypatch.delenv("PLANQA_UI_ADMIN_PASSWORD", raising=False)
    with pytest.raises(InputError, match="PLANQA_UI_ADMIN_PASSWORD"):
        serve(pipeline.settings, port=7999, pipeline=pipeline)
    monkeypatch.setenv("PLANQA_UI_ADMIN_PASSWORD", "b0ss")
    serve(pipeline.settings, port=7999, pipeline=pipeline)
    assert launched[-1]["auth"] == [("planner", "s3cret"), ("chief", "b0ss")]
    assert built[-1]["writers"] == frozenset({"chief"})
    monkeypatch.setenv("PLANQA_UI_ADMIN_USER", "planner")
    with pytest.raises(InputError, match="different users"):
        serve(pipeline.settings, port=7999, pipeline=pipeline)


def test_the_documents_table_says_which_metadata_was_inferred_and_needs_checking() -> None:
    from planqa.corpus.documents import Document, DocumentMeta
    from planqa.ui.render_documents import DOCUMENT_COLUMNS, document_rows

    documents = {
        "a.txt": Document(DocumentMeta("a.txt", "甲区", "甲区规划"), "正文"),
        "b.txt": Document(DocumentMeta("b.txt", "乙省", "乙省报告", inferred=True), "正文"),
        "c.txt": Document(
            DocumentMeta("c.txt", "丙县", "", inferred=True, uncertain=("region", "period")),
            "正文",
        ),
    }
    rows = {row[0]: row for row in document_rows(documents)}
    column = DOCUMENT_COLUMNS.index("元数据")
    assert rows["甲区"][column] == "清单"
    assert rows["乙省"][column] == "自动识别"
    assert rows["丙县"][column] == "自动识别，待核实：地区、期间"
