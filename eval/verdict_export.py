"""The 评测 tab's verdict export: a CSV an evaluator opens in Excel and a script can read.

The verdicts alone are exported by ``planqa eval-verdicts --csv`` (English column names, codes
only, for tools). This export is for people, like the 检索 tab's: Chinese column names and
values (正确/部分正确/错误, 支持/不支持, the question type as a word), with the question, the
answer and the automatic verdicts beside each verdict. The codes are kept too, in the last
columns (判定代码 … 引用命中代码), so a script never has to translate the words back.

Two spreadsheet hazards are handled as in :mod:`ui.export`: text starting with ``=``, ``+``,
``-``, ``@`` (or a tab/CR) gets a leading ``'`` (OWASP), and the file is UTF-8 *with* a
byte-order mark, or Excel shows the Chinese as mojibake.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planqa.eval.verdicts import VerdictStore

if TYPE_CHECKING:
    from planqa.eval.review import Review

#: Verdicts and question types in the words the 评测 tab uses (the export writes them too).
VERDICT_NAMES = {"correct": "正确", "partial": "部分正确", "wrong": "错误"}
TYPE_NAMES = {
    "fact": "事实",
    "which_region": "哪个地区",
    "list": "列举",
    "compare": "比较",
    "paraphrase": "改写",
    "unanswerable": "不可回答",
}
#: The export's columns, in Chinese like the 检索 exports; the last five keep the machine codes
#: (the ``planqa eval-verdicts --csv`` values) so tools need not translate the words back.
EXPORT_COLUMNS = (
    "运行",
    "题目 ID",
    "评测人",
    "人工判定",
    "引用是否支持回答",
    "备注",
    "判定时间（UTC）",
    "问题",
    "题型",
    "可回答",
    "planqa 回答",
    "金标答案",
    "自动判定",
    "自动判定：引用命中证据",
    "判定代码",
    "引用支持代码",
    "题型代码",
    "自动判定代码",
    "引用命中代码",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas (a leading ``'``; OWASP) and write None as empty."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _flag(value: Any) -> str:
    return "" if value is None else str(bool(value)).lower()


def _yes_no(value: Any, yes: str = "是", no: str = "否") -> str:
    return "" if value is None else (yes if value else no)


def export_csv(review: Review, store: VerdictStore, path: str | Path) -> int:
    """Every evaluator's latest verdicts on the run as CSV, with the question, the answer and
    the automatic verdicts beside each; returns the rows written.

    Headers and values in Chinese (an evaluator opens it in Excel), the codes in the last
    columns (a script reads those). UTF-8 with a byte-order mark (Excel shows Chinese
    correctly), formula-like cells neutralised (notes and answers are free text that a
    spreadsheet would otherwise run).
    """
    rows = {row["id"]: row for row in review.run.results}
    verdicts = store.verdicts(review.run_id)
    order = {row["id"]: index for index, row in enumerate(review.run.results)}
    verdicts.sort(key=lambda v: (order.get(v.question_id, len(order)), v.evaluator))
    with Path(path).open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        for verdict in verdicts:
            row = rows.get(verdict.question_id, {})
            auto = row.get("verdicts") or {}
            kind = str(row.get("type", ""))
            values = [
                verdict.run_id,
                verdict.question_id,
                verdict.evaluator,
                VERDICT_NAMES.get(verdict.verdict, verdict.verdict),
                _yes_no(verdict.citation_supports, "支持", "不支持"),
                verdict.note,
                verdict.timestamp,
                row.get("question", ""),
                TYPE_NAMES.get(kind, kind),
                _yes_no(row.get("answerable")),
                row.get("answer", ""),
                " / ".join(row.get("gold_answers") or []),
                _yes_no(auto.get("correct"), "正确", "错误"),
                _yes_no(auto.get("citation_hit")),
                verdict.verdict,
                _flag(verdict.citation_supports),
                kind,
                _flag(auto.get("correct")),
                _flag(auto.get("citation_hit")),
            ]
            writer.writerow([_cell(value) for value in values])
    return len(verdicts)
