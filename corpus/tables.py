"""Indicator tables (主要指标表) read back from their flattened rows.

Text extraction flattens a plan's indicator table into lines of cells:

    序号 指标名称 单位 2015年 2020年 属性 年增长%
    一、总量与结构
    1 地区生产总值(GDP) 亿元 461.22 700.00 预期性 9

A row alone does not say which figure is 2015's and which 2020's, so quoted as an answer it
reads as a string of numbers, and it carries no year for the question's year constraint. The
row's header is found by walking back over the table's rows and group lines; the row then reads
「地区生产总值(GDP)（亿元）：2015年 461.22；2020年 700.00（预期性）；年增长% 9」, and its years
are the header's. The document text is never changed: citations keep the row's exact offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from planqa.corpus.heading_forms import is_table_row

#: How far back (in lines) a row's header may stand: a 30-row table with group lines between.
MAX_TABLE_LINES = 80
#: Group lines inside a table (「一、总量与结构」, 「（二）创新驱动」) are short.
MAX_GROUP_LINE_CHARS = 20
_NAME_COLUMN = re.compile(r"指标|名称|项目")
_YEAR_COLUMN = re.compile(r"(?:19|20)\d{2}\s*年")
_UNIT_COLUMN = re.compile(r"^单位")
_SEQUENCE_COLUMN = re.compile(r"^(?:序号|编号)$")
_ATTRIBUTE_COLUMN = re.compile(r"^(?:属性|指标属性|类型)$")
_SEQUENCE = re.compile(r"^\d{1,3}$")


@dataclass(frozen=True)
class TableHeader:
    """The header line of an indicator table: its cells and where it stands."""

    columns: tuple[str, ...]
    start: int
    end: int

    @property
    def line(self) -> str:
        return " ".join(self.columns)

    @property
    def years(self) -> frozenset[int]:
        """The years the table's figures are for (its year columns)."""
        return frozenset(
            int(match.group(0)[:4]) for c in self.columns for match in _YEAR_COLUMN.finditer(c)
        )


def is_header_line(line: str) -> bool:
    """A table header: four or more cells, one naming the indicator, one a year or the unit."""
    cells = line.split()
    return (
        len(cells) >= 4
        and any(_NAME_COLUMN.search(c) for c in cells)
        and any(_YEAR_COLUMN.search(c) or _UNIT_COLUMN.match(c) for c in cells)
    )


def header_of_row(text: str, start: int) -> TableHeader | None:
    """The header of the table whose row is the line holding ``text[start]``; None when that
    line is no table row or no header stands above the rows before it."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = _line_end(text, start)
    if not is_table_row(text[line_start:line_end].strip()):
        return None
    end = line_start - 1
    for _ in range(MAX_TABLE_LINES):
        if end < 0:
            return None
        begin = text.rfind("\n", 0, end) + 1
        line = text[begin:end].strip()
        if is_header_line(line):
            return TableHeader(tuple(line.split()), begin, end)
        if line and not is_table_row(line) and len(line) > MAX_GROUP_LINE_CHARS:
            return None
        end = begin - 1
    return None


def labelled_row(header: TableHeader, row: str) -> str | None:
    """The row read with its header: 「名称（单位）：2015年 461.22；2020年 700.00（预期性）」;
    None when its cells do not line up with the header's."""
    columns = list(header.columns)
    cells = row.split()
    if columns and _SEQUENCE_COLUMN.match(columns[0]):
        columns = columns[1:]
        if cells and _SEQUENCE.match(cells[0]):
            cells = cells[1:]
    name_at = next((i for i, c in enumerate(columns) if _NAME_COLUMN.search(c)), None)
    if name_at is None or not cells:
        return None
    extra = len(cells) - len(columns)
    if extra > 0:  # a name with spaces in it: its words fill the name cell
        cells[name_at : name_at + extra + 1] = [" ".join(cells[name_at : name_at + extra + 1])]
    values = dict(zip(columns, cells, strict=False))
    name = values.pop(columns[name_at])
    unit, attribute = _take(values, _UNIT_COLUMN), _take(values, _ATTRIBUTE_COLUMN)
    figures = [f"{c} {v}" for c, v in values.items() if _YEAR_COLUMN.search(c)]
    others = [f"{c} {v}" for c, v in values.items() if not _YEAR_COLUMN.search(c)]
    if not figures:
        return None
    text = f"{name}（{unit}）：" if unit else f"{name}："
    text += "；".join(figures) + (f"（{attribute}）" if attribute else "")
    return text + "".join(f"；{o}" for o in others)


def _take(values: dict[str, str], column: re.Pattern[str]) -> str:
    """Remove and return the value of the first column matching ``column`` ("" when none)."""
    key = next((c for c in values if column.match(c)), None)
    return values.pop(key) if key is not None else ""


def labelled_table_row(text: str, start: int, end: int) -> str | None:
    """``text[start:end]`` read with its table's header when it is a whole table row, else None."""
    span = text[start:end].strip()
    line_start = text.rfind("\n", 0, start) + 1
    if text[line_start : _line_end(text, start)].strip() != span:
        return None
    header = header_of_row(text, start)
    return labelled_row(header, span) if header else None


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


#: Characters of CJK text: spaces between them inside one cell are layout, not words.
_CJK_SPACE = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef])\s+|\s+(?=[\u3000-\u9fff\uff00-\uffef])")
#: What an empty cell reads as, so that the cells after it stay under their header.
EMPTY_CELL = "—"


def table_lines(rows: list[list[str | None]]) -> list[str]:
    """A table from a PDF or a .docx as the flattened lines this module reads back: the header
    row first, then each row, cells separated by one space (the shape text extraction gives an
    indicator table, so :func:`header_of_row` and :func:`labelled_row` apply unchanged).

    A cell's own line breaks and the spaces a layout put between its Chinese characters are
    removed (a cell must stay one whitespace-free token where it can); an empty cell becomes
    「—」; rows with no text at all are dropped.
    """
    lines = []
    for row in rows:
        cells = [_cell(cell) for cell in row]
        if any(cell != EMPTY_CELL for cell in cells):
            lines.append(" ".join(cells))
    return lines


def _cell(cell: str | None) -> str:
    text = " ".join((cell or "").split())
    return _CJK_SPACE.sub("", text) or EMPTY_CELL
