"""The index directory on disk: versioned, written atomically, verified before use.

Layout::

    INDEX_DIR/CURRENT      {"version": "v-...", "manifest_sha256": "..."}  (replaced atomically)
    INDEX_DIR/v-<stamp>/manifest.json    settings, document catalogue, segments, file hashes
                        chunks/000001.jsonl + chunks/000001.keys.jsonl, ...     (segments)
                        documents/000001.jsonl, ...
                        bm25/, vectors.faiss + vector_rows.json (FAISS) or milvus.json (Milvus)

A build writes a complete new version beside the old one and only then swaps ``CURRENT`` with
``os.replace``; a process killed at any moment leaves the previous version loadable. ``CURRENT``
carries the manifest's hash and the manifest carries every file's size and hash, so an edited
manifest, a truncated FAISS file or chunks out of step with the vectors are refused, not used.
Everything is JSON, JSON Lines, .npy or FAISS's own format: loading an index never runs code.

Chunk rows and document texts live in segments of at most ``SEGMENT_ROWS`` rows, listed in order
in the manifest. What an update needs besides them is small and kept apart: the manifest's
catalogue holds every document's metadata, hash and chunk count, and each chunk segment has a keys
file with the id and document of its rows. A new version hard-links every segment whose rows it
keeps, taking size and hash from the previous manifest; only a segment that lost rows is
rewritten, and new rows fill the last segment, then new ones. At 100K chunks the rows are ~220 MB
of JSON: parsing, hashing and writing them again made up most of the time to add one document
(docs/scaling.md).

What is verified: a search (:meth:`IndexStore.load`) hashes every file, as it reads them all. An
update (:meth:`IndexStore.load_for_update`) hashes the files it reads and checks only the size of
the segment rows it links unread. A rows file damaged in place thus moves to the next version
under its recorded hash, where the next search refuses it and ``planqa index`` (which loads in
full) rebuilds; rows are only copied into a new file after their hash was checked, so damage is
never sealed under a new valid hash.

Writing (:meth:`IndexStore.write`, :meth:`IndexStore.tidy`) happens under the folder's writer
lock (index/lock.py), which a builder holds from reading the current version to switching
``CURRENT``: the clean-up after a switch deletes staging folders and versions other than the
current one, which is only safe when no other writer is half-way through its own.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson

from planqa.corpus.chunking import Chunk
from planqa.corpus.documents import Document, DocumentMeta, file_sha256
from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.bm25 import BM25Index
from planqa.index.lock import IndexLock
from planqa.index.vectorstore import VectorStore, load_vector_store

#: 3: hard-linked segments, document catalogue in the manifest (2: one chunks.jsonl and one
#: documents.jsonl per version; own BM25 arrays, vector stores keyed by chunk id).
FORMAT_VERSION = 3
CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
CHUNKS_DIR = "chunks"
DOCUMENTS_DIR = "documents"
BM25_DIR = "bm25"
ROWS, KEYS = ".jsonl", ".keys.jsonl"
#: The files of a segment. Documents need no keys file: the manifest's catalogue has the rest.
_PARTS = {CHUNKS_DIR: (ROWS, KEYS), DOCUMENTS_DIR: (ROWS,)}
#: Rows per segment: small enough that rewriting one (a replaced document, the last segment
#: taking new rows) is a few MB, large enough that 100K chunks make only ~25 segments.
SEGMENT_ROWS = 4096
#: Files up to this size are hashed on load; larger ones are checked by size only (load speed).
_HASH_LIMIT_BYTES = 256 * 2**20
#: Threads that hash and fsync files side by side (hashlib and fsync release the GIL).
_THREADS = 4
REBUILD_HINT = "rebuild it with `planqa index --rebuild`"

Loaded = TypeVar("Loaded", "IndexContents", "StoredVersion")


def planqa_version() -> str:
    try:
        return version("planqa")
    except PackageNotFoundError:
        return "0+unknown"


def catalogue_entry(document: Document, chunks: int) -> dict[str, Any]:
    """A document's entry in the manifest's catalogue: everything but its text."""
    return {
        **vars(document.meta),
        "encoding": document.encoding,
        "sha256": document.sha256,
        "chunks": chunks,
    }


def document_meta(entry: dict[str, Any]) -> DocumentMeta:
    fields = {k: entry[k] for k in DocumentMeta.__dataclass_fields__ if k in entry}
    fields["aliases"] = tuple(fields.get("aliases", ()))
    fields["uncertain"] = tuple(fields.get("uncertain", ()))
    return DocumentMeta(**fields)


def _chunk_key(chunk_id: str, doc: str) -> dict[str, str]:
    return {"id": chunk_id, "doc": doc}


def _chunk_lines(chunk: Chunk) -> tuple[bytes, ...]:
    return orjson.dumps(chunk), orjson.dumps(_chunk_key(chunk.id, chunk.doc))


def _document_lines(document: Document) -> tuple[bytes, ...]:
    return (orjson.dumps({"file": document.name, "text": document.text}),)


#: The lines (one per part) a new row of each segment kind is written as.
_LINES_OF: dict[str, Callable[[Any], tuple[bytes, ...]]] = {
    CHUNKS_DIR: _chunk_lines,
    DOCUMENTS_DIR: _document_lines,
}


def _segment_file(kind: str, name: str, part: str) -> str:
    return f"{kind}/{name}{part}"


def _segment_files(manifest: dict[str, Any]) -> list[str]:
    return [
        _segment_file(kind, segment["name"], part)
        for kind, parts in _PARTS.items()
        for segment in manifest["segments"][kind]
        for part in parts
    ]


def _lines(data: bytes) -> list[bytes]:
    """The lines of a JSON Lines file without their newlines (JSON escapes those in strings)."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def _damaged(path: Path, problem: str) -> IndexStoreError:
    return IndexStoreError(f"{path} {problem}; {REBUILD_HINT}")


