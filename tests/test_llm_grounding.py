"""Number grounding that acts: a cited statement whose figure is not in its cited passage is not
presented as verified (issue 16, item 2).

LangChain's fake chat model stands in for the server, as in tests/test_llm.py. A statement with
an invented figure (达到800亿元[1] where passage 1 says 500亿元) leaves the answer text for
``uncited`` with a notice; with nothing grounded left, the extractive answer answers instead.
Figures are compared by value: 500亿 = 500亿元, 5.0 = 5, ５００ = 500, 1,000 = 1000, 百分之十 = 10%.
"""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FakeExtractive, make_hit
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from planqa.corpus.settings import Settings
from planqa.index.search import Hit
from planqa.rag.answer import NOT_FOUND
from planqa.rag.citations import verify_reply
from planqa.rag.grounding import chinese_number, missing_figures
from planqa.rag.llm import LLMAnswerer
from planqa.rag.question import QuestionAnalysis

PASSAGES = [
    (
        "010.txt",
        "某市",
        "某市数字经济发展规划",
        "第二章 发展目标",
        "到2025年，全市数字经济核心产业增加值达到500亿元，占地区生产总值比重达到10%。"
        "规模以上工业企业达到1000家。",
    ),
    (
        "011.txt",
        "某市",
        "某市集成电路产业园规划",
        "第三章 空间布局",
        "集成电路测试产业园规划面积3平方公里，入驻企业800家。",
    ),
    ("012.txt", "某县", "某县国土空间规划", "", "新增绿地面积五万亩，城镇化率提高百分之十。"),
]
NOTICE = "回答中的数字未能在引用段落中核实"


@pytest.fixture
def hits() -> list[Hit]:
    return [make_hit(n, *row) for n, row in enumerate(PASSAGES, start=1)]


def question(text: str = "某市数字经济核心产业增加值目标是多少？") -> QuestionAnalysis:
    return QuestionAnalysis(
        text=text,
        regions=("某市",),
        asks_region=False,
        asks_number=True,
        asks_list=False,
        compares=False,
        keywords=("数字经济",),
    )


def answerer(reply: str, fallback: FakeExtractive | None = None) -> LLMAnswerer:
    values: dict[str, Any] = dict(
        llm_provider="openai", llm_model="fake", llm_base_url="http://127.0.0.1:1/v1"
    )
    model = FakeListChatModel(responses=[reply])
    return LLMAnswerer(Settings(**values), model, fallback=fallback or FakeExtractive())


# --------------------------------------------------------------------------- the answerer acts


def test_an_invented_figure_alone_falls_back_to_extraction_with_a_notice(hits: list[Hit]) -> None:
    fallback = FakeExtractive()
    reply = "全市数字经济核心产业增加值到2025年达到800亿元[1]。"
    answer = answerer(reply, fallback).answer(question(), hits)
    assert fallback.calls == 1 and answer.mode == "extractive"
    assert answer.answer == "抽取式回答[1]" and "800" not in answer.answer
    assert answer.notice == f"{NOTICE}（800），已改用抽取式回答"
    info = answer.details["llm"]
    assert info["ungrounded_action"] == "extractive_fallback"
    assert info["ungrounded_numbers"] == {reply: ["800"]}
    assert info["raw_reply"] == reply


def test_a_mixed_reply_keeps_the_grounded_statement_and_moves_the_invented_one(
    hits: list[Hit],
) -> None:
    # 800 is in passage 2, but the statement cites passage 1: another passage grounds nothing.
    reply = "全市数字经济核心产业增加值达到800亿元[1]。集成电路测试产业园规划面积3平方公里[2]。"
    answer = answerer(reply).answer(question(), hits)
    assert answer.mode == "llm" and not answer.abstained
    assert answer.answer == "集成电路测试产业园规划面积3平方公里[1]。"
    assert answer.uncited == ("全市数字经济核心产业增加值达到800亿元[2]。",)
    # Kept statements are numbered first; the misquoted passage stays listed for checking.
    assert [(c.n, c.doc) for c in answer.citations] == [(1, "011.txt"), (2, "010.txt")]
    assert answer.notice is not None and answer.notice.startswith(f"{NOTICE}（800），1 条")
    info = answer.details["llm"]
    assert info["ungrounded_action"] == "moved_to_uncited"
    assert info["ungrounded_numbers"] == {"全市数字经济核心产业增加值达到800亿元[2]。": ["800"]}


def test_only_the_statement_with_the_invented_figure_leaves(hits: list[Hit]) -> None:
    reply = (
        "全市数字经济核心产业增加值达到500亿元[1]。\n"
        "规模以上工业企业达到1500家[1]。\n"
        "集成电路测试产业园规划面积3平方公里[2]。"
    )
    answer = answerer(reply).answer(question(), hits)
    assert answer.answer == (
        "全市数字经济核心产业增加值达到500亿元[1]。\n集成电路测试产业园规划面积3平方公里[2]。"
    )
    assert answer.uncited == ("规模以上工业企业达到1500家[1]。",)
    ungrounded = answer.details["llm"]["ungrounded_numbers"]
    assert ungrounded == {"规模以上工业企业达到1500家[1]。": ["1500"]}
    assert answer.notice and NOTICE in answer.notice and "1500" in answer.notice


def test_a_grounded_reply_is_untouched(hits: list[Hit]) -> None:
    reply = "全市数字经济核心产业增加值达到500亿[1]。"
    answer = answerer(reply).answer(question(), hits)
    assert answer.mode == "llm" and answer.answer == reply and answer.notice is None
    assert answer.uncited == () and [c.doc for c in answer.citations] == ["010.txt"]
    assert "ungrounded_action" not in answer.details["llm"]
    assert "ungrounded_numbers" not in answer.details["llm"]


