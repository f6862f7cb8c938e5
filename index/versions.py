"""Reading one index version: in full for a search, or without texts for an update.

What is verified: a search (``load_contents``) hashes every file, as it reads them all. An update
(``load_keys``) hashes the files it reads and checks only the size of the segment rows it links
unread. A rows file damaged in place thus moves to the next version under its recorded hash, where
the next search refuses it and ``planqa index`` (which loads in full) rebuilds; rows are only
copied into a new file after their hash was checked, so damage is never sealed under a new valid
hash. Either way the chunk rows, the vectors and BM25 must agree row for row.
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from planqa.corpus.chunking import Chunk
from planqa.corpus.documents import Document
from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.bm25 import BM25Index
from planqa.index.manifest import REBUILD_HINT, CatalogueEntry, Manifest, document_meta
from planqa.index.milvus_texts import texts_of
from planqa.index.segments import (
    CHUNKS_DIR,
    DOCUMENTS_DIR,
    KEYS,
    ROWS,
    chunk_key,
    lines,
    read_segments,
    segment_file,
    segment_files,
)
from planqa.index.vectorstore import VectorStore, load_vector_store
from planqa.index.version_files import check_files, damaged

BM25_DIR = "bm25"


@dataclass
class IndexContents:
    """Everything one index version holds, in memory."""

    manifest: Manifest
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
    manifest: Manifest
    #: Catalogue entries (see :func:`catalogue_entry`) by file name, in row order.
    documents: dict[str, CatalogueEntry]
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
            contents.manifest.catalogue(),
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
            for segment in self.manifest.segments[CHUNKS_DIR]:
                path = self.directory / segment_file(CHUNKS_DIR, segment["name"], ROWS)
                data = path.read_bytes()
                if any(needle in data for needle in needles):
                    rows = lines(data)
                    if len(rows) != segment["rows"]:
                        raise damaged(path, "does not hold the rows the manifest records")
                    for row, line in enumerate(rows, start=first_row):
                        if any(needle in line for needle in needles):
                            found[row] = Chunk(**orjson.loads(line))
                first_row += segment["rows"]
        except (OSError, orjson.JSONDecodeError, TypeError) as exc:
            raise damaged(self.directory, f"has unreadable chunk rows ({exc})") from exc
        return found


@contextmanager
def gc_paused() -> Iterator[None]:
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


def check_version_files(version_dir: Path, manifest: Manifest) -> None:
    """Every file present at its recorded size and every file but the segments (hashed when
    they are read) matching its recorded hash."""
    files = manifest.files
    segments = set(segment_files(manifest))
    unlisted = sorted(segments - set(files))
    if unlisted:
        raise damaged(version_dir / unlisted[0], "is not listed in the manifest")
    check_files(version_dir, files, segments)


def load_contents(
    version_dir: Path, manifest: Manifest, settings: Settings | None, mmap: bool
) -> IndexContents:
    """The whole version, texts and all; every file verified (``check_version_files`` first).
    Where the texts live in Milvus, each is checked against the catalogue's hash instead."""
    catalogue = manifest.documents
    rows_listed = sum(segment["rows"] for segment in manifest.segments[CHUNKS_DIR])
    vectors, bm25 = _load_search_data(version_dir, manifest, rows_listed, settings, mmap)
    texts = texts_of(vectors)
    try:
        chunk_rows = read_segments(version_dir, manifest, CHUNKS_DIR, ROWS)
        rows = read_segments(version_dir, manifest, DOCUMENTS_DIR, ROWS)
        if texts is not None:
            stored = texts.fetch({entry["sha256"] for entry in catalogue}, str(version_dir))
            for row, entry in zip(rows, catalogue, strict=False):
                row["text"] = stored[entry["sha256"]]
        files = [row["file"] for row in rows]
        documents = {
            entry["file"]: Document(
                document_meta(entry), row["text"], entry["encoding"], entry["sha256"]
            )
            for entry, row in zip(catalogue, rows, strict=False)
        }
        if texts is not None:  # a chunk's text is its document's between its offsets
            for row in chunk_rows:
                row["text"] = documents[row["doc"]].text[row["start"] : row["end"]]
        chunks = [Chunk(**row) for row in chunk_rows]
        keys = [chunk_key(row["id"], row["doc"]) for row in chunk_rows]
        del chunk_rows
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        raise damaged(version_dir, f"has unreadable chunk or document rows ({exc})") from exc
    # Updates read the keys and the catalogue instead of the rows: they must say the same.
    if read_segments(version_dir, manifest, CHUNKS_DIR, KEYS) != keys:
        raise damaged(version_dir / CHUNKS_DIR, "has keys files that do not match its rows")
    if files != [entry["file"] for entry in catalogue]:
        raise damaged(
            version_dir / DOCUMENTS_DIR, "does not hold the catalogue's documents in order"
        )
    ids, docs = [c.id for c in chunks], [c.doc for c in chunks]
    verify_consistency(version_dir, manifest, ids, docs, set(documents), vectors, bm25)
    return IndexContents(manifest, documents, chunks, vectors, bm25, version_dir)


def load_keys(version_dir: Path, manifest: Manifest, settings: Settings | None) -> StoredVersion:
    """The version without chunk or document text, for an update."""
    documents = manifest.catalogue()
    try:
        chunk_keys = read_segments(version_dir, manifest, CHUNKS_DIR, KEYS)
        ids = [key["id"] for key in chunk_keys]
        docs = [key["doc"] for key in chunk_keys]
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        raise damaged(version_dir, f"has unreadable keys files ({exc})") from exc
    del chunk_keys
    vectors, bm25 = _load_search_data(version_dir, manifest, len(ids), settings, False)
    verify_consistency(version_dir, manifest, ids, docs, set(documents), vectors, bm25)
    return StoredVersion(version_dir, manifest, documents, ids, docs, vectors, bm25)


def _load_search_data(
    version_dir: Path,
    manifest: Manifest,
    n_chunks: int,
    settings: Settings | None,
    mmap: bool,
) -> tuple[VectorStore, BM25Index]:
    vectors = load_vector_store(version_dir, manifest.vector_description, settings, mmap=mmap)
    return vectors, BM25Index.load(version_dir / BM25_DIR, size=n_chunks, mmap=mmap)


def verify_consistency(
    version_dir: Path,
    manifest: Manifest,
    chunk_ids: list[str],
    chunk_docs: list[str],
    documents: set[str],
    vectors: VectorStore,
    bm25: BM25Index,
) -> None:
    """The chunk rows, BM25 rows, vector rows and manifest counts agree, and every chunk's
    document is catalogued."""
    n_chunks = len(chunk_ids)
    counts = {"BM25 rows": bm25.size, "manifest chunks": manifest.counts["chunks"]}
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
            f"{version_dir}: chunks refer to unknown documents {sorted(unknown)}; " + REBUILD_HINT
        )
