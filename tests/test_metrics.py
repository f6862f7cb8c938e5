"""Metric maths against hand-computed values, the overlap rule's edges, and answer normalisation."""

from __future__ import annotations

import doctest
import math

import pytest

import planqa.eval.metrics
from planqa.eval.metrics import (
    answer_correct,
    as_any_piece,
    first_full_rank,
    mean,
    mean_by_type,
    ndcg_at_k,
    needs_all_evidence,
    normalise_answer,
    passage_hits,
    percentile,
    recall_at_k,
    reciprocal_rank,
    required_overlap,
)

QUOTE = "确保到2025年,市级以上研发机构突破230家"  # 23 characters: a hit needs 12
SPAN = ("a.txt", 1000, 1000 + len(QUOTE))


def hits(doc: str, start: int, end: int, text: str = "…") -> bool:
    return passage_hits(doc, start, end, text, [SPAN], [("a.txt", QUOTE)])


# --------------------------------------------------------------------------- worked examples


def test_worked_example_three_questions() -> None:
    """Three questions, top-5 lists; values computed by hand.

    q1 hit at rank 1; q2 first hit at rank 3; q3 never hit.
    recall@1 = 1/3, recall@3 = 2/3, recall@5 = 2/3
    MRR = (1 + 1/3 + 0) / 3 = 4/9
    nDCG@5: q1 = 1, q2 = 1/log2(4) = 0.5, q3 = 0 -> mean 0.5
    """
    lists = [
        [{0}, set(), {0}, set(), set()],
        [set(), set(), {0}, set(), set()],
        [set(), set(), set(), set(), set()],
    ]
    assert mean(recall_at_k(c, 1, 1) for c in lists) == pytest.approx(1 / 3)
    assert mean(recall_at_k(c, 1, 3) for c in lists) == pytest.approx(2 / 3)
    assert mean(recall_at_k(c, 1, 5) for c in lists) == pytest.approx(2 / 3)
    assert mean(reciprocal_rank(c, 1) for c in lists) == pytest.approx(4 / 9)
    assert mean(ndcg_at_k(c, 1, 5) for c in lists) == pytest.approx(0.5)


def test_compare_needs_every_piece() -> None:
    coverage = [{1}, set(), {1}, {0}]  # piece 1 at rank 1, piece 0 only at rank 4
    assert first_full_rank(coverage, 2) == 4
    assert recall_at_k(coverage, 2, 3) == 0.0
    assert recall_at_k(coverage, 2, 4) == 1.0
    assert reciprocal_rank(coverage, 2) == pytest.approx(0.25)
    # nDCG gives partial credit: 1/log2(2) + 1/log2(5) over 1/log2(2) + 1/log2(3)
    expected = (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(coverage, 2, 10) == pytest.approx(expected)
    # with "any piece" the same list hits at rank 1
    assert first_full_rank(as_any_piece(coverage), 1) == 1
    assert needs_all_evidence("compare") and not needs_all_evidence("fact")


def test_repeated_evidence_does_not_push_ndcg_over_one() -> None:
    assert ndcg_at_k([{0}, {0}, {0}], 1, 3) == 1.0
    assert ndcg_at_k([{0, 1}], 2, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_empty_and_short_lists() -> None:
    assert first_full_rank([], 1) is None
    assert recall_at_k([], 1, 5) == 0.0
    assert reciprocal_rank([], 1) == 0.0
    assert ndcg_at_k([], 1, 10) == 0.0
    assert recall_at_k([{0}], 1, 10) == 1.0  # fewer passages than k


# --------------------------------------------------------------------------- overlap rule


def test_required_overlap_is_half_the_quote_capped_at_twenty() -> None:
    assert [required_overlap(n) for n in (1, 2, 3, 24, 39, 40, 41, 500)] == [
        1,
        1,
        2,
        12,
        20,
        20,
        20,
        20,
    ]


def test_overlap_edges() -> None:
    start, end = SPAN[1], SPAN[2]
    assert not hits("a.txt", 0, start)  # touching: shares no character
    assert not hits("a.txt", end, end + 500)
    assert hits("a.txt", 0, start + 12)  # 12 = ceil(23 / 2)
    assert not hits("a.txt", 0, start + 11)
    assert hits("a.txt", end - 12, end + 300)
    assert hits("a.txt", start + 5, start + 19)  # inside the quote, 14 chars
    assert not hits("b.txt", start, end, QUOTE)  # other document, even with the text


def test_containment_counts_without_offsets_and_ignores_spacing() -> None:
    spaced = "前文。确保到 2025 年,市级以上研发机构突破 230 家。"
    assert hits("a.txt", 0, 10, spaced)
    assert hits("a.txt", 0, 10, "确保到２０２５年，市级以上研发机构突破２３０家")
    assert not hits("a.txt", 0, 10, "确保到2025年,市级以上研发机构突破")


@pytest.mark.parametrize("length", [1, 2, 5, 24, 39, 40, 41, 100])
def test_a_quote_split_in_two_is_always_hit_by_one_side(length: int) -> None:
    spans, quotes = [("a.txt", 100, 100 + length)], [("a.txt", "q" * length)]
    for cut in range(101, 100 + length):
        left = passage_hits("a.txt", 0, cut, "", spans, quotes)
        right = passage_hits("a.txt", cut, 1000, "", spans, quotes)
        assert left or right, cut


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        ("累计32.5 亿美元", ["32.5亿美元"], True),
        ("约32.5亿美元", ["32.5 亿美元"], True),
        ("绿化覆盖率达35％以上", ["35%"], True),
        ("绿化覆盖率达35%以上", ["35％"], True),
        ("全角数字３２．５亿美元", ["32.5亿美元"], True),
        ("R＆D投入", ["r&d"], True),
        ("32亿美元", ["32.5亿美元"], False),
        ("文件中没有相关内容", [], False),
        ("任何回答", ["  "], False),  # a blank gold answer must not match everything
        ("海州区和海门区", ["港闸", "海门"], True),  # any one of the listed answers
    ],
)
def test_answer_correct(answer: str, gold: list[str], expected: bool) -> None:
    assert answer_correct(answer, gold) is expected


def test_normalise_answer_removes_all_whitespace() -> None:
    assert normalise_answer(" 7.39\u3000万元\n") == "7.39万元"


# --------------------------------------------------------------------------- aggregation


def test_aggregation_helpers() -> None:
    assert mean_by_type([("a", 1.0), ("b", 0.5), ("a", 0.0)]) == {"a": 0.5, "b": 0.5}
    assert math.isnan(mean([]))
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_docstring_examples() -> None:
    assert doctest.testmod(planqa.eval.metrics).failed == 0
