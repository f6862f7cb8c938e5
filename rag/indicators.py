"""Numbers in the unit a question asks for, next to the indicator it names.

Planning prose puts many figures in one sentence: 「地区生产总值增长5%，城镇新增就业18万人」. Which
of them answers "多少" depends on the unit the question fixes (几位 → 人/位/名, 多少亿元 → 元) and
on the words standing beside the number, not on how many words the whole sentence shares.
"""

from __future__ import annotations

import re
from functools import lru_cache

from index.text_tokenizer import normalise_text

_NUMBER = re.compile(r"\d|[一二三四五六七八九十百千万亿]+[个家所项条座]")
#: A number as plans write it (85, 32.5, 5-10, 五, 两), before its unit.
_QUANTITY = (
    r"(?:\d+(?:\.\d+)?|[零一二两三四五六七八九十百千]+)"
    r"(?:\s*[-—～~至到]\s*(?:\d+(?:\.\d+)?|[一二三四五六七八九十]+))?\s*[万亿]?\s*"
)
#: A clause: the stretch between two marks of punctuation, where a number meets its indicator.
CLAUSE = re.compile(r"[^，,；;。：:、]+")


def number_fit(text: str, units: tuple[str, ...]) -> float:
    """How well ``text`` can answer "how many/much": with the unit the question asks for (几位,
    多大比例), 2 for a number in that unit and 0 otherwise; without one, 1 for any number.

    The unit is what tells the answer apart in planning prose, where every sentence has numbers:
    "请来了几位诺奖获得者" is answered by "引进了5名诺贝尔奖得主", not by the patent count
    beside it.
    """
    if units:
        return 2.0 if _unit_number(units).search(text) else 0.0
    return 1.0 if _NUMBER.search(text) else 0.0


@lru_cache(maxsize=64)
def _unit_number(units: tuple[str, ...]) -> re.Pattern[str]:
    # A table row puts the unit in its own column before the figures: 「人均可支配收入 元 50770」.
    unit = "(?:" + "|".join(map(re.escape, units)) + ")"
    # 「30万人次」 counts visits, not people: a unit followed by 次 is another unit.
    return re.compile(f"{_QUANTITY}{unit}(?!次)|(?<![\u4e00-\u9fff]){unit}\\s+\\d")


def number_beside(text: str, keywords: tuple[str, ...], units: tuple[str, ...]) -> bool:
    """Whether a clause of ``text`` states a number (in the asked unit) next to one of the
    indicator's words: 「城镇新增就业18万人」 answers a question about 城镇新增就业, while
    「地区生产总值增长5%」 beside it does not, however much of the passage the question shares."""
    for clause in CLAUSE.findall(text):
        normalised = normalise_text(clause)
        if any(k in normalised for k in keywords) and written_number_fit(clause, units):
            return True
    return False


def written_number_fit(text: str, units: tuple[str, ...]) -> float:
    """:func:`number_fit` of the text as written or simplified, whichever fits better: simplified
    reads 億元 as 亿元, while only the written text keeps a table's columns apart
    (「处理率 % 87.80」 normalises to 「处理率%87.80」)."""
    return max(number_fit(text, units), number_fit(normalise_text(text), units))
