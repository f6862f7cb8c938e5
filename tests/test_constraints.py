"""A question's years and places are hard constraints: a sentence about another year or region is
never quoted as the answer; the refusal says what is missing and cites what the documents say."""

from __future__ import annotations

import pytest

from planqa.corpus.documents import DocumentMeta
from planqa.corpus.settings import Settings
from planqa.index.builder import build_index
from planqa.rag.answer import NOT_FOUND
from planqa.rag.constraints import (
    SentenceContext,
    document_years,
    failed_constraints,
    five_year_plan_years,
    last_year_sentence,
    question_constraints,
    stated_years,
)
from planqa.rag.indicators import number_beside
from planqa.rag.pipeline import Pipeline

REPORT = """2026年湖南省政府工作报告

一、2025年工作回顾

2025年，全省地区生产总值增长5.2%，城镇新增就业72万人。

二、2026年工作安排

今年经济社会发展的主要预期目标是：
全省地区生产总值增长5.5%左右，城镇新增就业70万人以上。
到2030年，基本建成现代化产业体系。
全省连续三年成为全国唯一稻谷产量超过六百亿斤的省份。
"""

OPINION = """中共中央 国务院关于推进全国粮食安全工作的意见

一、总体要求

全国粮食综合生产能力稳步提升，全国各地要压实粮食安全责任。
"""

PLAN = """江西省国民经济和社会发展第十四个五年规划纲要

第一章 发展基础

“十三五”时期，全省森林覆盖率稳定在61%以上，建成国家生态文明试验区。

第二章 主要目标

到2025年，全省森林覆盖率稳定在63%以上，新增高速公路里程1000公里。
"""


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("constraints")
    folder = root / "docs"
    folder.mkdir()
    (folder / "hunan_2026.txt").write_text(REPORT, encoding="utf-8")
    (folder / "jiangxi_14th.txt").write_text(PLAN, encoding="utf-8")
    (folder / "national_opinion.txt").write_text(OPINION, encoding="utf-8")
    settings = Settings(embedding_model="hash", index_dir=root / "index")
    build_index(settings, [folder], progress=False)
    return Pipeline.open(settings)


def meta(region: str = "湖南省", period: str = "2026", kind: str = "政府工作报告") -> DocumentMeta:
    return DocumentMeta(file="x.txt", region=region, title="", kind=kind, period=period)


def test_periods_and_ranges_are_years() -> None:
    assert list(five_year_plan_years(14)) == [2021, 2022, 2023, 2024, 2025]
    assert list(five_year_plan_years(11)) == [2006, 2007, 2008, 2009, 2010]
    assert stated_years("“十三五”期间累计") == {2016, 2017, 2018, 2019, 2020}
    assert stated_years("2016—2020年") == {2016, 2017, 2018, 2019, 2020}
    assert stated_years("增长2025亿元") == set()  # a figure, not a year
    assert document_years(meta(period="2021—2025", kind="五年规划纲要")) == {2020, 2025}
    assert document_years(meta()) == {2025, 2026}


def test_a_sentence_inherits_the_year_of_its_paragraph_then_its_chapter_then_its_document() -> None:
    constraints = question_constraints("湖南省2030年地区生产总值增长多少", ("湖南省",), [meta()])
    bare = SentenceContext("地区生产总值增长5.5%左右", "", "", meta())
    assert failed_constraints(constraints, bare) == ("year",)
    stated = SentenceContext("到2030年地区生产总值翻一番", "", "", meta())
    assert failed_constraints(constraints, stated) == ()
    this_year = question_constraints("湖南省今年地区生产总值增长多少", ("湖南省",), [meta()])
    led = SentenceContext("地区生产总值增长5.5%左右", "今年主要预期目标是：", "", meta())
    assert failed_constraints(this_year, led) == ()
    headed = SentenceContext("地区生产总值增长5.2%", "", "一、2025年工作回顾", meta())
    assert failed_constraints(this_year, headed) == ("year",)


def test_a_place_only_counts_as_the_subject_of_a_question() -> None:
    documents = [meta(), meta(region="江西省", period="2021—2025", kind="五年规划纲要")]
    asked = question_constraints("浙江省今年地区生产总值增长目标是多少？", (), documents)
    assert asked.missing_places == ("浙江省",)
    topic = question_constraints("哪个省提出深化与香港合作？", (), documents)
    assert topic.missing_places == ()
    inside = question_constraints("长沙市今年有什么目标？", (), documents)
    assert inside.missing_places == ()  # 长沙市 is in 湖南省: its report may speak of it


