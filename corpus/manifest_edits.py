"""Changing a document's entry in the corpus manifest: what staff edit in the 知识库 section and
``PATCH /api/v1/documents/{id}`` sends.

The manifest (``manifest.json`` beside the documents, read by corpus/metadata.py) is where a
document's region, aliases, title and the rest live once a person has settled them: an edit is
written there, so it survives a restart and every later ``planqa index`` of the folder, and the
index is then rebuilt for that one document (ui/corpus_writer.py). Why here and not in the
index: the index is derived and may be rebuilt from the folder at any time; the manifest is
the folder's own record.

* **Checked before anything is written.** :func:`checked_edit` accepts only the editable
  fields, as strings (aliases: a list, or one string split at 、，, ; and spaces), strips
  control characters, caps lengths and requires a region, so a bad edit is one clear
  InputError and the manifest is untouched.
* **Atomic and lossless.** :func:`write_entry` rewrites the manifest through a temporary file
  and ``os.replace`` (a crash leaves the old or the new file, never half of one), keeps every
  other entry and every key it does not know (a user's own notes), and keeps the file's
  ``{"documents": [...]}`` or bare-list shape.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import Any

from planqa.corpus.documents import DocumentMeta
from planqa.corpus.errors import DocumentError, InputError
from planqa.corpus.metadata import MANIFEST_NAME, manifest_text

#: The fields a person may change, with the most characters each may hold.
EDITABLE_FIELDS = {
    "region": 60,
    "title": 200,
    "kind": 30,
    "period": 30,
    "date": 30,
    "issuer": 100,
    "scope": 20,
}
SCOPES = ("", "national", "province", "prefecture", "county", "zone")
MAX_ALIASES = 20
_ALIAS_SEPARATORS = re.compile(r"[、，,;；\s]+")


def checked_edit(fields: Any) -> dict[str, Any]:
    """The edit as clean values (``aliases`` a tuple), or InputError naming what is wrong."""
    if not isinstance(fields, dict) or not fields:
        raise InputError(
            "a metadata edit is a JSON object of fields to change, e.g. "
            '{"region": "海州区", "aliases": ["海州"]}'
        )
    allowed = (*EDITABLE_FIELDS, "aliases")
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise InputError(
            f"cannot edit {', '.join(map(repr, unknown))}: the editable fields are "
            f"{', '.join(allowed)}"
        )
    edit: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "aliases":
            edit[name] = _aliases(value)
            continue
        if not isinstance(value, str):
            raise InputError(f"{name!r} must be a string, not {type(value).__name__}")
        text = _clean(value)
        if len(text) > EDITABLE_FIELDS[name]:
            raise InputError(f"{name!r} is longer than {EDITABLE_FIELDS[name]} characters")
        edit[name] = text
    if "region" in edit and not edit["region"]:
        raise InputError("'region' cannot be empty: every document belongs to a region")
    if edit.get("scope", "") not in SCOPES:
        raise InputError(f"'scope' must be one of {', '.join(s or '(empty)' for s in SCOPES)}")
    return edit


def edited_meta(meta: DocumentMeta, edit: dict[str, Any]) -> DocumentMeta:
    """``meta`` with ``edit`` applied: a person's values are no longer inferred or uncertain."""
    return replace(meta, **edit, inferred=False, uncertain=())


def manifest_entry(meta: DocumentMeta) -> dict[str, Any]:
    """The manifest entry that makes the loader give ``meta``'s person-settled fields."""
    entry: dict[str, Any] = {"file": meta.file, "region": meta.region}
    if meta.aliases:
        entry["aliases"] = list(meta.aliases)
    for name in ("title", "kind", "period", "date", "issuer", "scope"):
        if getattr(meta, name):
            entry[name] = getattr(meta, name)
    return entry


def write_entry(directory: Path, entry: dict[str, Any]) -> bytes | None:
    """Put ``entry`` in the manifest of ``directory`` (replacing the one for its file, keeping
    that one's other keys); the manifest's bytes before, None if there was none."""
    before, top, entries = _read(directory)
    for index, old in enumerate(entries):
        if old.get("file") == entry["file"]:
            kept = {k: v for k, v in old.items() if k not in (*EDITABLE_FIELDS, "aliases")}
            entries[index] = {**kept, **entry}
            break
    else:
        entries.append(entry)
    _write(directory, top, entries)
    return before


def remove_entry(directory: Path, file: str) -> bytes | None:
    """Drop ``file``'s entry (if any) from the manifest; the bytes before, None if unchanged."""
    before, top, entries = _read(directory)
    kept = [entry for entry in entries if entry.get("file") != file]
    if len(kept) == len(entries):
        return None
    _write(directory, top, kept)
    return before


def restore(directory: Path, before: bytes | None) -> None:
    """Put back the manifest :func:`write_entry` returned (None: there was none)."""
    path = directory / MANIFEST_NAME
    if before is None:
        path.unlink(missing_ok=True)
    else:
        _atomic_write(path, before)


def _read(directory: Path) -> tuple[bytes | None, dict[str, Any] | None, list[dict[str, Any]]]:
    """(bytes, the top-level object or None for a bare list, its entries)."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None, {"version": 1}, []
    before = path.read_bytes()
    try:
        raw = json.loads(manifest_text(path))
        entries = raw["documents"] if isinstance(raw, dict) else raw
    except (json.JSONDecodeError, KeyError) as exc:
        raise DocumentError(f"{path}: not a valid corpus manifest ({exc}); fix it first") from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DocumentError(f"{path}: not a valid corpus manifest; fix or remove it first")
    return before, raw if isinstance(raw, dict) else None, entries


def _write(directory: Path, top: dict[str, Any] | None, entries: list[dict[str, Any]]) -> None:
    body: Any = entries if top is None else {**top, "documents": entries}
    text = json.dumps(body, ensure_ascii=False, indent=2) + "\n"
    _atomic_write(directory / MANIFEST_NAME, text.encode("utf-8"))


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _clean(value: str) -> str:
    """NFC, control and format characters removed, runs of space collapsed."""
    text = unicodedata.normalize("NFC", value)
    text = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    return " ".join(text.split())


def _aliases(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        parts = _ALIAS_SEPARATORS.split(value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = value
    else:
        raise InputError("'aliases' must be a list of strings (or one string, 、-separated)")
    aliases = tuple(dict.fromkeys(a for a in (_clean(p) for p in parts) if a))
    if len(aliases) > MAX_ALIASES or any(len(a) > EDITABLE_FIELDS["region"] for a in aliases):
        raise InputError(f"at most {MAX_ALIASES} aliases, each a region name")
    return aliases
