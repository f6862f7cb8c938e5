"""Search results as CSV and XLSX files for people who collect precedents in a spreadsheet.

A file found on a desktop a week later must say what it is: the query, the filters, when it was
exported and from which planqa and index version. The XLSX carries that on a first sheet
「检索条件」; the CSV in ``#`` comment lines above the header (spreadsheet programs show them as
rows; ``csv`` readers skip them with ``row[0].startswith("#")``). The file is named after the
query. Only the passages the page showed are written, with the document's 类型/期间/文件日期.

Two spreadsheet hazards are handled here rather than left to the reader's Excel:

* **Formula injection**: a cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab/CR) is run as
  a formula by spreadsheet programs. Document text is data, so such text cells get a leading
  ``'`` in the CSV (the OWASP advice) and are stored as explicit strings in the XLSX.
* **Encoding**: the CSV is UTF-8 *with* a byte-order mark, or Excel shows the Chinese as mojibake.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planqa.corpus.errors import InputError
from planqa.index.search import Hit
from planqa.ui.precedents import LEVEL_MID, Precedent
from planqa.ui.render import chapter_path

EXPORT_COLUMNS = [
    "序号",
    "相关度",
    "地区",
    "文件标题",
    "文件",
    "类型",
    "期间",
    "文件日期",
    "章节",
    "起始位置",
    "结束位置",
    "匹配词",
    "得分",
    "语义得分",
    "关键词得分",
    "段落文本",
]
TEXT_COLUMN = EXPORT_COLUMNS.index("段落文本")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Characters XML 1.0 (and so XLSX) cannot hold; openpyxl refuses them.
_ILLEGAL_XML_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: Anything but letters (any script), digits, "-" and "_" becomes "_" in a file name.
_UNSAFE_NAME_RE = re.compile(r"[^\w\-]+")
NAME_CHARS = 40


@dataclass(frozen=True)
class ExportHeader:
    """What the file records about its search: shown as (label, value) pairs."""

    query: str
    filters: dict[str, str] = field(default_factory=dict)
    matches: int = 0
    planqa_version: str = ""
    index_version: str = ""
    exported_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))

    def pairs(self, rows: int) -> list[tuple[str, str]]:
        items = [("检索词", self.query)]
        items += [(label, value or "（不限）") for label, value in self.filters.items()]
        items += [
            ("包含检索词的段落", str(self.matches)),
            ("本文件中的段落", str(rows)),
            ("导出时间", self.exported_at),
            ("planqa 版本", self.planqa_version or "—"),
            ("索引版本", self.index_version or "—"),
        ]
        return items


def export_name(query: str, kind: str = "检索") -> str:
    """A file stem from the query: safe characters only (letters of any script, digits, -, _),
    at most :data:`NAME_CHARS` of them, then a time stamp so two exports never collide."""
    stem = _UNSAFE_NAME_RE.sub("_", query).strip("_")[:NAME_CHARS].strip("_") or kind
    return f"planqa-{kind}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _as_precedents(items: Sequence[Precedent] | Sequence[Hit]) -> list[Precedent]:
    return [p if isinstance(p, Precedent) else Precedent(p, LEVEL_MID, ()) for p in items]


def hit_rows(items: Sequence[Precedent] | Sequence[Hit]) -> list[list[Any]]:
    """One row per passage, in the page's order; numbers stay numbers so they sort."""
    rows: list[list[Any]] = []
    for number, precedent in enumerate(_as_precedents(items), start=1):
        hit, meta = precedent.hit, precedent.meta
        chunk = hit.chunk
        rows.append(
            [
                number,
                precedent.level,
                chunk.region,
                chunk.title,
                chunk.doc,
                meta.kind if meta else "",
                meta.period if meta else "",
                meta.date if meta else "",
                chapter_path(chunk.chapter),
                chunk.start,
                chunk.end,
                "、".join(precedent.matched),
                round(hit.score, 6),
                None if hit.dense_score is None else round(hit.dense_score, 6),
                None if hit.bm25_score is None else round(hit.bm25_score, 6),
                chunk.text,
            ]
        )
    return rows


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def write_csv(
    items: Sequence[Precedent] | Sequence[Hit], path: Path, header: ExportHeader | None = None
) -> Path:
    rows = hit_rows(items)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        if header is not None:
            for label, value in header.pairs(len(rows)):
                # One comment line per field; line breaks in a query would start a data row.
                handle.write(f"# {label}：{' '.join(str(value).split())}\r\n")
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        for row in rows:
            writer.writerow([_csv_cell(v) for v in row])
    return path


def _text_cell(cell: Any, value: str) -> None:
    # Forcing the type after assigning keeps "=..." a string, not a formula.
    cell.value = _ILLEGAL_XML_RE.sub("", value)
    cell.data_type = "s"


def write_xlsx(
    items: Sequence[Precedent] | Sequence[Hit], path: Path, header: ExportHeader | None = None
) -> Path:
    try:
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Font
    except ImportError as exc:  # a declared dependency; only a broken install lacks it
        raise InputError(
            "XLSX export needs openpyxl: pip install openpyxl (it is a planqa dependency)"
        ) from exc
    rows = hit_rows(items)
    workbook = Workbook()
    sheet = workbook.active
    if header is not None:
        sheet.title = "检索条件"
        for row_number, (label, value) in enumerate(header.pairs(len(rows)), start=1):
            _text_cell(sheet.cell(row=row_number, column=1), label)
            _text_cell(sheet.cell(row=row_number, column=2), str(value))
            sheet.cell(row=row_number, column=1).font = Font(bold=True)
        sheet.column_dimensions["A"].width = 18
        sheet.column_dimensions["B"].width = 60
        sheet = workbook.create_sheet("检索结果")
    else:
        sheet.title = "检索结果"
    sheet.append(EXPORT_COLUMNS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row_number, row in enumerate(rows, start=2):
        for column, value in enumerate(row, start=1):
            cell = sheet.cell(row=row_number, column=column)
            if isinstance(value, str):
                _text_cell(cell, value)
            else:
                cell.value = value
    widths = [6, 6, 22, 40, 26, 12, 12, 12, 40, 10, 10, 16, 10, 10, 10, 100]
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=column).column_letter].width = width
    text_letter = sheet.cell(row=1, column=TEXT_COLUMN + 1).column_letter
    for cell in sheet[text_letter][1:]:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A2"
    workbook.save(path)
    return path
