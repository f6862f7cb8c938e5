"""The difference of two quoted figures, for "相差多少 / 高出多少" questions.

A comparison answer quotes one line per side; when the question asks how far apart they are, the
reader should not have to subtract. The result is stated only when both figures are found beside
the indicator asked and share one unit (亿元 with 亿元, % with % — a difference of shares is in
百分点); otherwise nothing is computed and the two quoted lines stand alone. Exact decimal
arithmetic, so 743.4 − 653 is 90.4, not 90.39999.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from planqa.index.text_tokenizer import normalise_text
from planqa.rag.indicators import CLAUSE

#: The question asks for the gap between two figures.
ASKS_DIFFERENCE = re.compile(r"相差|差距|之差|差多少|高出|多出|低多少|高多少|多多少|少多少|超出")
#: A figure as plans write it: 743.4亿元, 653 亿元, 67.7%, 18万人.
_FIGURE = re.compile(
    r"(\d+(?:\.\d+)?)\s*((?:万|亿|千)?\s*(?:美元|元|人次|人|吨|公里|千瓦|平方公里|亩|个|家|项|%|％))"
)


@dataclass(frozen=True)
class Figure:
    region: str
    value: Decimal
    unit: str
    written: str


def figure_beside(region: str, text: str, keywords: tuple[str, ...]) -> Figure | None:
    """The first figure of ``text`` in a clause holding one of ``keywords``."""
    for clause in CLAUSE.findall(normalise_text(text)):
        if not any(keyword in clause for keyword in keywords):
            continue
        match = _FIGURE.search(clause)
        if match:
            unit = re.sub(r"\s+", "", match.group(2)).replace("％", "%")
            return Figure(region, Decimal(match.group(1)), unit, match.group(0).replace(" ", ""))
    return None


def difference_line(question: str, figures: list[tuple[Figure, int] | None]) -> str | None:
    """「两者相差90.4亿元（南通市经济技术开发区743.4亿元[1]，连云港市海州区653亿元[2]）」 from
    two figures and the citation numbers of the lines quoting them, or None."""
    if not ASKS_DIFFERENCE.search(question) or len(figures) != 2 or None in figures:
        return None
    (first, n_first), (second, n_second) = figures  # type: ignore[misc]
    if first.unit != second.unit:
        return None
    gap = format(abs(first.value - second.value).normalize(), "f")
    unit = "个百分点" if first.unit == "%" else first.unit
    return (
        f"两者相差{gap}{unit}（{first.region}{first.written}[{n_first}]，"
        f"{second.region}{second.written}[{n_second}]）"
    )