def _verified_bytes(version_dir: Path, name: str, expected: dict[str, Any] | None) -> bytes:
    """The file's contents, refused unless they have the size and hash the manifest records."""
    path = version_dir / name
    if expected is None:
        raise _damaged(path, "is not listed in the manifest")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _damaged(path, f"is missing ({exc.strerror})") from exc
    if len(data) != expected["bytes"]:
        raise _damaged(path, f"has {len(data)} bytes, the manifest says {expected['bytes']}")
    if "sha256" in expected and hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise _damaged(path, "does not match its recorded hash")
    return data


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a load: the ~10^5 objects a load creates all
    stay alive, so the full collections they trigger scan the heap for nothing (~0.3 s of the
    time to add a document at 100K chunks)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _seal(path: Path) -> dict[str, Any]:
    """The size and hash of a file just written, once it is on disk."""
    size = path.stat().st_size
    entry: dict[str, Any] = {"bytes": size}
    if size <= _HASH_LIMIT_BYTES:
        entry["sha256"] = file_sha256(path)
    _fsync(path)
    return entry


def _seal_new_files(staging: _Staging) -> dict[str, dict[str, Any]]:
    """Seal every file of the staging directory it does not carry over.

    In threads, so that hashing one file (CPU) overlaps waiting for the disk to take another:
    at 100K chunks, ~300 MB of FAISS and BM25 files are new in every version.
    """
    paths = sorted(p for p in staging.directory.rglob("*") if p.is_file())
    names = [p.relative_to(staging.directory).as_posix() for p in paths]
    new = [(n, p) for n, p in zip(names, paths, strict=True) if n not in staging.carried]
    with ThreadPoolExecutor(_THREADS) as pool:
        entries = pool.map(_seal, [p for _, p in new])
        return dict(zip([n for n, _ in new], entries, strict=True))


