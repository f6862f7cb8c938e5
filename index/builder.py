"""Building and updating an index from documents.

An update keeps everything of documents whose text and metadata did not change: their chunks (in
their old order, so their rows stay), their vectors (the store just drops the rows of changed and
removed documents and appends the new ones) and their BM25 entries (the term-frequency arrays are
merged, not rebuilt; see index/bm25.py). Only new or changed documents are chunked, tokenised and
embedded, and even then a chunk whose id (document, span, text) is already stored is not
re-embedded. The store writes only the new rows and hard-links the rest (index/store.py), and
``planqa index --add`` reads the index without its texts. That is what keeps adding a document to a
100K-chunk index within seconds (numbers in docs/scaling.md). When no document and no setting
changed, nothing is written at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from planqa.corpus.documents import Document
from planqa.corpus.errors import DocumentError, IndexStoreError
from planqa.corpus.loader import LoadProblem, load_corpus
from planqa.corpus.settings import Settings
from planqa.index.bm25 import BM25Index
from planqa.index.build_plan import Changes, Rows, chunk_documents, compare, plan_rows
from planqa.index.build_vectors import update_vectors
from planqa.index.embedder import Embedder
from planqa.index.indexed_text import (
    INDEXED_TEXT_VERSION,
    embedding_text,
    lexical_text,
    vector_record,
)
from planqa.index.manifest import Fingerprint, Manifest, check_compatible, settings_fingerprint
from planqa.index.store import IndexStore, StoredVersion
from planqa.index.upgrade import awaiting_fingerprint, fitting_embedder, settings_for_build
from planqa.index.vectorstore import VectorStore

#: Names callers import from here although they live in the modules of their step.
__all__ = [
    "INDEXED_TEXT_VERSION",
    "BuildReport",
    "add_documents",
    "build_from_documents",
    "build_index",
    "check_compatible",
    "chunk_documents",
    "embedding_text",
    "lexical_text",
    "settings_fingerprint",
    "vector_record",
]


@dataclass
class BuildReport:
    index_dir: str
    documents: int
    chunks: int
    embedded: int
    reused: int
    seconds: float
    up_to_date: bool = False
    #: Why an existing index was not updated but replaced (damaged, another format or model).
    rebuilt_because: str = ""
    #: Seconds per stage (load, chunk, embed_and_store, bm25, write), for benchmarks.
    stages: dict[str, float] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_index(
    settings: Settings,
    paths: list[Path] | None = None,
    *,
    embedder: Embedder | None = None,
    rebuild: bool = False,
    progress: bool = True,
) -> BuildReport:
    """Index the corpus folder (or ``paths``): a new index, or an update of the current one."""
    started = time.perf_counter()
    loaded = load_corpus(paths or [settings.corpus_dir], settings=settings)
    if not loaded.documents:
        details = (
            "; ".join(p.reason for p in loaded.problems) or "no .txt/.md/.docx/.pdf files found"
        )
        raise DocumentError(f"nothing to index ({details})")
    return build_from_documents(
        settings,
        loaded.documents,
        embedder=embedder,
        rebuild=rebuild,
        progress=progress,
        problems=loaded.problems,
        started=started,
    )


def add_documents(
    settings: Settings,
    paths: list[Path],
    *,
    embedder: Embedder | None = None,
    progress: bool = True,
) -> BuildReport:
    """Add ``paths`` to the current index (replacing documents of the same name) without
    reading the rest of the corpus again: the other documents come from the index itself."""
    started = time.perf_counter()
    loaded = load_corpus(paths, settings=settings)
    if not loaded.documents:
        details = "; ".join(p.reason for p in loaded.problems) or "no supported files"
        raise DocumentError(f"nothing to add ({details})")
    return build_from_documents(
        settings,
        loaded.documents,
        embedder=embedder,
        progress=progress,
        problems=loaded.problems,
        started=started,
        add=True,
    )


def build_from_documents(
    settings: Settings,
    documents: list[Document],
    *,
    embedder: Embedder | None = None,
    rebuild: bool = False,
    add: bool = False,
    progress: bool = True,
    problems: list[LoadProblem] | None = None,
    started: float | None = None,
) -> BuildReport:
    """Index exactly ``documents``, reusing what the current index already has of them; with
    ``add``, index them besides the current index's other documents (which must exist).

    Under the index folder's writer lock (index/lock.py) from reading the current version to
    switching ``CURRENT``: a second writer waits ``settings.index_lock_timeout`` seconds, then
    gets an IndexStoreError; without it two runs deleted each other's versions.
    """
    store = IndexStore(settings.resolved_index_dir, lock_timeout=settings.index_lock_timeout)
    with store.writer_lock():
        return _build_locked(
            store,
            settings,
            documents,
            embedder=embedder,
            rebuild=rebuild,
            add=add,
            progress=progress,
            problems=problems,
            started=started,
        )


def _build_locked(
    store: IndexStore,
    settings: Settings,
    documents: list[Document],
    *,
    embedder: Embedder | None,
    rebuild: bool,
    add: bool,
    progress: bool,
    problems: list[LoadProblem] | None,
    started: float | None,
) -> BuildReport:
    """The build, step by step, each step timed into ``report.stages``."""
    started = time.perf_counter() if started is None else started
    settings, awaits = settings_for_build(settings, store, rebuild)
    embedder = fitting_embedder(settings, embedder, progress)
    fingerprint = settings_fingerprint(settings, embedder)
    awaiting_fingerprint(fingerprint, awaits)
    clock = time.perf_counter()
    previous, rebuilt_because = _open_previous(store, settings, embedder, rebuild, add, progress)
    load_seconds = time.perf_counter() - clock
    changes = compare(previous, documents, add)
    report = _new_report(store, changes, rebuilt_because, problems, load_seconds)
    if previous is not None and changes.nothing:
        return _up_to_date(store, previous, report, started)
    with _stage(report, "chunk"):
        rows = plan_rows(previous, changes, settings)
        report.chunks = rows.total
    with _stage(report, "embed_and_store"):
        vectors, report.embedded = update_vectors(
            settings, embedder, previous, rows.keep, rows.fresh, report.chunks, progress
        )
        report.reused = report.chunks - report.embedded
    with _stage(report, "bm25"):
        bm25 = _update_bm25(previous, rows, settings)
    manifest = _new_manifest(fingerprint, embedder, rows, vectors)
    with _stage(report, "write"):
        _write_version(store, manifest, vectors, bm25, previous, rows)
    _drop_superseded_collections(vectors, settings)
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _stage(report: BuildReport, name: str) -> Iterator[None]:
    """Time the ``with`` block into ``report.stages[name]`` (benchmarks read them)."""
    clock = time.perf_counter()
    yield
    report.stages[name] = time.perf_counter() - clock


def _open_previous(
    store: IndexStore,
    settings: Settings,
    embedder: Embedder,
    rebuild: bool,
    add: bool,
    progress: bool,
) -> tuple[StoredVersion | None, str]:
    """The version to update and, when there is none to reuse, why (for the report).

    An update with ``add`` needs the current version (without its texts) and refuses an
    incompatible one; a build reuses the current version when it can and otherwise says why it
    builds anew.
    """
    if add:
        previous = store.load_for_update(settings)
        previous.manifest.check_compatible(settings, embedder)
        return previous, ""
    previous, rebuilt_because = _reusable_previous(store, settings, embedder, rebuild)
    if rebuilt_because and progress:
        print(f"planqa: building the index anew: {rebuilt_because}", file=sys.stderr)
    return previous, rebuilt_because


def _reusable_previous(
    store: IndexStore, settings: Settings, embedder: Embedder, rebuild: bool
) -> tuple[StoredVersion | None, str]:
    """The current index when it can be reused, else None and why not: a damaged or
    incompatible index is simply replaced. It is loaded in full, texts and all, as a search
    would load it, so whatever a search refuses is rebuilt here rather than carried over."""
    if rebuild or not store.exists():
        return None, ""
    try:
        contents = store.load(settings=settings)
        contents.manifest.check_compatible(settings, embedder)
    except IndexStoreError as exc:
        return None, str(exc)
    return StoredVersion.of(contents), ""


def _new_report(
    store: IndexStore,
    changes: Changes,
    rebuilt_because: str,
    problems: list[LoadProblem] | None,
    load_seconds: float,
) -> BuildReport:
    return BuildReport(
        index_dir=str(store.directory),
        documents=len(changes.new_hashes),
        chunks=0,
        embedded=0,
        reused=0,
        seconds=0.0,
        rebuilt_because=rebuilt_because,
        stages={"load": load_seconds},
        added=changes.added,
        changed=changes.changed,
        removed=changes.removed,
        problems=list(problems or []),
    )


def _up_to_date(
    store: IndexStore, previous: StoredVersion, report: BuildReport, started: float
) -> BuildReport:
    """Nothing changed: write nothing, only clear what an interrupted build left behind."""
    report.up_to_date = True
    store.tidy()
    report.chunks = len(previous.chunk_ids)
    report.seconds = time.perf_counter() - started
    return report


def _update_bm25(previous: StoredVersion | None, rows: Rows, settings: Settings) -> BM25Index:
    """The previous BM25 arrays without the dropped rows plus the fresh ones (merged, not
    rebuilt; see index/bm25.py), or new ones. With ``lexical_backend = "milvus"`` Milvus
    tokenises and scores, so the fresh rows get no tokens here: no jieba pass at all."""
    if settings.lexical_backend == "milvus":
        fresh_tokens: list[list[str]] = [[] for _ in rows.fresh]
    else:
        fresh_tokens = rows.tokenizer.tokenize_many(lexical_text(c) for c in rows.fresh)
    if previous is not None:
        return previous.bm25.kept(rows.kept_rows).appended(fresh_tokens)
    return BM25Index.build(fresh_tokens)


def _new_manifest(
    fingerprint: Fingerprint, embedder: Embedder, rows: Rows, vectors: VectorStore
) -> Manifest:
    tokenizer = rows.tokenizer
    return Manifest.new(
        fingerprint,
        dimension=embedder.dimension,
        tokenizer={"signature": tokenizer.signature, "user_words": list(tokenizer.user_words)},
        vector_index=vectors.describe(),
        documents=rows.catalogue,
        chunks=rows.total,
    )


def _write_version(
    store: IndexStore,
    manifest: Manifest,
    vectors: VectorStore,
    bm25: BM25Index,
    previous: StoredVersion | None,
    rows: Rows,
) -> None:
    store.write(
        manifest,
        vectors,
        bm25,
        documents=rows.new_documents,
        chunks=rows.fresh,
        previous=previous,
        kept_documents=rows.kept_documents,
        kept_chunks=rows.keep,
    )


def _drop_superseded_collections(vectors: VectorStore, settings: Settings) -> None:
    """A Milvus build wrote a new collection: the ones of earlier builds are no longer used."""
    if vectors.backend == "milvus":
        vectors.drop_others(settings.milvus_collection)  # type: ignore[attr-defined]
