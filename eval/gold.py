"""Gold question sets: loading, validating, and pinning each evidence quote to character offsets.

A gold file is hand-written, so it is validated as a whole before use and every bad line is
reported at once (fixing one typo per run is slow). Evidence quotes are located in the documents
the index was built from: a quote that cannot be found would make a question silently unhittable
and every metric on it a false zero, so it is an error, never a skip.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from planqa.corpus.documents import Document
from planqa.corpus.errors import InputError

#: Question types of the gold format (see the gold README); the validator checks against these.
QUESTION_TYPES = ("fact", "which_region", "list", "compare", "paraphrase", "unanswerable")
#: Field name -> accepted JSON type, in the order the README lists them.
REQUIRED_FIELDS: dict[str, type] = {
    "id": str,
    "question": str,
    "answers": list,
    "evidence": list,
    "type": str,
    "answerable": bool,
}


#: The development gold set shipped with planqa (a copy of shared/eval/dev.jsonl).
BUNDLED_DEV_GOLD = Path(__file__).resolve().parent / "gold" / "dev.jsonl"


@dataclass(frozen=True)
class Evidence:
    """A supporting quote: an exact substring of the body text of ``doc`` (a corpus file name)."""

    doc: str
    quote: str


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    type: str
    answerable: bool


class EvidenceSpan(NamedTuple):
    """Where a quote sits: ``documents[doc].text[start:end]`` is the quote (or a spaced variant)."""

    doc: str
    start: int
    end: int


@dataclass(frozen=True)
class LocatedEvidence:
    """One evidence piece with every place its quote occurs (a quote may occur more than once)."""

    doc: str
    quote: str
    spans: tuple[tuple[int, int], ...]


# --------------------------------------------------------------------------- loading


def load_gold(path: str | Path) -> list[GoldItem]:
    """Read a gold JSONL file; raise InputError naming every bad line if any line is bad."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError as exc:
        raise InputError(
            f"gold file {path} does not exist; pass the path of a .jsonl gold set"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read gold file {path} as UTF-8 ({exc})") from exc
    items, problems = parse_gold_lines(lines)
    if problems:
        listed = "\n".join(f"  {problem}" for problem in problems)
        raise InputError(f"{path}: {len(problems)} problem(s) in the gold file:\n{listed}")
    if not items:
        raise InputError(f"{path}: the gold file has no items; add one JSON object per line")
    return items


def parse_gold_lines(lines: Iterable[str]) -> tuple[list[GoldItem], list[str]]:
    """Parse every non-blank line; return the good items and "line N: ..." problems for the rest."""
    items: list[GoldItem] = []
    problems: list[str] = []
    first_line_of_id: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record, errors = _parse_record(line)
        item_id = record.get("id") if record is not None else None
        if isinstance(item_id, str) and item_id:
            if item_id in first_line_of_id:
                first = first_line_of_id[item_id]
                errors.append(f"duplicate id {item_id!r} (first used on line {first})")
            else:
                first_line_of_id[item_id] = number
        if errors:
            problems.extend(f"line {number}: {error}" for error in errors)
        elif record is not None:
            items.append(_to_item(record))
    return items, problems


def _parse_record(line: str) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, [f"bad JSON ({exc.msg} at column {exc.colno})"]
    if not isinstance(record, dict):
        return None, [f"expected a JSON object, got {type(record).__name__}"]
    return record, validate_record(record)


def validate_record(record: Mapping[str, Any]) -> list[str]:
    """Everything wrong with one record, as short phrases (empty when the record is valid)."""
    errors = _field_errors(record)
    if errors:  # the consistency rules below need well-typed fields
        return errors
    return (
        _string_list_errors("answers", record["answers"])
        + _evidence_errors(record["evidence"])
        + _consistency_errors(record)
    )


def _field_errors(record: Mapping[str, Any]) -> list[str]:
    errors = []
    for name, kind in REQUIRED_FIELDS.items():
        if name not in record:
            errors.append(f"missing field {name!r}")
        elif not _has_json_type(record[name], kind):
            found = type(record[name]).__name__
            errors.append(f"field {name!r} must be a JSON {_json_type(kind)}, got {found}")
        elif kind is str and not record[name].strip():
            errors.append(f"field {name!r} is empty")
    unknown = sorted(set(record) - set(REQUIRED_FIELDS))
    if unknown:
        errors.append(
            f"unknown field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(REQUIRED_FIELDS)}"
        )
    if isinstance(record.get("type"), str) and record["type"] not in QUESTION_TYPES:
        errors.append(f"unknown type {record['type']!r}; choose one of {', '.join(QUESTION_TYPES)}")
    return errors


def _has_json_type(value: Any, kind: type) -> bool:
    """``isinstance`` except that JSON true/false is not accepted where a string or array is."""
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _json_type(kind: type) -> str:
    return {str: "string", list: "array", bool: "boolean (true/false)"}[kind]


def _string_list_errors(name: str, values: list[Any]) -> list[str]:
    bad = [i for i, value in enumerate(values) if not isinstance(value, str) or not value.strip()]
    return [f"{name}[{i}] must be a non-empty string" for i in bad]


def _evidence_errors(evidence: list[Any]) -> list[str]:
    errors = []
    for i, piece in enumerate(evidence):
        if not isinstance(piece, dict):
            errors.append(f'evidence[{i}] must be an object {{"doc": ..., "quote": ...}}')
            continue
        for key in ("doc", "quote"):
            if not isinstance(piece.get(key), str) or not piece[key].strip():
                errors.append(f"evidence[{i}].{key} must be a non-empty string")
        extra = sorted(set(piece) - {"doc", "quote"})
        if extra:
            errors.append(f"evidence[{i}] has unknown key(s) {', '.join(map(repr, extra))}")
    return errors


def _consistency_errors(record: Mapping[str, Any]) -> list[str]:
    errors = []
    answerable, kind = record["answerable"], record["type"]
    if not answerable:
        if record["answers"]:
            errors.append("answerable is false but answers is not empty")
        if record["evidence"]:
            errors.append("answerable is false but evidence is not empty")
        if kind != "unanswerable":
            errors.append(f"answerable is false but type is {kind!r}; use 'unanswerable'")
        return errors
    if kind == "unanswerable":
        errors.append("type is 'unanswerable' but answerable is true")
    if not record["answers"]:
        errors.append("answerable is true but answers is empty")
    if not record["evidence"]:
        errors.append("answerable is true but evidence is empty")
    docs = {p.get("doc") for p in record["evidence"] if isinstance(p, dict)}
    if kind == "compare" and len(docs) < 2:
        errors.append("a compare item must cite evidence from at least two documents")
    return errors


def _to_item(record: Mapping[str, Any]) -> GoldItem:
    return GoldItem(
        id=record["id"],
        question=record["question"],
        answers=tuple(record["answers"]),
        evidence=tuple(Evidence(p["doc"], p["quote"]) for p in record["evidence"]),
        type=record["type"],
        answerable=record["answerable"],
    )


# --------------------------------------------------------------------------- evidence offsets


def find_quote(quote: str, text: str) -> tuple[tuple[int, int], ...]:
    """Every non-overlapping ``(start, end)`` of ``quote`` in ``text``.

    Exact matches win. Otherwise both sides are compared after NFKC, lower-casing and removing
    whitespace, because a quote typed as "2025年" must still find "2025 年" in a PDF extraction;
    an offset map turns the match back into offsets of the original text.

    >>> find_quote("53亿元", "增长 653 亿元，达 53亿元")
    ((12, 16),)
    >>> find_quote("653亿元", "增长 653 亿元")
    ((3, 9),)
    >>> find_quote("缺失", "增长")
    ()
    """
    spans = _all_occurrences(quote, text)
    if spans:
        return spans
    compact_quote, _ = compact_with_offsets(quote)
    compact_text, offsets = compact_with_offsets(text)
    if not compact_quote:
        return ()
    return tuple(
        (offsets[start], offsets[end - 1] + 1)
        for start, end in _all_occurrences(compact_quote, compact_text)
    )


def _all_occurrences(needle: str, haystack: str) -> tuple[tuple[int, int], ...]:
    spans = []
    position = haystack.find(needle)
    while needle and position >= 0:
        spans.append((position, position + len(needle)))
        position = haystack.find(needle, position + len(needle))
    return tuple(spans)


def compact_with_offsets(text: str) -> tuple[str, list[int]]:
    """Normalise ``text`` (NFKC, lower case, no whitespace) and map each output char to its source.

    >>> compact_with_offsets("Ａ １")
    ('a1', [0, 2])
    """
    chars: list[str] = []
    offsets: list[int] = []
    for index, char in enumerate(text):
        for normalised in unicodedata.normalize("NFKC", char).lower():
            if not normalised.isspace():
                chars.append(normalised)
                offsets.append(index)
    return "".join(chars), offsets


def locate_pieces(item: GoldItem, documents: Mapping[str, Document]) -> tuple[LocatedEvidence, ...]:
    """Each evidence piece of ``item`` with its spans; InputError if any quote cannot be found."""
    located, problems = _locate(item, documents)
    if problems:
        raise InputError(f"gold item {item.id}: " + "; ".join(problems))
    return located


def locate_evidence(item: GoldItem, documents: Mapping[str, Document]) -> list[EvidenceSpan]:
    """Every ``(doc, start, end)`` where one of the item's quotes occurs, in evidence order."""
    return [
        EvidenceSpan(piece.doc, start, end)
        for piece in locate_pieces(item, documents)
        for start, end in piece.spans
    ]


def evidence_problems(items: Iterable[GoldItem], documents: Mapping[str, Document]) -> list[str]:
    """Every evidence quote of ``items`` that is not in ``documents``, as "id: ..." phrases."""
    problems = []
    for item in items:
        _, item_problems = _locate(item, documents)
        problems.extend(f"{item.id}: {problem}" for problem in item_problems)
    return problems


def check_evidence(items: Iterable[GoldItem], documents: Mapping[str, Document]) -> None:
    """Raise one InputError listing every unlocatable quote, before any metric is computed."""
    problems = evidence_problems(items, documents)
    if problems:
        listed = "\n".join(f"  {problem}" for problem in problems)
        raise InputError(
            f"{len(problems)} evidence quote(s) are not in the indexed documents; fix the gold "
            f"file or index the documents it cites:\n{listed}"
        )


def _locate(
    item: GoldItem, documents: Mapping[str, Document]
) -> tuple[tuple[LocatedEvidence, ...], list[str]]:
    located, problems = [], []
    for i, piece in enumerate(item.evidence):
        document = documents.get(piece.doc)
        if document is None:
            problems.append(
                f"evidence[{i}] cites {piece.doc!r}, which is not among the "
                f"{len(documents)} indexed documents"
            )
            continue
        spans = find_quote(piece.quote, document.text)
        if not spans:
            problems.append(f"evidence[{i}] quote {piece.quote!r} is not in {piece.doc}")
            continue
        located.append(LocatedEvidence(piece.doc, piece.quote, spans))
    return tuple(located), problems