def test_a_question_about_a_place_without_documents_is_refused_with_what_is_there(
    pipeline: Pipeline,
) -> None:
    answer = pipeline.ask("浙江省今年地区生产总值增长目标是多少？")
    assert answer.abstained
    assert answer.answer.startswith("未在现有文件中找到浙江省的相关内容")
    assert answer.details["constraint_failed"] == ["region"]
    assert answer.citations and "湖南省" in answer.answer


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("湖南省今年地区生产总值增长目标是多少？", "5.5%"),
        ("湖南省2025年地区生产总值增长了多少？", "5.2%"),
        ("江西省到2025年森林覆盖率要达到多少？", "63%"),
        ("江西省“十三五”时期森林覆盖率是多少？", "61%"),
    ],
)
def test_the_sentence_of_the_year_asked_answers(
    pipeline: Pipeline, question: str, expected: str
) -> None:
    answer = pipeline.ask(question)
    assert not answer.abstained, answer.answer
    assert expected in answer.answer


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        ("湖南省2027年地区生产总值增长目标是多少？", "2027年"),
        ("江西省2030年森林覆盖率要达到多少？", "2030年"),
    ],
)
def test_a_year_no_sentence_speaks_of_is_refused(
    pipeline: Pipeline, question: str, missing: str
) -> None:
    answer = pipeline.ask(question)
    assert answer.abstained
    assert answer.answer == NOT_FOUND or missing in answer.answer
    if answer.answer != NOT_FOUND:
        assert answer.details["constraint_failed"] == ["year"]


def test_the_region_named_is_the_only_one_that_answers(pipeline: Pipeline) -> None:
    """No 城镇新增就业 in 江西's plan: 湖南's figure is shown as what there is, never as 江西's."""
    answer = pipeline.ask("江西省城镇新增就业目标是多少万人？")
    assert answer.abstained
    assert answer.answer.startswith("未在现有文件中找到江西省的该项数据")
    assert "最接近的是——湖南省：" in answer.answer
    assert answer.details["constraint_failed"] == ["region"]


def test_a_number_answers_only_beside_the_indicator_asked() -> None:
    sentence = "到2025年，全省森林覆盖率稳定在63%以上，新增高速公路里程1000公里。"
    assert number_beside(sentence, ("高速公路",), ("公里",))
    assert not number_beside(sentence, ("铁路",), ("公里",))
    assert not number_beside(sentence, ("森林覆盖率",), ("公里",))  # its number is a share
    assert number_beside(sentence, ("森林覆盖率",), ())
    row = "18 城镇污水达标处理率 % 87.80 90.00 约束性"  # a table row: the unit is a column
    assert number_beside(row, ("处理率",), ("%", "％", "百分点"))
    assert number_beside("年產值突破120億元", ("产值",), ("元",))  # traditional, as written


def test_a_question_asked_by_its_indicator_is_answered(pipeline: Pipeline) -> None:
    answer = pipeline.ask("湖南省今年城镇新增就业目标是多少万人？")
    assert not answer.abstained and "70万人" in answer.answer


def test_a_zone_of_a_city_without_documents_is_a_missing_place() -> None:
    documents = [meta(), meta(region="江西省", period="2021—2025", kind="五年规划纲要")]
    asked = question_constraints("苏州工业园区今年新增多少家上市企业？", (), documents)
    assert asked.missing_places == ("苏州工业园区",)
    inside = question_constraints("南昌高新区今年新增多少家上市企业？", (), documents)
    assert inside.missing_places == ()  # 南昌 is in 江西省