def test_a_figure_from_the_question_is_not_grounded_by_the_question(hits: list[Hit]) -> None:
    asked = question("某市数字经济核心产业增加值目标是500亿元还是800亿元？")
    answer = answerer("某市数字经济核心产业增加值目标为800亿元[1]。").answer(asked, hits)
    assert answer.mode == "extractive" and NOTICE in (answer.notice or "")


def test_a_streamed_answer_is_grounded_too(hits: list[Hit]) -> None:
    reply = "增加值达到800亿元[1]。产业园规划面积3平方公里[2]。"
    stream = answerer(reply).stream(question(), hits)
    assert "".join(stream) == reply  # the draft is the raw reply; the final answer replaces it
    assert stream.answer.answer == "产业园规划面积3平方公里[1]。"
    assert stream.answer.uncited == ("增加值达到800亿元[2]。",)
    assert NOTICE in (stream.answer.notice or "")


def test_a_refusal_next_to_an_invented_figure_falls_back(hits: list[Hit]) -> None:
    reply = f"某市：增加值达到800亿元[1]\n某县：{NOT_FOUND}"
    answer = answerer(reply).answer(question(), hits)
    assert answer.mode == "extractive" and NOTICE in (answer.notice or "")
    assert answer.details["llm"]["partial_refusal"] is True


def test_list_numbers_and_passage_references_are_not_figures(hits: list[Hit]) -> None:
    reply = "1. 据段落1，增加值达到500亿元[1]。\n2. 产业园规划面积3平方公里[2]。"
    answer = answerer(reply).answer(question(), hits)
    assert answer.mode == "llm" and answer.notice is None and answer.uncited == ()


# --------------------------------------------------------------------------- comparing figures


@pytest.mark.parametrize(
    "statement",
    [
        "增加值达到500亿元[1]。",
        "增加值达到500亿[1]。",  # the unit is not the figure
        "增加值达到500.0亿元[1]。",
        "增加值达到５００亿元[1]。",  # full-width digits
        "增加值达到0.05万亿元[1]。",  # same value, other scale
        "占地区生产总值比重达到百分之十[1]。",
        "占比达到10.0％[1]。",
        "规模以上工业企业达到1,000家[1]。",
        "规模以上工业企业达到1，000家[1]。",
        "规模以上工业企业达到一千家[1]。",
        "到二〇二五年增加值达到500亿元[1]。",
        "新增绿地5万亩，城镇化率提高10%[3]。",  # the passage writes 五万亩 and 百分之十
        "某市规划[1]提出“十四五”期间推进数字经济一体化发展。",  # 十四五, 一体化: no figures
    ],
)
def test_grounded_figures_in_other_spellings_stay(hits: list[Hit], statement: str) -> None:
    verified = verify_reply(statement, hits, withhold_ungrounded=True)
    assert verified.ungrounded_numbers == {} and verified.withheld == ()
    answer = answerer(statement).answer(question(), hits)
    assert answer.mode == "llm" and answer.notice is None, statement


@pytest.mark.parametrize(
    ("statement", "missing"),
    [
        ("增加值达到800亿元[1]。", ["800"]),
        ("增加值达到８００亿元[1]。", ["８００"]),
        ("增加值达到八百亿元[1]。", ["八百亿"]),
        ("比重达到百分之二十[1]。", ["百分之二十"]),
        ("比重达到10.5%[1]。", ["10.5"]),
        ("规模以上工业企业达到1,500家[1]。", ["1,500"]),
        ("到2030年，增加值达到500亿元[1]。", ["2030"]),  # a year is a figure like any other
        ("增加值达到500亿元，年均增长15%[1]。", ["15"]),
    ],
)
def test_invented_figures_in_any_spelling_are_caught(
    hits: list[Hit], statement: str, missing: list[str]
) -> None:
    verified = verify_reply(statement, hits, withhold_ungrounded=True)
    assert verified.ungrounded_numbers == {statement: missing}
    assert verified.withheld == (statement,) and verified.text == "" and not verified.supported
    # Without withholding the statement stays (the report-only view verify_reply gave before).
    assert verify_reply(statement, hits).text == statement


def test_a_figure_is_looked_for_in_every_passage_the_statement_cites(hits: list[Hit]) -> None:
    verified = verify_reply("增加值500亿元，入驻企业800家[1][2]。", hits, withhold_ungrounded=True)
    assert verified.ungrounded_numbers == {} and verified.supported


def test_missing_figures_compares_values() -> None:
    passage = "实际利用外资累计32.5亿美元，年均增长百分之八，新建5G基站1,200个。"
    assert missing_figures("外资32.50亿美元，年均增长8%[1]", passage) == []
    assert missing_figures("新建5G基站1200个", passage) == []
    assert missing_figures("外资45亿美元，增长9%", passage) == ["45", "9"]


@pytest.mark.parametrize(
    ("run", "value"),
    [
        ("十", 10),
        ("三十", 30),
        ("一百零五", 105),
        ("两千", 2000),
        ("五万", 50000),
        ("三亿五千万", 350_000_000),
        ("五万亿", 5 * 10**12),
        ("二〇二五", 2025),
        ("十四五", None),
        ("万", None),
    ],
)
def test_chinese_numerals(run: str, value: int | None) -> None:
    assert chinese_number(run) == value
