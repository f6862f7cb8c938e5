"""Comparison answers state the gap of two quoted figures when the question asks for it."""

from __future__ import annotations

from decimal import Decimal

from planqa.rag.arithmetic import Figure, difference_line, figure_beside


def test_the_figure_beside_the_indicator_is_taken() -> None:
    text = "2020 年,全区实现地区生产总值 653 亿元,人均地区生产总值 7.39 万元;"
    assert figure_beside("乙区", text, ("生产总值",)) == Figure(
        "乙区", Decimal("653"), "亿元", "653亿元"
    )
    assert figure_beside("乙区", "森林覆盖率达53.4%", ("生产总值",)) is None


def test_a_gap_in_one_unit_is_stated_with_both_figures_cited() -> None:
    first = figure_beside("甲区", "完成地区生产总值743.4亿元", ("生产总值",))
    second = figure_beside("乙区", "实现地区生产总值 653 亿元", ("生产总值",))
    assert first and second
    line = difference_line("两区的地区生产总值相差多少亿元？", [(first, 1), (second, 2)])
    assert line == "两者相差90.4亿元（甲区743.4亿元[1]，乙区653亿元[2]）"


def test_shares_differ_in_percentage_points() -> None:
    first = figure_beside("甲省", "森林覆盖率达53.4%", ("森林覆盖率",))
    second = figure_beside("乙省", "森林覆盖率达到22%", ("森林覆盖率",))
    assert first and second
    line = difference_line("甲省的森林覆盖率比乙省高出多少？", [(first, 1), (second, 2)])
    assert line is not None and line.startswith("两者相差31.4个百分点")


def test_nothing_is_computed_across_units_or_without_the_question_asking() -> None:
    money = figure_beside("甲区", "地区生产总值743.4亿元", ("生产总值",))
    people = figure_beside("乙区", "城镇新增就业18万人", ("就业",))
    assert money and people
    assert difference_line("相差多少？", [(money, 1), (people, 2)]) is None
    assert difference_line("哪个更高？", [(money, 1), (money, 2)]) is None
    assert difference_line("相差多少？", [(money, 1), None]) is None
