"""Indicator-table rows are read with their header: the figures get their years and units, and
a question about a year the table does not have is refused instead of answered with its row."""

from __future__ import annotations

import pytest

from planqa.corpus.settings import Settings
from planqa.corpus.tables import header_of_row, labelled_row, labelled_table_row
from planqa.index.builder import build_index
from planqa.rag.pipeline import Pipeline

PLAN = """宁德市国民经济和社会发展第十三个五年规划纲要

第三章 主要目标

“十三五”时期宁德市主要规划指标

序号 指标名称 单位 2015年 2020年 属性 年增长%

一、经济发展

1 地区生产总值 亿元 1380.5 2100.0 预期性 8.5

2 港口货物吞吐量 万吨 3800 10000 预期性

二、生态环境

3 森林覆盖率 % 65.9 66.5 约束性

到2020年，全市建成一批特色小镇，城乡面貌明显改善。
"""


def row_start(text: str, row: str) -> int:
    return text.index(row)


def test_a_row_finds_its_header_over_group_lines() -> None:
    start = row_start(PLAN, "3 森林覆盖率")
    header = header_of_row(PLAN, start)
    assert header is not None
    assert header.years == {2015, 2020}
    assert PLAN[header.start : header.end] == "序号 指标名称 单位 2015年 2020年 属性 年增长%"
    assert header_of_row(PLAN, row_start(PLAN, "到2020年")) is None  # prose is no row


def test_a_row_reads_with_its_years_unit_and_attribute() -> None:
    start = row_start(PLAN, "1 地区生产总值")
    end = PLAN.index("\n", start)
    assert labelled_table_row(PLAN, start, end) == (
        "地区生产总值（亿元）：2015年 1380.5；2020年 2100.0（预期性）；年增长% 8.5"
    )
    header = header_of_row(PLAN, start)
    assert header is not None
    # An empty trailing cell, and a name with a space in it.
    assert labelled_row(header, "2 港口货物吞吐量 万吨 3800 10000 预期性") == (
        "港口货物吞吐量（万吨）：2015年 3800；2020年 10000（预期性）"
    )
    assert labelled_row(header, "4 单位 GDP能耗 吨标煤/万元 0.6 0.5 约束性 -3").startswith(
        "单位 GDP能耗（吨标煤/万元）：2015年 0.6；2020年 0.5"
    )
    assert labelled_table_row(PLAN, start, start + 4) is None  # part of a row is not a row


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("tables")
    (root / "docs").mkdir()
    (root / "docs" / "ningde_13th.txt").write_text(PLAN, encoding="utf-8")
    settings = Settings(embedding_model="hash", index_dir=root / "index")
    build_index(settings, [root / "docs"], progress=False)
    return Pipeline.open(settings)


def test_an_answer_quotes_the_row_with_its_header_and_cites_the_row(pipeline: Pipeline) -> None:
    answer = pipeline.ask("宁德市2020年森林覆盖率目标是多少？")
    assert not answer.abstained, answer.answer
    assert "森林覆盖率（%）：2015年 65.9；2020年 66.5（约束性）" in answer.answer
    citation = answer.citations[0]
    quoted = PLAN[citation.quote_start : citation.quote_end]
    assert quoted.strip() == "3 森林覆盖率 % 65.9 66.5 约束性"


def test_a_year_the_table_does_not_have_is_refused(pipeline: Pipeline) -> None:
    answer = pipeline.ask("宁德市2018年森林覆盖率是多少？")
    assert answer.abstained
    assert "2018年" in answer.answer and answer.details["constraint_failed"] == ["year"]
