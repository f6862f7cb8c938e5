"""What the CLI checks before it loads anything, and how it writes JSON lines.

Kept out of ``ui/cli.py`` (the commands) so that each check is one small, testable function:

* **Locations first.** ``planqa index`` checks that the index folder can be created and written
  *before* it reads and embeds the corpus: a folder path that is a file, lies under a file, or
  sits on a read-only or unwritable file system was a traceback, on a read-only file system only
  after all the embedding work.
* **Question files line by line.** ``planqa ask --questions`` reads and checks the whole file
  before any model loads, so a bad file fails in a moment. A line that is not UTF-8, not JSON,
  or has an id JSON cannot represent (``NaN``, ``1e400``) gets its own error row; the other
  lines are still answered.
* **Output is always valid JSON.** Every line written is strict JSON (no ``NaN``) in valid
  UTF-8 (lone surrogates replaced), whatever came in.
"""

from __future__ import annotations

import codecs
import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from planqa.corpus.errors import InputError
from planqa.corpus.text_edges import json_safe, valid_text

#: How the fix is phrased wherever the index folder is the problem.
CHOOSE_INDEX = "choose another folder with --index DIR or PLANQA_INDEX_DIR"


def json_text(data: Any, *, indent: int | None = None) -> str:
    """Strict JSON (never ``NaN``/``Infinity``) of text that any UTF-8 stream can take."""
    return json.dumps(json_safe(data), ensure_ascii=False, allow_nan=False, indent=indent)


def optional_text(value: str | None) -> str | None:
    """A command-line argument made valid text (see :mod:`corpus.text_edges`)."""
    return None if value is None else valid_text(value)


# --------------------------------------------------------------------------- locations


def check_writable_dir(path: Path, what: str = "index folder", fix: str = CHOOSE_INDEX) -> None:
    """Create ``path`` if needed and prove a file can be written in it, or raise InputError.

    Permission bits cannot answer this (root ignores them; a read-only mount or a full disk
    does not show in them), so a probe file is created and removed.
    """
    blocker = _non_directory(path)
    if blocker == path:
        raise InputError(f"{what} {path} is a file, not a folder; {fix}")
    if blocker is not None:
        raise InputError(f"{what} {path} cannot be created: {blocker} is a file; {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".planqa-write-check-", dir=path)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        reason = {
            errno.EROFS: "the file system is read-only",
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
            errno.ENOSPC: "the disk is full",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise InputError(f"{what} {path} is not writable ({reason}); {fix}") from None


def _non_directory(path: Path) -> Path | None:
    """``path`` or its nearest existing ancestor when that is not a folder, else None."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def check_index_locations(settings: Any) -> None:
    """Where ``planqa index`` will write: the index folder and, for real models with the
    embedding cache on, the cache folder (it holds the vector cache)."""
    check_writable_dir(settings.resolved_index_dir)
    if settings.embedding_cache and not str(settings.embedding_model).startswith("hash"):
        check_writable_dir(
            settings.cache_dir,
            "cache folder",
            "choose another with PLANQA_CACHE_DIR, or set PLANQA_EMBEDDING_CACHE=false",
        )


# --------------------------------------------------------------------------- question files


def read_questions(path: Path) -> list[dict[str, Any]]:
    """Batch input: one JSON object per line with ``question`` (and usually ``id``).

    Returns one row per non-blank line: ``{"id", "line", "question"}`` to answer, or
    ``{"id": None, "line", "error"}``. Only a file that cannot be read at all is an InputError.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the questions file ({exc.strerror or exc}); "
            'give a JSONL file with one {"id": ..., "question": ...} per line'
        ) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{path}: the questions file is UTF-16; save it as UTF-8")
    data = data.removeprefix(codecs.BOM_UTF8)
    rows = []
    # bytes.splitlines: \n, \r\n and \r only (str.splitlines would also split inside a JSON
    # string at U+2028 and other separators), and undecodable bytes stay on their own line.
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            rows.append({"line": number, **_question_row(raw)})
        except ValueError as exc:
            rows.append({"id": None, "line": number, "error": f"line {number}: {exc}"})
    return rows


def _question_row(raw: bytes) -> dict[str, Any]:
    """``{"id", "question"}`` from one line, or ValueError saying what is wrong with it."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1}); "
            "save the file as UTF-8"
        ) from None
    try:
        row = json.loads(line, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("JSON nested too deeply; expected a flat object") from None
    if not isinstance(row, dict) or not isinstance(row.get("question"), str):
        raise ValueError("expected an object with a string 'question'")
    ident = row.get("id")
    if isinstance(ident, bool) or not isinstance(ident, str | int | float | None):
        raise ValueError(f"'id' must be a string or a number, not {type(ident).__name__}")
    if isinstance(ident, str):
        ident = valid_text(ident)
    return {"id": ident, "question": valid_text(row["question"])}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f'{name} is not valid JSON; write it as a string ("{name}")')


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is too large for JSON; write it as a string")
    return value
