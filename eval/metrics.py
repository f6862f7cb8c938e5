"""Pure retrieval and answer metrics: plain values in, numbers out, each with a worked example.

Vocabulary. A gold item has one or more *evidence pieces* (a quote in a document). A retrieved
*passage* "covers" a piece when :func:`passage_hits` says so. A ranked list is described by its
*coverage*: for each rank (best first), the set of piece numbers that passage covers.

Which pieces a question needs: a ``compare`` item combines documents, so it needs **all** of its
pieces in the top k (finding one side of a comparison does not let anyone answer it); every other
type needs **any** one piece (its pieces are alternative places saying the same thing). With
that, the "first hit rank" of a question is the smallest rank at which the need is met, and
recall@k, reciprocal rank and nDCG@k all follow from the coverage lists below.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Collection, Iterable, Sequence

#: Question types whose every evidence piece must be retrieved (see the module docstring).
ALL_EVIDENCE_TYPES = frozenset({"compare"})
#: A passage overlapping a quote's span by this many characters hits it, however long the quote...
MIN_OVERLAP_CHARS = 20
#: ...and shorter quotes need this share of their length overlapped.
MIN_OVERLAP_SHARE = 0.5

Coverage = Sequence[Collection[int]]


# --------------------------------------------------------------------------- passage hits


def required_overlap(span_length: int) -> int:
    """Characters a passage must share with a quote span of ``span_length`` to hit it.

    ``min(20, ceil(50% of the span))``, at least 1. Half the quote means the passage carries the
    substance, not a stray boundary character; and when a chunk boundary cuts a quote in two, one
    side always holds at least half of it (or 20 characters of a long one), so a split quote is
    never unhittable.

    >>> required_overlap(10), required_overlap(41), required_overlap(200), required_overlap(1)
    (5, 20, 20, 1)
    """
    return max(1, min(MIN_OVERLAP_CHARS, math.ceil(MIN_OVERLAP_SHARE * span_length)))


def overlap_chars(start: int, end: int, other_start: int, other_end: int) -> int:
    """Length of the intersection of two half-open character ranges.

    >>> overlap_chars(0, 10, 5, 20), overlap_chars(0, 10, 10, 20)
    (5, 0)
    """
    return max(0, min(end, other_end) - max(start, other_start))


def passage_hits(
    passage_doc: str,
    start: int,
    end: int,
    text: str,
    evidence_spans: Iterable[tuple[str, int, int]],
    evidence_quotes: Iterable[tuple[str, str]],
) -> bool:
    """Does the passage ``[start, end)`` of ``passage_doc`` (with ``text``) support the evidence?

    Only evidence in the same document counts. Within it, the passage hits when its text contains
    a quote (exactly, or after NFKC and whitespace removal), or when its offsets overlap a quote
    span by at least :func:`required_overlap` characters (a quote split across two chunks).

    >>> spans, quotes = [("a.txt", 100, 130)], [("a.txt", "x" * 30)]
    >>> passage_hits("a.txt", 0, 115, "...", spans, quotes)      # 15 of 30 chars: half
    True
    >>> passage_hits("a.txt", 0, 114, "...", spans, quotes)      # 14 of 30: not enough
    False
    >>> passage_hits("b.txt", 0, 500, "x" * 30, spans, quotes)   # right words, wrong document
    False
    >>> passage_hits("a.txt", 900, 990, "..x" + "x" * 30, spans, quotes)  # contains the quote
    True
    """
    for doc, span_start, span_end in evidence_spans:
        needed = required_overlap(span_end - span_start)
        if doc == passage_doc and overlap_chars(start, end, span_start, span_end) >= needed:
            return True
    compact_text: str | None = None
    for doc, quote in evidence_quotes:
        if doc != passage_doc or not quote:
            continue
        if quote in text:
            return True
        compact_text = compact_text if compact_text is not None else normalise_answer(text)
        if normalise_answer(quote) in compact_text:
            return True
    return False


# --------------------------------------------------------------------------- ranked-list metrics


def needs_all_evidence(question_type: str) -> bool:
    """``compare`` questions need every evidence piece; the others need any one."""
    return question_type in ALL_EVIDENCE_TYPES


def as_any_piece(coverage: Coverage) -> list[frozenset[int]]:
    """Collapse coverage to one virtual piece 0, hit by any passage that covers anything.

    This turns "any piece is enough" into the "all pieces" case with a single piece.

    >>> as_any_piece([set(), {1}, {0, 1}])
    [frozenset(), frozenset({0}), frozenset({0})]
    """
    return [frozenset({0}) if covered else frozenset() for covered in coverage]


def first_full_rank(coverage: Coverage, n_pieces: int) -> int | None:
    """The 1-based rank at which pieces ``0..n_pieces-1`` are all covered; None if never.

    >>> first_full_rank([set(), {1}, set(), {0}], 2)
    4
    >>> first_full_rank([{0}, set()], 2) is None
    True
    """
    needed = set(range(n_pieces))
    seen: set[int] = set()
    for rank, covered in enumerate(coverage, start=1):
        seen.update(covered)
        if needed <= seen:
            return rank
    return None


def recall_at_k(coverage: Coverage, n_pieces: int, k: int) -> float:
    """1.0 if every piece is covered within the top ``k`` passages, else 0.0.

    >>> recall_at_k([set(), {0}], 1, 1), recall_at_k([set(), {0}], 1, 2)
    (0.0, 1.0)
    """
    rank = first_full_rank(coverage[:k], n_pieces)
    return 1.0 if rank is not None else 0.0


def reciprocal_rank(coverage: Coverage, n_pieces: int) -> float:
    """1 / first_full_rank, or 0.0 when the list never covers everything (MRR's per-item term).

    >>> reciprocal_rank([set(), set(), {0}], 1), reciprocal_rank([set()], 1)
    (0.3333333333333333, 0.0)
    """
    rank = first_full_rank(coverage, n_pieces)
    return 1.0 / rank if rank is not None else 0.0


def ndcg_at_k(coverage: Coverage, n_pieces: int, k: int) -> float:
    """Binary-relevance nDCG@k where a passage gains 1 only if it covers a piece not yet covered.

    Counting only *new* pieces keeps overlapping chunks that repeat the same quote from scoring
    twice, so the ideal list is simply one piece per rank: IDCG = sum of 1/log2(r+1) for
    r = 1..min(n_pieces, k), and the result stays in [0, 1]. Unlike recall, a compare item with
    one of its two pieces found gets partial credit.

    >>> round(ndcg_at_k([set(), {0}], 1, 10), 4)            # 1/log2(3)
    0.6309
    >>> round(ndcg_at_k([{0}, {0}, {1}], 2, 10), 4)         # (1 + 1/2) / (1 + 1/log2(3))
    0.9197
    >>> ndcg_at_k([set(), {0}], 1, 1)
    0.0
    """
    if n_pieces <= 0 or k <= 0:
        return 0.0
    seen: set[int] = set()
    dcg = 0.0
    for rank, covered in enumerate(coverage[:k], start=1):
        new = set(covered) - seen
        if new:
            dcg += 1.0 / math.log2(rank + 1)
            seen.update(new)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(n_pieces, k) + 1))
    return dcg / ideal


# --------------------------------------------------------------------------- answers


def normalise_answer(text: str) -> str:
    """NFKC (full-width to half-width), lower case, every whitespace character removed.

    >>> normalise_answer("32.5 亿美元"), normalise_answer("３５％"), normalise_answer("R&D 投入")
    ('32.5亿美元', '35%', 'r&d投入')
    """
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(char for char in folded if not char.isspace())


def answer_correct(answer_text: str, gold_answers: Iterable[str]) -> bool:
    """True when the normalised answer contains any normalised gold answer.

    >>> answer_correct("累计 32.5亿美元。", ["32.5 亿美元"])
    True
    >>> answer_correct("达到35％以上", ["35%"])
    True
    >>> answer_correct("32亿美元", ["32.5亿美元"]), answer_correct("任何文本", [])
    (False, False)
    """
    answer = normalise_answer(answer_text)
    return any(gold and gold in answer for gold in (normalise_answer(g) for g in gold_answers))


# --------------------------------------------------------------------------- aggregation


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean; NaN for no values (an empty group is "unknown", not zero).

    >>> mean([1.0, 0.0, 0.5]), math.isnan(mean([]))
    (0.5, True)
    """
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def mean_by_type(rows: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Mean value per question type, types in first-seen order.

    >>> mean_by_type([("fact", 1.0), ("list", 0.0), ("fact", 0.0)])
    {'fact': 0.5, 'list': 0.0}
    """
    groups: dict[str, list[float]] = {}
    for kind, value in rows:
        groups.setdefault(kind, []).append(value)
    return {kind: mean(values) for kind, values in groups.items()}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between ranks (numpy's default).

    >>> percentile([10, 20, 30, 40], 50), percentile([10, 20, 30, 40], 95), percentile([7], 95)
    (25.0, 38.5, 7.0)
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return float(ordered[lower] + (ordered[upper] - ordered[lower]) * fraction)


# --------------------------------------------------------------------------- verdicts


def question_correct(
    answer_text: str, abstained: bool, gold_answers: Iterable[str], answerable: bool
) -> bool:
    """The automatic verdict on one answer: did the system do the right thing?

    An answerable question needs a non-abstaining answer that contains a gold string (an
    abstention is wrong, however cautious); an unanswerable one needs an abstention (any answer
    to it is made up). One boolean for both lets accuracy, flips and human agreement share it.

    >>> question_correct("增长 32.5 亿美元", False, ["32.5亿美元"], True)
    True
    >>> question_correct("未找到 32.5亿美元", True, ["32.5亿美元"], True)   # abstained: wrong
    False
    >>> question_correct("未在现有文件中找到相关内容", True, [], False)
    True
    >>> question_correct("海上风电装机 300 万千瓦", False, [], False)
    False
    """
    if not answerable:
        return abstained
    return not abstained and answer_correct(answer_text, gold_answers)


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when nothing was counted (unknown, not zero).

    >>> ratio(3, 4), math.isnan(ratio(0, 0))
    (0.75, True)
    """
    return numerator / denominator if denominator else math.nan


def cohens_kappa(pairs: Sequence[tuple[object, object]]) -> float:
    """Cohen's kappa of two raters' labels, one ``(rater_a, rater_b)`` pair per item.

    ``(p_o - p_e) / (1 - p_e)``: observed agreement corrected for the agreement expected if both
    raters labelled at random with their own label frequencies. NaN when undefined: no pairs, or
    ``p_e == 1`` (both raters used one and the same label for everything, so chance explains it).

    Worked example: 10 answers, auto says correct 6 times, the human 5 times; they agree on 4
    correct and 3 wrong. p_o = 0.7, p_e = 0.6 * 0.5 + 0.4 * 0.5 = 0.5, kappa = 0.2 / 0.5 = 0.4.

    >>> pairs = [(1, 1)] * 4 + [(1, 0)] * 2 + [(0, 1)] * 1 + [(0, 0)] * 3
    >>> round(cohens_kappa(pairs), 6)
    0.4
    >>> cohens_kappa([("a", "a"), ("b", "b")]), math.isnan(cohens_kappa([("a", "a")]))
    (1.0, True)
    """
    if not pairs:
        return math.nan
    n = len(pairs)
    observed = sum(1 for a, b in pairs if a == b) / n
    labels = {label for pair in pairs for label in pair}
    expected = sum(
        (sum(1 for a, _ in pairs if a == label) / n) * (sum(1 for _, b in pairs if b == label) / n)
        for label in labels
    )
    if expected >= 1.0:
        return math.nan
    return (observed - expected) / (1.0 - expected)