def _segment_lines(
    version_dir: Path, manifest: dict[str, Any], kind: str, segment: dict[str, Any], part: str
) -> list[bytes]:
    name = _segment_file(kind, segment["name"], part)
    lines = _lines(_verified_bytes(version_dir, name, manifest["files"].get(name)))
    if len(lines) != segment["rows"]:
        raise _damaged(
            version_dir / name,
            f"holds {len(lines)} rows, the manifest says {segment['rows']}: the files are out "
            "of step",
        )
    return lines


def _read_segments(
    version_dir: Path, manifest: dict[str, Any], kind: str, part: str
) -> list[dict[str, Any]]:
    """Every row of ``kind`` in order, from the rows or the keys files."""
    return [
        orjson.loads(line)
        for segment in manifest["segments"][kind]
        for line in _segment_lines(version_dir, manifest, kind, segment, part)
    ]


@dataclass
class IndexContents:
    """Everything one index version holds, in memory."""

    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: list[Chunk]
    vectors: VectorStore
    bm25: BM25Index
    #: The version directory it was read from.
    directory: Path


@dataclass
class StoredVersion:
    """The current version as an update sees it: the catalogue, every chunk's id and document,
    the vectors and BM25, but no text (an update writes only new rows, so it never needs the
    old text)."""

    directory: Path
    manifest: dict[str, Any]
    #: Catalogue entries (see :func:`catalogue_entry`) by file name, in row order.
    documents: dict[str, dict[str, Any]]
    chunk_ids: list[str]
    chunk_docs: list[str]
    vectors: VectorStore
    bm25: BM25Index

    @classmethod
    def of(cls, contents: IndexContents) -> StoredVersion:
        """From a full load, which verified every file (and that the keys match the rows)."""
        return cls(
            contents.directory,
            contents.manifest,
            {entry["file"]: entry for entry in contents.manifest["documents"]},
            [c.id for c in contents.chunks],
            [c.doc for c in contents.chunks],
            contents.vectors,
            contents.bm25,
        )

    def chunks_mentioning(self, words: Collection[str]) -> dict[int, Chunk]:
        """The chunks, by row, whose stored row contains any of ``words`` in any field.

        For the update that re-tokenises old chunks because a region word came or went: a byte
        search of the rows files parses only the rows that match (parsing all 100K took ~0.8 s).
        They are read unhashed: rows taken from them drop out of their segment, which is then
        rewritten, and that verifies it first.
        """
        needles = [orjson.dumps(word)[1:-1] for word in words]  # as JSON writes them
        found: dict[int, Chunk] = {}
        first_row = 0
        try:
            for segment in self.manifest["segments"][CHUNKS_DIR]:
                path = self.directory / _segment_file(CHUNKS_DIR, segment["name"], ROWS)
                data = path.read_bytes()
                if any(needle in data for needle in needles):
                    lines = _lines(data)
                    if len(lines) != segment["rows"]:
                        raise _damaged(path, "does not hold the rows the manifest records")
                    for row, line in enumerate(lines, start=first_row):
                        if any(needle in line for needle in needles):
                            found[row] = Chunk(**orjson.loads(line))
                first_row += segment["rows"]
        except (OSError, orjson.JSONDecodeError, TypeError) as exc:
            raise _damaged(self.directory, f"has unreadable chunk rows ({exc})") from exc
        return found


@dataclass
class _Staging:
    """A version being written, and the files it carries over unread from the previous one."""

    directory: Path
    #: Carried files with the size and hash the previous manifest recorded.
    carried: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The carried files that are hard links: already durable, so not fsynced again.
    linked: set[str] = field(default_factory=set)

    def carry(self, source_dir: Path, name: str, entry: dict[str, Any]) -> None:
        try:
            os.link(source_dir / name, self.directory / name)
            self.linked.add(name)
        except OSError:  # a file system without hard links (or at its link limit): copy
            shutil.copyfile(source_dir / name, self.directory / name)
        self.carried[name] = entry


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _under_writer_lock(method: _Method) -> _Method:
    """Run a writing method under the folder's writer lock; re-entered (free) when the builder
    already holds it, and taken for the call when some other caller does not."""

    @functools.wraps(method)
    def locked(self: IndexStore, *args: Any, **kwargs: Any) -> Any:
        with self.writer_lock():
            return method(self, *args, **kwargs)

    return locked  # type: ignore[return-value]


