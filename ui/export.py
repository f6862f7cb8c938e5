"""Search results as CSV and XLSX files for people who collect precedents in a spreadsheet.

Both formats hold the same rows. Two spreadsheet hazards are handled here rather than left to
the reader's Excel:

* **Formula injection**: a cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab/CR) is run as
  a formula by spreadsheet programs. Document text is data, so such text cells get a leading
  ``'`` in the CSV (the OWASP advice) and are stored as explicit strings in the XLSX.
* **Encoding**: the CSV is UTF-8 *with* a byte-order mark, or Excel shows the Chinese as mojibake.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from planqa.corpus.errors import InputError
from planqa.index.search import Hit
from planqa.ui.render import chapter_path

EXPORT_COLUMNS = [
    "排名",
    "地区",
    "文件标题",
    "文件",
    "章节",
    "起始位置",
    "结束位置",
    "得分",
    "语义得分",
    "关键词得分",
    "段落文本",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Characters XML 1.0 (and so XLSX) cannot hold; openpyxl refuses them.
_ILLEGAL_XML_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def hit_rows(hits: Sequence[Hit]) -> list[list[Any]]:
    """One row per hit, in rank order; numbers stay numbers so they sort in a spreadsheet."""
    rows: list[list[Any]] = []
    for rank, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        rows.append(
            [
                rank,
                chunk.region,
                chunk.title,
                chunk.doc,
                chapter_path(chunk.chapter),
                chunk.start,
                chunk.end,
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


def write_csv(hits: Sequence[Hit], path: Path) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        for row in hit_rows(hits):
            writer.writerow([_csv_cell(v) for v in row])
    return path


def write_xlsx(hits: Sequence[Hit], path: Path) -> Path:
    try:
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Font
    except ImportError as exc:  # a declared dependency; only a broken install lacks it
        raise InputError(
            "XLSX export needs openpyxl: pip install openpyxl (it is a planqa dependency)"
        ) from exc
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "检索结果"
    sheet.append(EXPORT_COLUMNS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row_number, row in enumerate(hit_rows(hits), start=2):
        for column, value in enumerate(row, start=1):
            cell = sheet.cell(row=row_number, column=column)
            if isinstance(value, str):
                # Forcing the type after assigning keeps "=..." a string, not a formula.
                cell.value = _ILLEGAL_XML_RE.sub("", value)
                cell.data_type = "s"
            else:
                cell.value = value
    widths = [6, 22, 40, 26, 40, 10, 10, 10, 10, 10, 100]
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=column).column_letter].width = width
    for cell in sheet["K"][1:]:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A2"
    workbook.save(path)
    return path
