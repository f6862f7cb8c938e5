"""Numbers in the unit a question asks for, next to the indicator it names.

Planning prose puts many figures in one sentence: 「地区生产总值增长5%，城镇新增就业18万人」. Which
of them answers "多少" depends on the unit the question fixes (几位 → 人/位/名, 多少亿元 → 元) and
on the words standing beside the number, not on how many words the whole sentence shares.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from planqa.index.text_tokenizer import normalise_text
from planqa.rag.constraints import YEAR

_NUMBER = re.compile(r"\d|[一二三四五六七八九十百千万亿]+[个家所项条座]")
#: A number as plans write it (85, 32.5, 5-10, 五, 两), before its unit.
_QUANTITY = (
    r"(?:\d+(?:\.\d+)?|[零一二两三四五六七八九十百千]+)"
    r"(?:\s*[-—～~至到]\s*(?:\d+(?:\.\d+)?|[一二三四五六七八九十]+))?\s*[万亿]?\s*"
)
#: Years and period names are constraints (rag.constraints), not indicator words.
_DIGITS_OR_PERIOD = re.compile(r"\d|^[十一二三四五]+$")
_HAN_ONLY = re.compile(r"[\u4e00-\u9fff]+")
_QUESTION_CHARS = re.compile(r"几|多少|哪")
#: What may stand before a unit in a question's unit word: 万人, 亿元, 千瓦.
_MAGNITUDES = "十百千万亿"
#: A clause: the stretch between two marks of punctuation, where a number meets its indicator.
CLAUSE = re.compile(r"[^，,；;。：:、]+")
#: An indicator's clause runs on over 、: 「粮食播种面积3320万亩、产量1285万吨」 gives both
#: figures of 粮食, the subject named once before the enumeration.
INDICATOR_CLAUSE = re.compile(r"[^，,；;。：:]+")


def number_fit(text: str, units: tuple[str, ...]) -> float:
    """How well ``text`` can answer "how many/much": with the unit the question asks for (几位,
    多大比例), 2 for a number in that unit and 0 otherwise; without one, 1 for any number.

    The unit is what tells the answer apart in planning prose, where every sentence has numbers:
    "请来了几位诺奖获得者" is answered by "引进了5名诺贝尔奖得主", not by the patent count
    beside it.
    """
    if units == ("年",):  # a year asked (哪一年): 2050年, not 一百年 or 5年
        return 2.0 if YEAR.search(text) else 0.0
    if units:
        return 2.0 if _unit_number(units).search(text) else 0.0
    return 1.0 if _NUMBER.search(text) else 0.0


@lru_cache(maxsize=64)
def _unit_number(units: tuple[str, ...]) -> re.Pattern[str]:
    # A table row puts the unit in its own column before the figures: 「人均可支配收入 元 50770」.
    unit = "(?:" + "|".join(map(re.escape, units)) + ")"
    # 「30万人次」 counts visits, not people: a unit followed by 次 is another unit.
    return re.compile(f"{_QUANTITY}{unit}(?!次)|(?<![\u4e00-\u9fff]){unit}\\s+\\d")


def number_beside(
    text: str,
    keywords: tuple[str, ...],
    units: tuple[str, ...],
    abbreviations: tuple[str, ...] = (),
) -> bool:
    """Whether a clause of ``text`` states a number (in the asked unit) next to one of the
    indicator's words: 「城镇新增就业18万人」 answers a question about 城镇新增就业, while
    「地区生产总值增长5%」 beside it does not, however much of the passage the question shares.

    ``abbreviations`` are question words the corpus never uses: they count where their
    characters appear in order (诺奖 in 诺贝尔奖得主), the way Chinese shortens names."""
    for clause in INDICATOR_CLAUSE.findall(text):
        normalised = normalise_text(clause)
        named = any(k in normalised for k in keywords) or any(
            _spelled_out(k, normalised) for k in abbreviations
        )
        if named and written_number_fit(clause, units):
            return True
    return False


def _spelled_out(short: str, text: str) -> bool:
    """诺奖 → 诺贝尔奖: every character of ``short`` in ``text``, in order."""
    rest = iter(text)
    return all(char in rest for char in short)


def written_number_fit(text: str, units: tuple[str, ...]) -> float:
    """:func:`number_fit` of the text as written or simplified, whichever fits better: simplified
    reads 億元 as 亿元, while only the written text keeps a table's columns apart
    (「处理率 % 87.80」 normalises to 「处理率%87.80」)."""
    return max(number_fit(text, units), number_fit(normalise_text(text), units))


def indicator_words(
    keywords: tuple[str, ...], idf: Callable[[str], float], units: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The question's words that name its indicator rather than frame it: those the corpus
    uses at least as rarely as the question's median word (years, digits, words the corpus
    never uses and the asked unit — 「多少万人」's 万人 — aside)."""
    seen = {
        k: idf(k)
        for k in keywords
        if not _DIGITS_OR_PERIOD.search(k) and k.lstrip(_MAGNITUDES) not in units
    }
    seen = {k: weight for k, weight in seen.items() if weight > 0}
    if not seen:
        return ()
    ranked = sorted(seen.values())
    median = ranked[len(ranked) // 2]
    return tuple(k for k, weight in seen.items() if weight >= median)


def initialisms(
    text: str, keywords: tuple[str, ...], indicator: tuple[str, ...]
) -> tuple[str, ...]:
    """Two-character shortenings of the question's compound indicator names, first character of
    each word: 高新技术企业 → 高企, 科技创新 → 科创 — how plans write them once named.

    Only pairs of adjacent question words of which one names the indicator count, and only
    shortenings the question does not itself contain."""
    at = {k: text.find(k) for k in keywords if len(k) >= 2 and _HAN_ONLY.fullmatch(k)}
    found = []
    for first, start in at.items():
        for second, second_start in at.items():
            if start < 0 or second_start != start + len(first):
                continue
            short = first[0] + second[0]
            if (first in indicator or second in indicator) and short not in text:
                found.append(short)
    return tuple(dict.fromkeys(found))


def unseen_words(keywords: tuple[str, ...], idf: Callable[[str], float]) -> tuple[str, ...]:
    """Question words of two or more Han characters the corpus never uses: abbreviations or
    rewordings of what the documents spell out (see :func:`number_beside`)."""
    return tuple(
        k
        for k in keywords
        if len(k) >= 2 and _HAN_ONLY.fullmatch(k) and not _QUESTION_CHARS.search(k) and idf(k) <= 0
    )