class IndexStore:
    def __init__(self, directory: Path, *, lock_timeout: float = 60.0) -> None:
        self.directory = Path(directory).expanduser()
        #: Seconds a write waits for another writer's lock (``Settings.index_lock_timeout``).
        self.lock_timeout = lock_timeout

    def writer_lock(self, purpose: str | None = None) -> IndexLock:
        """The folder's writer lock (index/lock.py): hold it around read-modify-write."""
        return IndexLock(self.directory, self.lock_timeout, purpose=purpose)

    # ----------------------------------------------------------------- writing
    @_under_writer_lock
    def write(
        self,
        manifest: dict[str, Any],
        vectors: VectorStore,
        bm25: BM25Index,
        *,
        documents: Sequence[Document],
        chunks: Sequence[Chunk],
        previous: StoredVersion | None = None,
        kept_documents: np.ndarray | None = None,
        kept_chunks: np.ndarray | None = None,
    ) -> Path:
        """Write a complete new version, then switch ``CURRENT`` to it in one atomic step.

        Its rows are the rows of ``previous`` that ``kept_documents`` / ``kept_chunks`` (boolean
        masks over the previous rows) keep, in their order, followed by ``documents`` and
        ``chunks``.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()  # only dead writers' leftovers: we hold the lock
        staging = _Staging(self.directory / f".tmp-{uuid.uuid4().hex[:12]}")
        staging.directory.mkdir()
        try:
            segments = {
                DOCUMENTS_DIR: _write_segments(
                    staging, DOCUMENTS_DIR, documents, previous, kept_documents
                ),
                CHUNKS_DIR: _write_segments(staging, CHUNKS_DIR, chunks, previous, kept_chunks),
            }
            vectors.save(staging.directory)
            (staging.directory / BM25_DIR).mkdir()
            bm25.save(staging.directory / BM25_DIR)
            files = {**staging.carried, **_seal_new_files(staging)}
            manifest = {**manifest, "segments": segments, "files": dict(sorted(files.items()))}
            manifest_bytes = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
            (staging.directory / MANIFEST_FILE).write_bytes(manifest_bytes)
            for name in [*(staging.carried.keys() - staging.linked), MANIFEST_FILE]:
                _fsync(staging.directory / name)
            version_name = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            final = self.directory / version_name
            os.rename(staging.directory, final)
        except BaseException:
            shutil.rmtree(staging.directory, ignore_errors=True)
            raise
        self._switch_current(version_name, manifest_bytes)
        self._remove_old_versions(keep={version_name})
        return final

    def _switch_current(self, version_name: str, manifest_bytes: bytes) -> None:
        """Point ``CURRENT`` at a published version in one atomic step (the tests pause here)."""
        pointer = {
            "version": version_name,
            "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        }
        pointer_tmp = self.directory / f".{CURRENT_FILE}.{uuid.uuid4().hex[:8]}"
        with pointer_tmp.open("w", encoding="utf-8") as handle:
            json.dump(pointer, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(pointer_tmp, self.directory / CURRENT_FILE)

    @_under_writer_lock
    def tidy(self) -> None:
        """Remove what an interrupted build left behind: staging directories, and versions that
        ``CURRENT`` no longer points to (a build killed between the switch and the clean-up).
        A build that finds nothing to do calls this, so such leftovers never accumulate."""
        try:
            current, _ = self.current_version_dir()
        except IndexStoreError:
            return
        self._remove_stale_temporaries()
        self._remove_old_versions(keep={current.name})

    def _remove_stale_temporaries(self) -> None:
        for path in self.directory.glob(".tmp-*"):
            shutil.rmtree(path, ignore_errors=True)
        for path in self.directory.glob(f".{CURRENT_FILE}.*"):
            path.unlink(missing_ok=True)

    def _remove_old_versions(self, keep: set[str]) -> None:
        """Delete versions but ``keep`` and whatever ``CURRENT`` names as it is read now: never
        the version an index opens at, even were a writer to get here without the lock."""
        with suppress(IndexStoreError):
            keep = keep | {self.current_version_dir()[0].name}
        for path in self.directory.glob("v-*"):
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    # ----------------------------------------------------------------- reading
    def exists(self) -> bool:
        return (self.directory / CURRENT_FILE).is_file()

    def current_version_dir(self) -> tuple[Path, str]:
        pointer_path = self.directory / CURRENT_FILE
        if not pointer_path.is_file():
            raise IndexStoreError(
                f"no index at {self.directory}; build it with `planqa index` "
                "(or point --index / PLANQA_INDEX_DIR at an existing one)"
            )
        try:
            pointer = json.loads(pointer_path.read_text(encoding="utf-8"))
            return self.directory / pointer["version"], pointer["manifest_sha256"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise IndexStoreError(f"{pointer_path} is damaged ({exc}); {REBUILD_HINT}") from exc

    def read_manifest(self) -> dict[str, Any]:
        """The manifest of the current version, verified against the hash in ``CURRENT``."""
        return self._open_version()[1]

    def _open_version(self) -> tuple[Path, dict[str, Any]]:
        version_dir, expected_sha = self.current_version_dir()
        path = version_dir / MANIFEST_FILE
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IndexStoreError(f"{path} is missing ({exc.strerror}); {REBUILD_HINT}") from exc
        if hashlib.sha256(data).hexdigest() != expected_sha:
            raise IndexStoreError(
                f"{path} was edited or damaged since it was written; {REBUILD_HINT}"
            )
        manifest = orjson.loads(data)
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexStoreError(
                f"{path} has index format {manifest.get('format')!r}; this planqa reads format "
                f"{FORMAT_VERSION}; {REBUILD_HINT}"
            )
        return version_dir, manifest

    def load(self, mmap: bool = False, settings: Settings | None = None) -> IndexContents:
        """Load and verify the current version, texts and all (what a search needs).

        ``mmap`` maps BM25 arrays and the FAISS file instead of reading them (fast start, memory
        shared between processes; read-only, so not for updates); ``settings`` supplies the
        Milvus connection when the vectors live there.
        """
        return self._guarded(lambda: self._load_contents(mmap, settings))

    def load_for_update(self, settings: Settings | None = None) -> StoredVersion:
        """Load the current version without chunk or document text, for an update (see the
        module docstring for what that verifies)."""
        return self._guarded(lambda: self._load_keys(settings))

    def _guarded(self, load: Callable[[], Loaded]) -> Loaded:
        """The directory may come from anyone, so whatever is malformed in it (a manifest without
        its keys, an array of the wrong type, a value of the wrong kind) is reported as an
        IndexStoreError with the fix, never as a crash; nothing in it is ever executed."""
        try:
            with _gc_paused():
                loaded = load()
            if not isinstance(loaded.manifest["tokenizer"]["user_words"], list):
                raise TypeError("tokenizer.user_words is not a list")  # HybridSearcher reads it
        except IndexStoreError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
            raise IndexStoreError(
                f"{self.directory}: the index is malformed ({type(exc).__name__}: {exc}); "
                + REBUILD_HINT
            ) from exc
        return loaded

    def _open_checked(self) -> tuple[Path, dict[str, Any]]:
        """The current version with every file present at its recorded size and every file but
        the segments (hashed when they are read) matching its recorded hash."""
        version_dir, manifest = self._open_version()
        files = manifest["files"]
        segment_files = set(_segment_files(manifest))
        unlisted = sorted(segment_files - set(files))
        if unlisted:
            raise _damaged(version_dir / unlisted[0], "is not listed in the manifest")
        for name, expected in files.items():
            path = version_dir / name
            if not path.is_file():
                raise _damaged(path, "is missing")
            size = path.stat().st_size
            if size != expected["bytes"]:
                raise _damaged(
                    path,
                    f"has {size} bytes, the manifest says {expected['bytes']} "
                    "(truncated or replaced)",
                )
        hashed = [n for n, e in files.items() if n not in segment_files and "sha256" in e]
        with ThreadPoolExecutor(_THREADS) as pool:  # the FAISS and BM25 files side by side
            digests = pool.map(file_sha256, [version_dir / name for name in hashed])
            for name, digest in zip(hashed, digests, strict=True):
                if digest != files[name]["sha256"]:
                    raise _damaged(version_dir / name, "does not match its recorded hash")
        return version_dir, manifest

    def _load_contents(self, mmap: bool, settings: Settings | None) -> IndexContents:
        version_dir, manifest = self._open_checked()
        catalogue = manifest["documents"]
        try:
            chunk_rows = _read_segments(version_dir, manifest, CHUNKS_DIR, ROWS)
            texts = _read_segments(version_dir, manifest, DOCUMENTS_DIR, ROWS)
            chunks = [Chunk(**row) for row in chunk_rows]
            keys = [_chunk_key(row["id"], row["doc"]) for row in chunk_rows]
            del chunk_rows
            files = [row["file"] for row in texts]
            documents = {
                entry["file"]: Document(
                    document_meta(entry), row["text"], entry["encoding"], entry["sha256"]
                )
                for entry, row in zip(catalogue, texts, strict=False)
            }
        except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
            raise _damaged(version_dir, f"has unreadable chunk or document rows ({exc})") from exc
        # Updates read the keys and the catalogue instead of the rows: they must say the same.
        if _read_segments(version_dir, manifest, CHUNKS_DIR, KEYS) != keys:
            raise _damaged(version_dir / CHUNKS_DIR, "has keys files that do not match its rows")
        if files != [entry["file"] for entry in catalogue]:
            raise _damaged(
                version_dir / DOCUMENTS_DIR, "does not hold the catalogue's documents in order"
            )
        vectors, bm25 = self._load_search_data(version_dir, manifest, len(chunks), settings, mmap)
        self._verify_consistency(
            version_dir,
            manifest,
            [c.id for c in chunks],
            [c.doc for c in chunks],
            set(documents),
            vectors,
            bm25,
        )
        return IndexContents(manifest, documents, chunks, vectors, bm25, version_dir)

    def _load_keys(self, settings: Settings | None) -> StoredVersion:
        version_dir, manifest = self._open_checked()
        documents = {entry["file"]: entry for entry in manifest["documents"]}
        try:
            chunk_keys = _read_segments(version_dir, manifest, CHUNKS_DIR, KEYS)
            ids = [key["id"] for key in chunk_keys]
            docs = [key["doc"] for key in chunk_keys]
        except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
            raise _damaged(version_dir, f"has unreadable keys files ({exc})") from exc
        del chunk_keys
        vectors, bm25 = self._load_search_data(version_dir, manifest, len(ids), settings, False)
        self._verify_consistency(version_dir, manifest, ids, docs, set(documents), vectors, bm25)
        return StoredVersion(version_dir, manifest, documents, ids, docs, vectors, bm25)

    @staticmethod
    def _load_search_data(
        version_dir: Path,
        manifest: dict[str, Any],
        n_chunks: int,
        settings: Settings | None,
        mmap: bool,
    ) -> tuple[VectorStore, BM25Index]:
        vectors = load_vector_store(
            version_dir, manifest.get("vector_index", {}), settings, mmap=mmap
        )
        return vectors, BM25Index.load(version_dir / BM25_DIR, size=n_chunks, mmap=mmap)

    @staticmethod
    def _verify_consistency(
        version_dir: Path,
        manifest: dict[str, Any],
        chunk_ids: list[str],
        chunk_docs: list[str],
        documents: set[str],
        vectors: VectorStore,
        bm25: BM25Index,
    ) -> None:
        n_chunks = len(chunk_ids)
        counts = {"BM25 rows": bm25.size, "manifest chunks": manifest["counts"]["chunks"]}
        if vectors.backend == "faiss":
            # A shared Milvus collection may briefly hold an in-progress update's extra chunks,
            # so only the local FAISS file must match row for row.
            counts["vectors"] = vectors.size
            if counts["vectors"] == n_chunks and vectors.ids() != chunk_ids:
                raise IndexStoreError(
                    f"{version_dir}: the vector rows are not the chunk rows; {REBUILD_HINT}"
                )
        for what, count in counts.items():
            if count != n_chunks:
                raise IndexStoreError(
                    f"{version_dir}: {n_chunks} chunks but {count} {what}; the files are out "
                    f"of step; {REBUILD_HINT}"
                )
        unknown = set(chunk_docs) - documents
        if unknown:
            raise IndexStoreError(
                f"{version_dir}: chunks refer to unknown documents {sorted(unknown)}; "
                + REBUILD_HINT
            )


def _write_segments(
    staging: _Staging,
    kind: str,
    new: Sequence[Any],
    previous: StoredVersion | None,
    keep: np.ndarray | None,
) -> list[dict[str, Any]]:
    """Write the ``kind`` segments of a new version and return their manifest entries.

    Previous segments whose rows ``keep`` keeps are carried over unread; those that lost rows
    are rewritten with the rest (after checking their hash); the ``new`` rows then fill the last
    segment up to ``SEGMENT_ROWS`` rows, then new segments. New segment names continue the
    previous numbering, so a name never means two contents.
    """
    parts = _PARTS[kind]
    (staging.directory / kind).mkdir()
    segments: list[dict[str, Any]] = []
    number = 0

    def emit(lines: list[list[bytes]]) -> None:
        """One segment: ``lines`` holds each part's lines."""
        nonlocal number
        number += 1
        name = f"{number:06d}"
        for part, part_lines in zip(parts, lines, strict=True):
            path = staging.directory / _segment_file(kind, name, part)
            path.write_bytes(b"".join(line + b"\n" for line in part_lines))
        segments.append({"name": name, "rows": len(lines[0])})

    pending: list[list[bytes]] = [[] for _ in parts]
    if previous is not None and keep is not None:
        old = previous.manifest["segments"][kind]
        number = max((int(s["name"]) for s in old), default=0)
        start = 0
        for position, segment in enumerate(old):
            mask = keep[start : start + segment["rows"]]
            start += segment["rows"]
            fill = bool(new) and position == len(old) - 1 and segment["rows"] < SEGMENT_ROWS
            if mask.all() and not fill:
                for part in parts:
                    name = _segment_file(kind, segment["name"], part)
                    staging.carry(previous.directory, name, previous.manifest["files"][name])
                segments.append(segment)
            elif mask.any():
                kept = np.flatnonzero(mask)
                lines = [
                    [part_lines[i] for i in kept]
                    for part_lines in (
                        _segment_lines(previous.directory, previous.manifest, kind, segment, part)
                        for part in parts
                    )
                ]
                if fill:
                    pending = lines
                else:
                    emit(lines)
    done = 0
    while pending[0] or done < len(new):
        batch = new[done : done + SEGMENT_ROWS - len(pending[0])]
        for item in batch:
            for part_lines, line in zip(pending, _LINES_OF[kind](item), strict=True):
                part_lines.append(line)
        done += len(batch)
        emit(pending)
        pending = [[] for _ in parts]
    return segments
