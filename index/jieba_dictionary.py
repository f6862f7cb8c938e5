"""jieba's main dictionary as a read-only SQLite file, for processes that only cut questions.

jieba keeps its ~580K words and prefixes in one Python dict, unmarshalled from a cache on first
use: ~2.4 s here, half of a cold ``planqa ask``. A question needs a few hundred lookups, so a
query process looks words up in SQLite instead (opened in milliseconds, ~5 µs per lookup,
remembered per process). jieba still does all the segmenting; only the storage of its
frequency table changes, and the same words with the same counts give the same cut
(tests/test_retrievers.py compares both on the bundled corpus).

Bulk tokenising (building an index) keeps the in-memory dict: millions of lookups there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import jieba

log = logging.getLogger(__name__)

_SCHEMA_VERSION = 1


@cache
def base_dictionary() -> tuple[dict[str, int], int]:
    """jieba's main dictionary in memory, loaded once per process (~2.4 s)."""
    jieba.setLogLevel(logging.WARNING)
    base = jieba.Tokenizer()
    base.initialize()
    return base.FREQ, base.total


@cache
def dictionary_path(cache_dir: Path) -> Path:
    """A file name that changes with jieba's version and dictionary contents."""
    with jieba.Tokenizer().get_dict_file() as dictionary:  # jieba opens it for us
        digest = hashlib.sha256(dictionary.read()).hexdigest()[:16]
    name = f"jieba-{jieba.__version__}-{digest}-v{_SCHEMA_VERSION}.sqlite3"
    return cache_dir / "jieba" / name


class SqliteFrequencies(Mapping[str, int]):
    """Word -> frequency, read from SQLite on demand and remembered (misses too)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self._seen: dict[str, int | None] = {}
        with self._lock:
            rows = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if rows.get("schema") != _SCHEMA_VERSION or "total" not in rows or "words" not in rows:
            raise sqlite3.DatabaseError(f"{path} is not a complete planqa jieba dictionary")
        self.total: int = rows["total"]
        self._size: int = rows["words"]

    def __getitem__(self, word: str) -> int:
        try:
            frequency = self._seen[word]
        except KeyError:
            with self._lock:
                row = self._db.execute("SELECT freq FROM words WHERE word = ?", (word,)).fetchone()
            frequency = self._seen[word] = row[0] if row else None
        if frequency is None:
            raise KeyError(word)
        return frequency

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            words = [row[0] for row in self._db.execute("SELECT word FROM words")]
        return iter(words)

    def __len__(self) -> int:
        return self._size


def write_dictionary(path: Path, frequencies: Mapping[str, int], total: int) -> None:
    """Written to a temporary file and renamed, so a reader never sees half a dictionary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        with sqlite3.connect(temporary) as db:
            db.execute("CREATE TABLE words (word TEXT PRIMARY KEY, freq INTEGER) WITHOUT ROWID")
            db.executemany("INSERT INTO words VALUES (?, ?)", frequencies.items())
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER)")
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("schema", _SCHEMA_VERSION), ("total", total), ("words", len(frequencies))],
            )
        db.close()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def query_dictionary(cache_dir: Path) -> tuple[Mapping[str, int], int]:
    """The SQLite dictionary, written from the in-memory one first if missing or damaged.

    Falls back to the in-memory dictionary when the cache cannot be written (read-only home),
    which is only slower.
    """
    path = dictionary_path(cache_dir)
    try:
        frequencies = SqliteFrequencies(path)
        return frequencies, frequencies.total
    except sqlite3.Error as error:
        if path.exists():
            log.warning("rewriting the jieba dictionary cache %s: %s", path, error)
    frequencies, total = base_dictionary()
    try:
        write_dictionary(path, frequencies, total)
        written = SqliteFrequencies(path)
        return written, written.total
    except (OSError, sqlite3.Error) as error:
        log.warning("cannot cache the jieba dictionary in %s: %s", path.parent, error)
    return frequencies, total


def prepare_query_dictionary(cache_dir: Path) -> None:
    """Called by index builds (which hold the in-memory dictionary anyway), so the first
    question after `planqa index` does not pay the ~4 s of loading and writing it."""
    if not dictionary_path(cache_dir).is_file():
        query_dictionary(cache_dir)
