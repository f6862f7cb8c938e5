"""Cited answers through the public API (hash embedder: fast, offline, deterministic)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planqa.corpus.chunking import Chunk
from planqa.corpus.settings import Settings
from planqa.index.search import Hit
from planqa.rag.answer import NOT_FOUND
from planqa.rag.langchain_retriever import PlanqaRetriever, as_langchain
from planqa.rag.pipeline import Conversation, Pipeline
from planqa.rag.question import AREA_UNITS, SHARE_UNITS, answer_units
from planqa.rag.retrieval import PassageRetriever
from planqa.ui.cli import app

ANSWER_KEYS = {
    "id",
    "question",
    "answer",
    "abstained",
    "citations",
    "retrieved",
    "mode",
    "latency_ms",
}
CITATION_KEYS = {"n", "doc", "region", "title", "chapter", "start", "end", "text"}


def test_answer_names_the_region_and_cites_exact_passages(pipeline: Pipeline) -> None:
    answer = pipeline.ask("哪个区规划了集成电路测试产业园？")
    assert not answer.abstained
    assert answer.citations and "[1]" in answer.answer
    assert "南通市经济技术开发区" in answer.answer
    documents = pipeline.searcher.documents
    for citation in answer.citations:
        text = documents[citation.doc].text
        assert text[citation.start : citation.end] == citation.text
        assert citation.start <= citation.quote_start < citation.quote_end <= citation.end
        assert f"[{citation.n}]" in answer.answer
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))


def test_json_contract(pipeline: Pipeline) -> None:
    data = pipeline.ask("海州区2020年人均地区生产总值是多少？", id="q1").to_dict()
    assert set(data) >= ANSWER_KEYS
    assert data["id"] == "q1" and data["mode"] == "extractive" and data["latency_ms"] > 0
    for citation in data["citations"]:
        assert set(citation) >= CITATION_KEYS
    for passage in data["retrieved"]:
        assert CITATION_KEYS - {"n"} | {"score"} <= set(passage)
    json.dumps(data, ensure_ascii=False)


def test_question_outside_the_corpus_is_refused_with_closest_passages(pipeline: Pipeline) -> None:
    answer = pipeline.ask("火星基地的液氧储量规划是多少吨？")
    assert answer.abstained and answer.answer == NOT_FOUND
    assert not answer.citations and answer.retrieved


def test_follow_up_inherits_the_region(pipeline: Pipeline) -> None:
    conversation = Conversation()
    pipeline.ask("海州区2020年人均地区生产总值是多少？", conversation=conversation)
    follow_up = pipeline.ask("那它的GDP目标呢？", conversation=conversation)
    assert "海州区" in follow_up.details["resolved_question"]
    assert all(h.chunk.doc == "001_609138391ce5f9ab.txt" for h in follow_up.retrieved[:3])
    conversation.clear()
    fresh = pipeline.ask("那它的GDP目标呢？", conversation=conversation)
    # Without the earlier turn there is no 它 to inherit: planqa asks which region is meant.
    assert fresh.abstained and fresh.details == {"needs_region": True}


def test_region_filter_applies_to_answers(pipeline: Pipeline) -> None:
    answer = pipeline.ask("科创项目", region="港开")
    assert {h.chunk.doc for h in answer.retrieved} == {"003_7f17e41e8ac2efc3.txt"}


def test_a_question_is_checked_once(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """The analysis hands search its SearchQuery: search does not validate the text again."""
    queries = pipeline.searcher.queries
    seen: list[str] = []
    validate = queries.validate
    monkeypatch.setattr(queries, "validate", lambda text: seen.append(text) or validate(text))
    analysis, hits = pipeline.prepare("南通开发区和海州区谁计划拥有的高新技术企业更多？")
    assert seen == ["南通开发区和海州区谁计划拥有的高新技术企业更多？"] and hits
    assert analysis.query.regions == ("南通市经济技术开发区", "连云港市海州区")


def test_langchain_retriever_returns_documents_with_metadata(pipeline: Pipeline) -> None:
    retriever = PlanqaRetriever(passages=PassageRetriever(pipeline.searcher, k=3))
    documents = retriever.invoke("集成电路测试产业园")
    assert len(documents) == 3
    for document in documents:
        assert {"doc", "region", "chapter", "start", "end", "score"} <= set(document.metadata)
        text = pipeline.searcher.documents[document.metadata["doc"]].text
        assert text[document.metadata["start"] : document.metadata["end"]] == document.page_content


def test_pipeline_and_langchain_read_the_same_retrieval(pipeline: Pipeline) -> None:
    question = "集成电路测试产业园"
    documents = as_langchain(pipeline.retriever).invoke(question, k=4)
    assert [d.id for d in documents] == [h.chunk.id for h in pipeline.retriever.hits(question, 4)]


@pytest.mark.parametrize(
    ("question", "units"),
    [
        ("请来了几位诺奖获得者？", ("人", "位", "名")),
        ("新增几家企业登陆资本市场？", ("家",)),
        ("多大比例的幼儿园由政府举办？", SHARE_UNITS),
        ("拿出多大面积的生态空间？", AREA_UNITS),
        ("实际利用外资累计多少？", ()),  # 亿美元 or 亿: the wording does not fix it
        ("一般公共预算收入要达到多少亿元？", ("元",)),  # the magnitude belongs to the number
        ("城镇新增就业多少万人？", ("人", "位", "名")),
        ("比上年提高几个百分点？", SHARE_UNITS),
        ("三大地标产业是哪几个？", ()),  # asks for members, not a count
        ("哪个区的增长率最高？", ()),
    ],
)
def test_answer_units_follow_the_wording(question: str, units: tuple[str, ...]) -> None:
    assert answer_units(question) == units


def test_a_number_in_the_asked_unit_beats_more_shared_words(pipeline: Pipeline) -> None:
    """The patent sentence shares 十二五 with the question; only the other one answers it."""
    text = (
        "“十二五”期间,全区有效发明专利从109件上升到544件。五年间,高新区累计引进了5名诺贝尔奖得主。"
    )
    chunk = Chunk("c0", "x.txt", "某高新区", "规划", "一、人才", 0, len(text), text)
    analysis = pipeline.analyzer.analyse("“十二五”期间请来了几位诺奖获得者？")
    hits = [Hit(chunk=chunk, score=1.0, retriever="t")]
    best = pipeline.extractive.score_sentences(analysis, hits)[0]
    assert text[best.start : best.end].endswith("引进了5名诺贝尔奖得主。")


@pytest.mark.parametrize(
    ("text", "answered"),
    [
        ("2022年计划新建中小学,推进教育优质均衡发展。", False),
        ("2022年计划新建中小学,推进教育优质均衡发展,新建中小学3所。", True),
    ],
)
def test_a_question_fixing_its_unit_needs_a_number_in_that_unit(
    pipeline: Pipeline, text: str, answered: bool
) -> None:
    """ "几所" is not answered by a sentence that shares every word but states no "N所"."""
    chunk = Chunk("c0", "x.txt", "某开发区", "工作计划", "一、教育", 0, len(text), text)
    analysis = pipeline.analyzer.analyse("2022年计划新建几所中小学？")
    assert analysis.asks_number and analysis.answer_units == ("所",)
    answer = pipeline.extractive.answer(analysis, [Hit(chunk=chunk, score=1.0, retriever="t")])
    assert answer.confidence >= pipeline.extractive.threshold
    assert answer.abstained is not answered
    assert ("3所" in answer.answer) is answered


def test_an_area_question_asks_for_a_number(pipeline: Pipeline) -> None:
    """ "多大面积" has no 多少/几, but its unit makes it a number question all the same."""
    assert pipeline.analyzer.analyse("计划拿出多大面积的生态空间？").asks_number


def test_cli_ask_single_and_batch(
    hash_index_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PLANQA_EMBEDDING_MODEL", "hash")
    monkeypatch.setenv("PLANQA_INDEX_DIR", str(hash_index_settings.index_dir))
    runner = CliRunner()
    single = runner.invoke(app, ["ask", "哪个区规划了集成电路测试产业园？"])
    assert (
        single.exit_code == 0 and "[1]" in single.stdout and "南通市经济技术开发区" in single.stdout
    )

    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"id": "a", "question": "港开全年招引科创项目多少个？", "answers": ["x"]}\n'
        "not json\n"
        '{"id": "c", "question": "海州区2020年人均地区生产总值是多少？"}\n',
        encoding="utf-8",
    )
    batch = runner.invoke(app, ["ask", "--questions", str(questions)])
    rows = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", None, "c"]
    assert "error" in rows[1] and "line 2" in rows[1]["error"]
    assert set(rows[0]) >= ANSWER_KEYS and set(rows[2]) >= ANSWER_KEYS
    assert batch.exit_code == 2 and "1 of 3" in batch.stderr

    neither = runner.invoke(app, ["ask"])
    assert neither.exit_code == 2 and "QUESTION" in neither.stderr


def test_a_follow_up_without_an_earlier_turn_asks_which_region(
    hash_index_settings: Settings,
) -> None:
    from planqa.rag.pipeline import Conversation

    pipeline = Pipeline.open(hash_index_settings)
    answer = pipeline.ask("那它的GDP目标呢？", conversation=Conversation())
    assert answer.abstained and answer.answer.startswith("请先说明是哪个地区")
    assert answer.details == {"needs_region": True} and not answer.citations
    # With an earlier turn, the same words are a follow-up about that turn's region.
    conversation = Conversation()
    pipeline.ask("海州区的地区生产总值目标是多少？", conversation=conversation)
    follow_up = pipeline.ask("那它的一般公共预算收入呢？", conversation=conversation)
    assert "请先说明" not in follow_up.answer


def test_a_region_filter_the_question_contradicts_is_ignored_and_said(
    hash_index_settings: Settings,
) -> None:
    pipeline = Pipeline.open(hash_index_settings)
    question = "海州区计划到2025年在运营的楼宇数量达到多少幢？"
    answer = pipeline.ask(question, region="江阴高新区")
    assert answer.notice and "已忽略地区筛选“江阴高新区”" in answer.notice
    assert {c.region for c in answer.citations} <= {"连云港市海州区"}
    kept = pipeline.ask(question, region="海州区")
    assert not (kept.notice or "").startswith("问题问的是")
