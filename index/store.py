"""The index directory on disk: versioned, written atomically, verified before use.

Layout::

    INDEX_DIR/CURRENT      {"version": "v-...", "manifest_sha256": "..."}  (replaced atomically)
    INDEX_DIR/v-<stamp>/manifest.json, chunks.jsonl, documents.jsonl, bm25/,
                        vectors.faiss + vector_rows.json (FAISS) or milvus.json (Milvus)

A build writes a complete new version beside the old one and only then swaps ``CURRENT`` with
``os.replace``; a process killed at any moment leaves the previous version loadable. ``CURRENT``
carries the manifest's hash and the manifest carries every file's size and hash, so an edited
manifest, a truncated FAISS file or chunks out of step with the vectors are refused, not used.
Everything is JSON, JSON Lines, .npy or FAISS's own format: loading an index never runs code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson

from corpus.chunking import Chunk
from corpus.documents import Document, DocumentMeta, file_sha256
from corpus.errors import IndexStoreError
from corpus.settings import Settings
from index.bm25 import BM25Index
from index.vectorstore import VectorStore, load_vector_store

#: 2: own BM25 arrays (index/bm25.py), vector stores keyed by chunk id (index/vectorstore.py).
FORMAT_VERSION = 2
CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
CHUNKS_FILE = "chunks.jsonl"
DOCUMENTS_FILE = "documents.jsonl"
BM25_DIR = "bm25"
#: Files up to this size are hashed on load; larger ones are checked by size only (load speed).
_HASH_LIMIT_BYTES = 256 * 2**20
REBUILD_HINT = "rebuild it with `planqa index --rebuild`"


def planqa_version() -> str:
    try:
        return version("planqa")
    except PackageNotFoundError:
        return "0+unknown"


def _write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    """One JSON object per line (dataclasses serialise as their fields), UTF-8, unescaped.

    orjson rather than json: at 100K chunks the index files are ~250 MB of JSON, and json spent
    ~3 s loading and ~8 s writing them, most of the time budget for adding one document.
    """
    with path.open("wb") as handle:
        for row in rows:
            handle.write(orjson.dumps(row) + b"\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def document_row(document: Document) -> dict[str, Any]:
    return {
        **vars(document.meta),
        "encoding": document.encoding,
        "sha256": document.sha256,
        "text": document.text,
    }


def document_from_row(row: dict[str, Any]) -> Document:
    fields = {k: row[k] for k in DocumentMeta.__dataclass_fields__ if k in row}
    fields["aliases"] = tuple(fields.get("aliases", ()))
    return Document(DocumentMeta(**fields), row["text"], row["encoding"], row["sha256"])


@dataclass
class IndexContents:
    """Everything one index version holds, in memory."""

    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: list[Chunk]
    vectors: VectorStore
    bm25: BM25Index


class IndexStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).expanduser()

    # ----------------------------------------------------------------- writing
    def write(
        self,
        manifest: dict[str, Any],
        documents: list[Document],
        chunks: list[Chunk],
        vectors: VectorStore,
        bm25: BM25Index,
    ) -> Path:
        """Write a complete new version, then switch ``CURRENT`` to it in one atomic step."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()
        staging = self.directory / f".tmp-{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        try:
            _write_jsonl(staging / CHUNKS_FILE, chunks)
            _write_jsonl(staging / DOCUMENTS_FILE, (document_row(d) for d in documents))
            vectors.save(staging)
            (staging / BM25_DIR).mkdir()
            bm25.save(staging / BM25_DIR)
            manifest = {**manifest, "files": self._describe_files(staging)}
            manifest_bytes = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
            (staging / MANIFEST_FILE).write_bytes(manifest_bytes)
            _fsync_tree(staging)
            version_name = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            final = self.directory / version_name
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
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
        self._remove_old_versions(keep={version_name})
        return final

    @staticmethod
    def _describe_files(directory: Path) -> dict[str, dict[str, Any]]:
        described = {}
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            size = path.stat().st_size
            entry: dict[str, Any] = {"bytes": size}
            if size <= _HASH_LIMIT_BYTES:
                entry["sha256"] = file_sha256(path)
            described[path.relative_to(directory).as_posix()] = entry
        return described

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
        return manifest

    def load(self, mmap: bool = False, settings: Settings | None = None) -> IndexContents:
        """Load and verify the current version; see :meth:`_load_unchecked` for the options.

        The directory may come from anyone, so whatever is malformed in it (a manifest without
        its keys, an array of the wrong type, a value of the wrong kind) is reported as an
        IndexStoreError with the fix, never as a crash; nothing in it is ever executed.
        """
        try:
            contents = self._load_unchecked(mmap=mmap, settings=settings)
            if not isinstance(contents.manifest["tokenizer"]["user_words"], list):
                raise TypeError("tokenizer.user_words is not a list")  # HybridSearcher reads it
        except IndexStoreError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
            raise IndexStoreError(
                f"{self.directory}: the index is malformed ({type(exc).__name__}: {exc}); "
                + REBUILD_HINT
            ) from exc
        return contents

    def _load_unchecked(
        self, mmap: bool = False, settings: Settings | None = None
    ) -> IndexContents:
        """The current version. ``mmap`` maps BM25 arrays and the FAISS file instead of reading
        them (fast start, memory shared between processes; read-only, so not for updates);
        ``settings`` supplies the Milvus connection when the vectors live there."""
        manifest = self.read_manifest()
        version_dir, _ = self.current_version_dir()
        self._verify_files(version_dir, manifest)
        try:
            chunks = [Chunk(**row) for row in _read_jsonl(version_dir / CHUNKS_FILE)]
            documents = {
                row["file"]: document_from_row(row)
                for row in _read_jsonl(version_dir / DOCUMENTS_FILE)
            }
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise IndexStoreError(
                f"{version_dir}: unreadable chunk or document rows ({exc}); {REBUILD_HINT}"
            ) from exc
        vectors = load_vector_store(
            version_dir, manifest.get("vector_index", {}), settings, mmap=mmap
        )
        bm25 = BM25Index.load(version_dir / BM25_DIR, size=len(chunks), mmap=mmap)
        contents = IndexContents(manifest, documents, chunks, vectors, bm25)
        self._verify_consistency(contents, version_dir)
        return contents

    @staticmethod
    def _verify_files(version_dir: Path, manifest: dict[str, Any]) -> None:
        for name, expected in manifest.get("files", {}).items():
            path = version_dir / name
            if not path.is_file():
                raise IndexStoreError(f"{path} is missing; {REBUILD_HINT}")
            size = path.stat().st_size
            if size != expected["bytes"]:
                raise IndexStoreError(
                    f"{path} has {size} bytes, the manifest says {expected['bytes']} "
                    f"(truncated or replaced); {REBUILD_HINT}"
                )
            if "sha256" in expected and file_sha256(path) != expected["sha256"]:
                raise IndexStoreError(f"{path} does not match its recorded hash; {REBUILD_HINT}")

    @staticmethod
    def _verify_consistency(contents: IndexContents, version_dir: Path) -> None:
        n_chunks = len(contents.chunks)
        counts = {
            "BM25 rows": contents.bm25.size,
            "manifest chunks": contents.manifest["counts"]["chunks"],
        }
        if contents.vectors.backend == "faiss":
            # A shared Milvus collection may briefly hold an in-progress update's extra chunks,
            # so only the local FAISS file must match row for row.
            counts["vectors"] = contents.vectors.size
            if counts["vectors"] == n_chunks and contents.vectors.ids() != [
                c.id for c in contents.chunks
            ]:
                raise IndexStoreError(
                    f"{version_dir}: the vector rows are not the chunk rows; {REBUILD_HINT}"
                )
        for what, count in counts.items():
            if count != n_chunks:
                raise IndexStoreError(
                    f"{version_dir}: {n_chunks} chunks but {count} {what}; the files are out "
                    f"of step; {REBUILD_HINT}"
                )
        unknown = {c.doc for c in contents.chunks} - set(contents.documents)
        if unknown:
            raise IndexStoreError(
                f"{version_dir}: chunks refer to unknown documents {sorted(unknown)}; "
                + REBUILD_HINT
            )