def test_the_llm_reads_only_the_named_regions_passages_and_never_a_missing_place(
    pipeline: Pipeline,
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    model = FakeListChatModel(responses=["到2025年，全省森林覆盖率稳定在63%以上[1]。"])
    llm = Pipeline(pipeline.settings, pipeline.searcher, model)
    analysis, hits = llm.prepare("江西省森林覆盖率目标是多少？")
    assert hits and {h.chunk.region for h in llm.answerer("llm").passages(hits, analysis)} == {
        "江西省"
    }
    refused = llm.ask("浙江省今年地区生产总值增长目标是多少？", mode="llm")
    assert refused.abstained and "浙江省" in refused.answer
    assert model.i == 0  # the model was never asked


def test_a_national_document_does_not_claim_questions_that_say_quanguo(
    pipeline: Pipeline,
) -> None:
    """「全国唯一…的省份」 is about a province; 全国 there is a scale, not the national document."""
    assert pipeline.searcher.documents["national_opinion.txt"].meta.scope == "national"
    assert pipeline.searcher.mentioned_regions("全国唯一稻谷产量超过六百亿斤的省份") == []
    answer = pipeline.ask("哪个省是全国唯一稻谷产量超过六百亿斤的省份？")
    assert not answer.abstained and answer.answer.startswith("湖南省：")


def test_a_year_the_document_never_speaks_of_is_answered_by_none_of_its_sentences() -> None:
    opinion = meta(region="全国", period="", kind="意见")
    years = frozenset({2020, 2035, 2050})
    sentence = SentenceContext("乡村振兴取得重要进展", "", "一、总体要求", opinion, years)
    for asked, failed in (("2030年", ("year",)), ("2035年", ())):
        constraints = question_constraints(f"意见为{asked}设定了什么目标", (), [opinion])
        assert failed_constraints(constraints, sentence) == failed


def test_a_look_back_on_five_years_is_not_this_year() -> None:
    report = meta()  # a 2026 report
    constraints = question_constraints("湖南省2026年森林覆盖率提高到多少", ("湖南省",), [report])
    looked_back = SentenceContext("森林覆盖率达到22%", "——这五年生态屏障更加牢固。", "", report)
    assert failed_constraints(constraints, looked_back) == ("year",)
    compared = SentenceContext("低保补差水平不低于上年度水平", "", "", report)  # 上年 compares
    assert failed_constraints(constraints, compared) == ()


def test_the_year_comes_from_short_heading_lines_above_not_from_long_prose() -> None:
    from planqa.rag.constraints import inherited_lead, is_heading_line

    before = "附件1\n2026年省十件民生实事\n城乡低保补差水平不低于当地上年度水平。"
    assert last_year_sentence(inherited_lead(before)) == "2026年省十件民生实事"
    text = "2026年省十件民生实事\n18 城镇污水达标处理率 % 87.80 90.00 约束性\n"
    assert is_heading_line(text, 0, len("2026年省十件民生实事"))
    row = text.index("18")
    assert not is_heading_line(text, row, text.index("\n", row))  # a table row keeps figures


def test_a_shortened_name_finds_its_figure_spelled_out() -> None:
    sentence = "五年间，高新区累计引进了5名诺贝尔奖得主，培育了17名国家重大人才工程入选者。"
    people = ("人", "位", "名")
    assert number_beside(sentence, (), people, abbreviations=("诺奖",))
    assert not number_beside(sentence, (), people, abbreviations=("院士",))


def test_visits_are_not_people() -> None:
    assert not number_beside("开展职业技能培训超30万人次", ("培训",), ("人", "位", "名"))
    assert number_beside("城镇新增就业110万人以上", ("就业",), ("人", "位", "名"))


def test_a_question_about_a_whole_period_is_not_answered_by_one_of_its_years() -> None:
    report = meta()  # a 2026 report: its plan for this year is one year of 十五五
    constraints = question_constraints(
        "湖南省“十五五”期间城镇新增就业累计目标是多少万人", ("湖南省",), [report]
    )
    assert constraints.whole_period
    this_year = SentenceContext("城镇新增就业70万人以上", "今年主要预期目标是：", "", report)
    assert failed_constraints(constraints, this_year) == ("year",)
    period = SentenceContext("“十五五”时期城镇新增就业350万人", "", "", report)
    assert failed_constraints(constraints, period) == ()
    target_year = SentenceContext("到2030年城镇新增就业累计350万人", "", "", report)
    assert failed_constraints(constraints, target_year) == ()
    one_year = question_constraints("湖南省“十五五”开局之年的就业目标", ("湖南省",), [report])
    assert not one_year.whole_period


def test_a_document_named_by_its_title_is_the_only_one_that_answers() -> None:
    opinion = DocumentMeta("opinion.txt", "全国", "中共中央 国务院关于推进全国粮食安全工作的意见")
    reports = [
        DocumentMeta("hunan.txt", "湖南省", "2026年湖南省政府工作报告"),
        DocumentMeta("jiangxi.txt", "江西省", "2026年江西省政府工作报告"),
    ]
    documents = [opinion, *reports]
    for question in ("粮食安全工作意见提出的目标是什么", "关于推进全国粮食安全工作的意见说了什么"):
        assert question_constraints(question, (), documents).documents == ("opinion.txt",)
    # 「政府工作」 is in every report's title: it names none of them.
    assert question_constraints("政府工作报告提出的目标是什么", (), documents).documents == ()
    assert question_constraints("粮食安全工作有哪些意见", (), documents).documents == ()
    named = question_constraints("粮食安全工作意见提出的目标", (), documents)
    elsewhere = SentenceContext("粮食产量稳定在600亿斤", "", "", reports[0])
    assert failed_constraints(named, elsewhere) == ("document",)
    assert failed_constraints(named, SentenceContext("粮食安全", "", "", opinion)) == ()


def test_the_unit_asked_is_not_an_indicator_word() -> None:
    from planqa.rag.indicators import indicator_words

    idf = {"城镇": 2.0, "就业": 2.5, "万人": 3.0, "目标": 0.5}.get
    words = indicator_words(("城镇", "就业", "万人", "目标"), lambda w: idf(w, 0.0), ("人",))
    assert "万人" not in words and "就业" in words
    # Without the unit word, 「19万人」 beside another indicator no longer passes for 就业.
    assert not number_beside("技工院校招生规模超19万人", words, ("人", "位", "名"))


def test_an_enumeration_keeps_its_subject_for_each_figure() -> None:
    sentence = "实现粮食播种面积3320万亩、产量1285万吨以上。"
    assert number_beside(sentence, ("粮食",), ("吨",))
    assert not number_beside("粮食播种面积3320万亩，生猪出栏3000万头", ("粮食",), ("头",))


def test_a_compound_name_finds_its_initialism() -> None:
    from planqa.rag.indicators import initialisms

    question = "今年要新认定多少家高新技术企业"
    short = initialisms(question, ("认定", "高新技术", "企业"), ("高新技术",))
    assert "高企" in short
    assert number_beside("确保新增高企25家、保有量突破80家", short, ("家",))
    assert initialisms(question, ("认定", "高新技术", "企业"), ("认定",)) == ()


def test_a_when_question_is_answered_by_a_sentence_that_states_a_year() -> None:
    from planqa.rag.indicators import number_fit
    from planqa.rag.question import YEAR_UNITS, answer_units

    assert answer_units("乡村全面振兴在哪一年实现？") == YEAR_UNITS
    assert answer_units("什么时候基本实现现代化？") == YEAR_UNITS
    assert number_fit("到2050年，乡村全面振兴，农业强、农村美、农民富全面实现。", YEAR_UNITS) == 2
    # 「两个一百年」 and 「五年」 are no year.
    assert number_fit("是实现“两个一百年”奋斗目标的必然要求", YEAR_UNITS) == 0
    assert number_fit("用五年时间基本建成", YEAR_UNITS) == 0


def test_a_when_question_quotes_the_year_not_the_framing(pipeline: Pipeline) -> None:
    answer = pipeline.ask("湖南省什么时候基本建成现代化产业体系？")
    assert not answer.abstained, answer.answer
    assert "到2030年" in answer.answer


def test_a_year_before_a_kind_word_names_no_document() -> None:
    plan = DocumentMeta("plan.txt", "某开发区", "某开发区2022年度工作计划")
    report = DocumentMeta("report.txt", "湖南省", "2026年湖南省政府工作报告")
    assert question_constraints("2022年计划新建几所中小学？", (), [plan, report]).documents == ()


def test_the_llm_reads_only_passages_of_the_year_asked(pipeline: Pipeline) -> None:
    """A question about 2018 in a corpus without it never reaches the model: the refusal names
    the year and cites what there is; a question about a year present reads its passages."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    model = FakeListChatModel(responses=["地区生产总值增长5.5%左右[1]。"])
    llm = Pipeline(pipeline.settings, pipeline.searcher, model)
    refused = llm.ask("湖南省2018年地区生产总值增长了多少？", mode="llm")
    assert refused.abstained and "2018年" in refused.answer
    assert refused.details["llm"] == {"skipped": "no passage in scope"}
    assert model.i == 0
    analysis, hits = llm.prepare("湖南省今年地区生产总值增长目标是多少？")
    passages = llm.answerer("llm").passages(hits, analysis)
    assert passages and all("2026年工作安排" in p.chunk.chapter for p in passages)
