"""Number grounding: are the figures a statement states in the passages it cites?

A model that cites a passage and changes its figure (the passage says 500亿元, the answer says
达到800亿元[1]) writes the most misleading kind of wrong answer: fluent, cited, and wrong. So
every figure of a cited statement is looked for in the passages that statement cites, and
:mod:`rag.citations` withholds the statement when one is missing (see ``verify_reply``).

This lives apart from :mod:`rag.llm` (which had grown past the ≈400-line module guideline)
because it is pure text logic with its own cases, tested without any model.

Figures are compared by value, not by spelling:

* units and suffixes do not matter: 500亿 matches 500亿元 (as before: the check is of figures);
* 5.0 matches 5, full-width ５００ matches 500, 1,000 and 1，000 match 1000;
* 百分之十 matches 10%, and Chinese numerals in passages count (五万亩 grounds 5万亩);
* a scale word gives the value: 5万亿 matches 50000亿, 1万 matches 10000.

What must be grounded is every figure the statement states, years included; a figure the
question already contains is not grounded by being in the question, nor by a passage the
statement does not cite. Citation markers ([n], and prose references like 段落2) and list
numbering ("1. ") are not figures. Chinese numerals in a statement count only where they are
clearly a quantity (百分之…, 三十个, 八百亿元, 二〇三五年), so 十四五, 一体化, 第十四个 (an
ordinal), 百年 or 千亿级 (idioms) are not read as numbers: withholding a faithful statement
costs the user an answer, so the statement side errs towards reading fewer figures.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_RUN = "[零〇一二两三四五六七八九十百千万亿]+"
#: Arabic figures: 1,000 / 1，000 (thousands groups), 32.5, full-width ３２．５.
_ARABIC = r"(?:\d{1,3}(?:[,，]\d{3})+(?!\d)|\d+)(?:[.．]\d+)?"
_SCALES = {"万亿": 10**12, "亿": 10**8, "千万": 10**7, "百万": 10**6, "万": 10**4, "千": 10**3}
_FIGURE_RE = re.compile(
    rf"百分之\s*(?P<pct_ar>{_ARABIC})"
    rf"|百分之(?P<pct_cn>{_CN_RUN})"
    rf"|(?<![\d.．])(?P<ar>{_ARABIC})(?:\s*(?P<scale>万亿|亿|千万|百万|万|千))?"
    rf"|(?P<cn>{_CN_RUN})"
)
#: What a Chinese numeral must be followed by to be a quantity (三十个, 五万亩, 一项).
_COUNTED = set("元%％个项家条倍年岁人户所座处名位亩次批类种期级天月日吨米公平台套栋辆")
#: Markers and references to passages, and list numbering: numbers that are not claims.
_NOT_FIGURES_RE = re.compile(
    r"\[\d+\]|(?:段落|资料|来源|passage)\s*\d+|^\s*(?:\d{1,2}[.、)）](?!\d)|[(（]\d{1,2}[)）])",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class Figure:
    """One figure of a text: as written, its digits, and its value with 万/亿 applied."""

    text: str
    #: Canonical digits: "5.0" -> "5", "1,000" -> "1000", "８０" -> "80", "十" -> "10".
    literal: str
    #: "500亿" -> 5E+10; "500" -> 500.
    value: Decimal
    #: For "100,200": the comma-separated parts, in case the comma separates a list.
    parts: tuple[str, ...] = ()


def _decimal(token: str) -> Decimal | None:
    """An Arabic figure as a Decimal: any Unicode digits, separators dropped, ．as a point."""
    chars = []
    for char in token:
        if char.isdecimal():
            chars.append(str(unicodedata.decimal(char)))
        elif char in ".．":
            chars.append(".")
    try:
        return Decimal("".join(chars))
    except InvalidOperation:
        return None


def _plain(value: Decimal) -> str:
    """Canonical spelling: no exponent, no trailing zeros (5.0 -> 5, 500 -> 500)."""
    return format(value.normalize(), "f")


def chinese_number(run: str) -> int | None:
    """The value of a Chinese numeral (三十 30, 一百零五 105, 三亿五千万, 二〇二五 2025).

    None where the run is no well-formed numeral (十四五, a lone 万).
    """
    if not run:
        return None
    if all(char in _CN_DIGITS for char in run):
        return int("".join(str(_CN_DIGITS[char]) for char in run))
    total = wan = section = 0  # the 亿 part, the 万 part, the part below 万
    digit: int | None = None
    for char in run:
        if char in "零〇":
            if digit is not None:
                return None
        elif char in _CN_DIGITS:
            if digit is not None:
                return None
            digit = _CN_DIGITS[char]
        elif char in _CN_UNITS:
            section += (1 if digit is None else digit) * _CN_UNITS[char]
            digit = None
        else:
            part = section + (digit or 0)
            section, digit = 0, None
            if char == "万":
                if not part:
                    return None
                wan += part * 10**4
            else:
                if not total + wan + part:
                    return None
                total, wan = (total + wan + part) * 10**8, 0
    return total + wan + section + (digit or 0)


def _chinese_figure(run: str, before: str, after: str, *, strict: bool) -> Figure | None:
    """A Chinese numeral as a figure, where it reads as a quantity (see the module docstring)."""
    value = chinese_number(run)
    if value is None:
        return None
    counted = after[:1] in _COUNTED or run[-1] in "万亿"
    if strict:
        # 三十个, 八百亿元, 二〇三五年; not 第十四个 (an ordinal), nor 百年 or 千亿级 (idioms).
        digits = any(char in _CN_DIGITS and char not in "零〇" for char in run)
        quantity = digits and counted and any(char in run for char in "十百千万亿")
        year = len(run) == 4 and after[:1] == "年" and all(c in _CN_DIGITS for c in run)
        if before[-1:] == "第" or not (quantity or year):
            return None
    elif len(run) < 2 and not counted:
        return None  # 统一, 一些, 百姓: a single character that is no number
    mantissa = chinese_number(run.rstrip("万亿")) if run.rstrip("万亿") != run else value
    if mantissa is None:
        return None
    return Figure(run, str(mantissa), Decimal(value))


def figures(text: str, *, strict: bool = True) -> Iterator[Figure]:
    """The figures of ``text``. ``strict`` (a statement) reads fewer Chinese numerals than the
    lenient reading of passages, which may only ever ground more, never less."""
    if strict:
        text = _NOT_FIGURES_RE.sub(" ", text)
    for match in _FIGURE_RE.finditer(text):
        if match["cn"] is not None:
            before, after = text[: match.start()], text[match.end() :]
            figure = _chinese_figure(match["cn"], before, after, strict=strict)
            if figure is not None:
                yield figure
        elif match["pct_cn"] is not None:
            value = chinese_number(match["pct_cn"])
            if value is not None:
                yield Figure(match.group(0), str(value), Decimal(value))
        else:
            token = match["ar"] if match["ar"] is not None else match["pct_ar"]
            number = _decimal(token)
            if number is None:
                continue
            groups = re.split(r"[,，]", token)
            parts = () if len(groups) == 1 else tuple(groups)
            scale = _SCALES.get(match["scale"] or "", 1)
            yield Figure(token, _plain(number), number * scale, parts)


@dataclass(frozen=True)
class Grounds:
    """The figures of some passages, by spelling-free digits and by value."""

    literals: frozenset[str]
    values: frozenset[Decimal]

    @classmethod
    def of(cls, passages_text: str) -> Grounds:
        # Also read with spaces removed, as before ("7. 39 万元" in an extracted table).
        found = [
            *figures(passages_text, strict=False),
            *figures(re.sub(r"\s+", "", passages_text), strict=False),
        ]
        literals = {f.literal for f in found}
        for figure in found:  # "100,200" in a passage also grounds 100 and 200
            literals.update(_plain(d) for p in figure.parts if (d := _decimal(p)) is not None)
        return cls(frozenset(literals), frozenset(f.value for f in found))

    def grounds(self, figure: Figure) -> bool:
        if figure.literal in self.literals or figure.value in self.values:
            return True
        # "100,200" may be a list: grounded if each part is (a "000" group never is alone).
        return bool(figure.parts) and all(
            not part.startswith("0") and part.isdecimal() and _plain(Decimal(part)) in self.literals
            for part in figure.parts
        )


def missing_figures(statement: str, passages_text: str) -> list[str]:
    """The figures of ``statement`` (as written there) that ``passages_text`` does not contain."""
    grounds = Grounds.of(passages_text)
    missing = [f.text for f in figures(statement, strict=True) if not grounds.grounds(f)]
    return list(dict.fromkeys(missing))
