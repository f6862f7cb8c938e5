"""Per-document metadata: read from the corpus manifest, or inferred from a document's first lines.

The manifest (``manifest.json`` beside the documents) is the source of truth for region names and
aliases; inference exists so that a user can drop a new plan into the folder and search it at once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from corpus.documents import DocumentMeta
from corpus.errors import DocumentError

MANIFEST_NAME = "manifest.json"

#: A region name: a run of Han characters ending in an administrative or zone suffix.
_REGION = re.compile(
    r"[\u4e00-\u9fff]{2,16}?"
    r"(?:经济技术开发区|高新技术产业开发区|经济开发区|开发区|高新区|新区|园区|自治州|自治县|市|区|县|州)"
)
_KINDS = (
    ("五年规划", "五年规划纲要"),
    ("工作计划", "年度工作计划"),
    ("政府工作报告", "政府工作报告"),
    ("党代会", "党代会报告"),
    ("代表大会", "党代会报告"),
)
_PERIOD = re.compile(r"(20\d{2})\s*[—–\-~至]\s*(20\d{2})")
_FIVE_YEAR_PLAN = {"十三": "2016—2020", "十四": "2021—2025", "十五": "2026—2030"}
_ISO_DATE = re.compile(r"(20\d{2})[-/.](\d{1,2})[-/.](\d{1,2})")
_CN_DATE = re.compile(r"(20\d{2})年(\d{1,2})月(\d{1,2})日")
_YEAR = re.compile(r"(20\d{2})年")
_HEAD_CHARS = 600


def load_manifest(directory: Path) -> dict[str, DocumentMeta]:
    """Map file name to metadata; an absent manifest is an empty mapping, a broken one an error."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = raw["documents"] if isinstance(raw, dict) else raw
        return {entry["file"]: _meta_from_entry(entry) for entry in entries}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DocumentError(
            f"{path}: not a valid corpus manifest ({exc}); expected "
            '{"documents": [{"file": ..., "region": ..., "title": ...}, ...]}'
        ) from exc


def _meta_from_entry(entry: dict) -> DocumentMeta:
    return DocumentMeta(
        file=entry["file"],
        region=entry["region"],
        title=entry.get("title", ""),
        aliases=tuple(entry.get("aliases", ())),
        kind=entry.get("kind", ""),
        period=entry.get("period", ""),
        date=entry.get("date", ""),
        issuer=entry.get("issuer", ""),
    )


def infer_meta(file: str, text: str) -> DocumentMeta:
    """Best-effort metadata from the opening lines, flagged ``inferred`` so users check it."""
    head = text[:_HEAD_CHARS]
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    title = lines[0][:120] if lines else Path(file).stem
    region_match = _REGION.search(title) or _REGION.search(head)
    region = region_match.group(0) if region_match else Path(file).stem
    return DocumentMeta(
        file=file,
        region=region,
        title=title,
        kind=next((kind for marker, kind in _KINDS if marker in head), ""),
        period=_infer_period(head),
        date=_infer_date(head),
        inferred=True,
    )


def _infer_period(head: str) -> str:
    match = _PERIOD.search(head)
    if match:
        return f"{match.group(1)}—{match.group(2)}"
    for ordinal, period in _FIVE_YEAR_PLAN.items():
        if f"第{ordinal}个五年" in head or f"{ordinal}五" in head:
            return period
    return ""


def _infer_date(head: str) -> str:
    for pattern in (_ISO_DATE, _CN_DATE):
        match = pattern.search(head)
        if match:
            year, month, day = match.groups()
            return f"{year}-{int(month):02d}-{int(day):02d}"
    match = _YEAR.search(head)
    return match.group(1) if match else ""
