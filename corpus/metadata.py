"""Per-document metadata from the corpus manifest (``manifest.json`` beside the documents).

The manifest is the source of truth for region names and aliases; documents it does not list get
their metadata inferred (``corpus/inference.py``), so a user can drop a new plan into the folder
and search it at once, then fix what inference left uncertain here.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

from planqa.corpus.documents import DocumentMeta
from planqa.corpus.errors import DocumentError

MANIFEST_NAME = "manifest.json"


def load_manifest(directory: Path) -> dict[str, DocumentMeta]:
    """Map file name to metadata; an absent manifest is an empty mapping, a broken one an error."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        raw = json.loads(manifest_text(path))
        entries = raw["documents"] if isinstance(raw, dict) else raw
        return {entry["file"]: _meta_from_entry(entry) for entry in entries}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DocumentError(
            f"{path}: not a valid corpus manifest ({exc}); expected "
            '{"documents": [{"file": ..., "region": ..., "title": ...}, ...]}'
        ) from exc


def manifest_text(path: Path) -> str:
    """The manifest decoded: UTF-8 (with or without BOM), UTF-16 with a BOM, else GB18030.

    Chinese Windows editors save "ANSI" text as GBK, and GB18030 is its superset, so that is
    the one fallback; it is decoded strictly, never guessed by a detector (charset detection
    took a short GBK manifest for Korean and would have renamed every region). Anything else
    is a DocumentError that says to save the file as UTF-8.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read the corpus manifest ({exc.strerror})") from None
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    problem = None
    for encoding in ("utf-16",) if utf16 else ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            problem = exc
    raise DocumentError(
        f"{path}: the corpus manifest is not valid {'UTF-16' if utf16 else 'UTF-8 or GBK'} "
        f"text ({problem}); save it as UTF-8"
    )


_TEXT_FIELDS = ("file", "region", "title", "kind", "period", "date", "issuer", "scope")


def _meta_from_entry(entry: dict) -> DocumentMeta:
    """Types are checked, so ``"region": 123`` is an error and ``"aliases": "海州"`` one alias,
    not the aliases 海 and 州."""
    for name in _TEXT_FIELDS:
        if name in entry and not isinstance(entry[name], str):
            raise TypeError(f"{entry.get('file', '?')}: {name!r} must be a string")
    aliases = entry.get("aliases", ())
    aliases = (aliases,) if isinstance(aliases, str) else aliases
    if not all(isinstance(alias, str) for alias in aliases):
        raise TypeError(f"{entry.get('file', '?')}: 'aliases' must be a list of strings")
    return DocumentMeta(
        file=entry["file"],
        region=entry["region"],
        title=entry.get("title", ""),
        aliases=tuple(aliases),
        kind=entry.get("kind", ""),
        period=entry.get("period", ""),
        date=entry.get("date", ""),
        issuer=entry.get("issuer", ""),
        scope=entry.get("scope", ""),
    )
