"""The index directory on disk: versioned, written atomically, verified before use.

Layout::

    INDEX_DIR/CURRENT      {"version": "v-...", "manifest_sha256": "..."}  (replaced atomically)
    INDEX_DIR/v-<stamp>/manifest.json    settings, document catalogue, segments, file hashes
                        chunks/000001.jsonl + chunks/000001.keys.jsonl, ...     (segments)
                        documents/000001.jsonl, ...
                        bm25/, vectors.faiss + vector_rows.json (FAISS) or milvus.json (Milvus)

(With the whole search in Milvus the rows hold no text: the texts are in Milvus,
index/milvus_texts.py.)

A build writes a complete new version beside the old one and only then swaps ``CURRENT`` with
``os.replace``; a process killed at any moment leaves the previous version loadable. ``CURRENT``
carries the manifest's hash and the manifest carries every file's size and hash, so an edited
manifest, a truncated FAISS file or chunks out of step with the vectors are refused, not used.
Everything is JSON, JSON Lines, .npy or FAISS's own format: loading an index never runs code.

This module is the folder and its versions as a whole; the parts have modules of their own: the
manifest (index/manifest.py), the segments that hold the rows and are hard-linked from version to
version (index/segments.py), verified and durable files (index/version_files.py), and reading a
version in full or for an update, with what each verifies (index/versions.py).

Writing (:meth:`IndexStore.write`, :meth:`IndexStore.tidy`) happens under the folder's writer
lock (index/lock.py), which a builder holds from reading the current version to switching
``CURRENT``: the clean-up after a switch deletes staging folders and versions other than the
current one, which is only safe when no other writer is half-way through its own.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from planqa.corpus.chunking import Chunk
from planqa.corpus.documents import Document
from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.bm25 import BM25Index
from planqa.index.lock import IndexLock
from planqa.index.manifest import FORMAT_VERSION, REBUILD_HINT, Manifest
from planqa.index.milvus_texts import texts_of
from planqa.index.segments import CHUNKS_DIR, DOCUMENTS_DIR, write_segments
from planqa.index.vectorstore import VectorStore
from planqa.index.version_files import Staging
from planqa.index.versions import (
    BM25_DIR,
    IndexContents,
    StoredVersion,
    check_version_files,
    gc_paused,
    load_contents,
    load_keys,
)

__all__ = [
    "CURRENT_FILE",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "REBUILD_HINT",
    "IndexContents",
    "IndexStore",
    "StoredVersion",
]

CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"

Loaded = TypeVar("Loaded")
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
    """One index folder: its ``CURRENT`` pointer, its versions, and its writer lock."""

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
        manifest: Manifest,
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
        ``chunks``. When ``vectors`` keeps the document texts in Milvus (index/milvus_texts.py),
        the new documents' texts go there first and the rows written here hold none.
        """
        texts = texts_of(vectors)
        if texts is not None:
            texts.store(documents)
            replaced = self._current_shas()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()  # only dead writers' leftovers: we hold the lock
        staging = Staging(self.directory / f".tmp-{uuid.uuid4().hex[:12]}")
        staging.directory.mkdir()
        try:
            segments = {
                DOCUMENTS_DIR: write_segments(
                    staging,
                    DOCUMENTS_DIR,
                    documents,
                    previous,
                    kept_documents,
                    with_text=texts is None,
                ),
                CHUNKS_DIR: write_segments(
                    staging, CHUNKS_DIR, chunks, previous, kept_chunks, with_text=texts is None
                ),
            }
            vectors.save(staging.directory)
            (staging.directory / BM25_DIR).mkdir()
            bm25.save(staging.directory / BM25_DIR)
            files = {**staging.carried, **staging.seal_new_files()}
            manifest = manifest.sealed(segments, dict(sorted(files.items())))
            manifest_bytes = manifest.to_json()
            (staging.directory / MANIFEST_FILE).write_bytes(manifest_bytes)
            staging.fsync_copies(MANIFEST_FILE)
            version_name = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            final = self.directory / version_name
            os.rename(staging.directory, final)
        except BaseException:
            shutil.rmtree(staging.directory, ignore_errors=True)
            raise
        self._switch_current(version_name, manifest_bytes)
        self._remove_old_versions(keep={version_name})
        if texts is not None:  # what neither this version nor the one it replaced reads
            texts.keep_only({entry["sha256"] for entry in manifest.documents} | replaced)
        return final

    def _current_shas(self) -> set[str]:
        """The document hashes of the current version (none if there is none or it is
        unreadable: a rebuild replacing a damaged index)."""
        try:
            return {entry["sha256"] for entry in self.read_manifest().documents}
        except (IndexStoreError, KeyError, TypeError):
            return set()

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
        """The current version's directory and the manifest hash ``CURRENT`` records."""
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

    def read_manifest(self) -> Manifest:
        """The manifest of the current version, verified against the hash in ``CURRENT``."""
        return self._guarded(lambda: self._open_version()[1])

    def _open_version(self) -> tuple[Path, Manifest]:
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
        return version_dir, Manifest.from_json(data, path)

    def _open_checked(self) -> tuple[Path, Manifest]:
        """The current version with its files checked (see ``check_version_files``)."""
        version_dir, manifest = self._open_version()
        check_version_files(version_dir, manifest)
        return version_dir, manifest

    def load(self, mmap: bool = False, settings: Settings | None = None) -> IndexContents:
        """Load and verify the current version, texts and all (what a search needs).

        ``mmap`` maps BM25 arrays and the FAISS file instead of reading them (fast start, memory
        shared between processes; read-only, so not for updates); ``settings`` supplies the
        Milvus connection when the vectors live there.
        """
        return self._guarded(lambda: load_contents(*self._open_checked(), settings, mmap))

    def load_for_update(self, settings: Settings | None = None) -> StoredVersion:
        """Load the current version without chunk or document text, for an update (see
        index/versions.py for what that verifies)."""
        return self._guarded(lambda: load_keys(*self._open_checked(), settings))

    def _guarded(self, load: Callable[[], Loaded]) -> Loaded:
        """The directory may come from anyone, so whatever is malformed in it (a manifest without
        its keys, an array of the wrong type, a value of the wrong kind) is reported as an
        IndexStoreError with the fix, never as a crash; nothing in it is ever executed."""
        try:
            with gc_paused():
                return load()
        except IndexStoreError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
            raise IndexStoreError(
                f"{self.directory}: the index is malformed ({type(exc).__name__}: {exc}); "
                + REBUILD_HINT
            ) from exc
