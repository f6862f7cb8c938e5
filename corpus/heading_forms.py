"""What a heading, a line and a table row look like in a Chinese planning document's text.

The numbered heading forms (第X章, 一、, （一）, 1., （1）, 专栏) and the text-level tests that the
structure parser (corpus.structure) and the page-furniture detector (corpus.furniture) share:
both need to know whether a line carries a heading marker, and lines keep exact offsets so
every span either of them reports points at the original characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

#: Standalone headings longer than this are paragraphs that happen to start with a marker.
MAX_HEADING_CHARS = 40
#: Indicator-table rows are short; longer lines with numbers in them are prose.
MAX_TABLE_ROW_CHARS = 80

#: Sentence-final punctuation (full- and half-width; the corpus is partly NFKC-normalised).
SENTENCE_END_CHARS = "。！？；!?;"

_NUMERAL = r"[一二三四五六七八九十百零〇两\d]+"
_CN_NUMERAL = r"[一二三四五六七八九十百零〇两]+"

#: ``第三章``, ``第 3 章`` — chapter numbers in Chinese or Arabic numerals, spaces tolerated.
CHAPTER_RE = re.compile(rf"^第\s*(?P<num>{_NUMERAL})\s*章")
#: ``第一节``, ``第 1 节``.
SECTION_RE = re.compile(rf"^第\s*(?P<num>{_NUMERAL})\s*节")
#: ``一、`` — the comma-shaped 、 is required, so ``一是`` and ``一批`` never match.
CN_ENUM_RE = re.compile(rf"^(?P<num>{_CN_NUMERAL})\s*、")
#: ``（一）`` / ``(一)`` in full- or half-width parentheses.
PAREN_CN_RE = re.compile(rf"^[（(]\s*(?P<num>{_CN_NUMERAL})\s*[）)]")
#: ``1、`` / ``1．`` / ``1.`` — but not ``6.233 国道`` or ``7.39 万`` (a digit after the dot).
ARABIC_RE = re.compile(r"^(?P<num>\d{1,3})\s*(?:[、．]|\.(?!\d))")
#: ``（1）`` / ``(1)``.
PAREN_ARABIC_RE = re.compile(r"^[（(]\s*(?P<num>\d{1,3})\s*[）)]")
#: ``专栏``, ``专栏3``, ``专栏 3``, ``专栏:标题`` — the box number is optional and not sequenced.
BOX_RE = re.compile(rf"^专栏\s*(?:{_NUMERAL})?")
#: A box title glued to the end of a paragraph line: ``…物流园区。专栏:服务业重点工程``.
TRAILING_BOX_RE = re.compile(
    rf"(?<=[。！？!?；;])专栏\s*(?:{_NUMERAL})?\s*[:：]?[^。！？!?；;，,]{{0,30}}$"
)
#: A whole line that is an unnumbered heading; the press often spaces it out (``序 言``).
UNNUMBERED_RE = re.compile(r"^(?:序\s*言|前\s*言|引\s*言|结\s*束\s*语|结\s*语|后\s*记)$")
#: A number in an indicator table: ``461.22``, ``≤0.2``, ``<0.01``, ``65%``.
NUMERIC_TOKEN_RE = re.compile(r"[<>≤≥＜＞]?\d+(?:\.\d+)?%?")


class Line(NamedTuple):
    """A line's content with surrounding whitespace (NBSP, ideographic space, ``\\r``) excluded."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class HeadingForm:
    """A numbered heading form."""

    name: str
    pattern: re.Pattern[str]
    level: int


NUMBERED_KINDS = (
    HeadingForm("chapter", CHAPTER_RE, 0),
    HeadingForm("section", SECTION_RE, 1),
    HeadingForm("cn_enum", CN_ENUM_RE, 1),
    HeadingForm("paren_cn", PAREN_CN_RE, 2),
    HeadingForm("arabic", ARABIC_RE, 3),
    HeadingForm("paren_arabic", PAREN_ARABIC_RE, 4),
)



_LINE_RE = re.compile(r"[^\r\n]*")


def is_space(ch: str) -> bool:
    return ch.isspace() or ch in "\ufeff\u200b"


def content_lines(text: str) -> list[Line]:
    """Non-blank lines with exact offsets; a line of NBSPs is blank like an empty one."""
    lines: list[Line] = []
    for match in _LINE_RE.finditer(text):
        start, end = match.span()
        while start < end and is_space(text[start]):
            start += 1
        while end > start and is_space(text[end - 1]):
            end -= 1
        if end > start:
            lines.append(Line(start, end, text[start:end]))
    return lines


def has_marker(text: str) -> bool:
    return any(kind.pattern.match(text) for kind in NUMBERED_KINDS) or bool(
        UNNUMBERED_RE.match(text) or BOX_RE.match(text)
    )


def looks_like_heading(text: str) -> bool:
    """A short line without sentence punctuation, i.e. something a TOC would list."""
    return 0 < len(text) <= MAX_HEADING_CHARS and not any(c in SENTENCE_END_CHARS for c in text)




def cn_number(numeral: str) -> int:
    """``十二`` -> 12, ``二十`` -> 20, ``3`` -> 3; enough for heading numbers."""
    if numeral.isdigit():
        return int(numeral)
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
    total = current = 0
    for char in numeral:
        if char in digits:
            current = digits[char]
        elif char in "十百":
            total += (current or 1) * (10 if char == "十" else 100)
            current = 0
    return total + current


def is_table_row(text: str) -> bool:
    """An indicator-table row: a short unpunctuated line of several cells, two of them numbers.

    Prose with spaced numbers (``2020 年,全区实现地区生产总值 653 亿元``) is long or punctuated.
    """
    if len(text) > MAX_TABLE_ROW_CHARS or any(c in SENTENCE_END_CHARS + ",，" for c in text):
        return False
    cells = text.split()
    return len(cells) >= 4 and sum(bool(NUMERIC_TOKEN_RE.fullmatch(c)) for c in cells) >= 2
