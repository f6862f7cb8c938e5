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
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from planqa.corpus.chunking import CHUNKER_VERSION, Chunk, chunk_document
from planqa.corpus.documents import Document
from planqa.corpus.errors import DocumentError, IndexStoreError
from planqa.corpus.loader import LoadProblem, load_corpus
from planqa.corpus.settings import Settings
from planqa.index.bm25 import BM25Index
from planqa.index.embedder import Embedder, make_embedder, passage_backend_of
from planqa.index.embedding_cache import open_embedding_cache
from planqa.index.jieba_dictionary import prepare_query_dictionary
from planqa.index.store import (
    FORMAT_VERSION,
    IndexStore,
    StoredVersion,
    catalogue_entry,
    document_meta,
    planqa_version,
)
from planqa.index.text_tokenizer import ChineseTokenizer
from planqa.index.traditional import to_simplified
from planqa.index.vectorstore import (
    FaissVectorStore,
    VectorRecord,
    VectorStore,
    index_params_for,
    new_vector_store,
)


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


#: Bumped whenever embedding_text or lexical_text change, so old indexes are rebuilt, not misread.
INDEXED_TEXT_VERSION = "context-3-t2s"


def embedding_text(chunk: Chunk) -> str:
    """What the model sees: the chunk with a reader's context (region, plan, chapter), in
    simplified characters like the queries (see index.traditional), so 繁体 documents and
    questions meet simplified ones in the same vector space."""
    return to_simplified(f"{chunk.region}《{chunk.title}》{chunk.chapter}\n{chunk.text}")


def lexical_text(chunk: Chunk) -> str:
    """What BM25 sees: headings count as words of their chunk, so a chapter title can match.

    The region name is left out on purpose: repeated in every chunk of a document it would make
    any query containing 南通 or 开发区 favour that whole document; regions named in a query are
    handled by region-aware fusion instead.
    """
    return f"{chunk.chapter}\n{chunk.text}"


def region_vocabulary(catalogue: list[dict[str, Any]]) -> list[str]:
    """Region names and aliases of the catalogued documents (their ``meta.region_names``)."""
    return sorted(
        {name for entry in catalogue for name in (entry["region"], *entry["aliases"]) if name}
    )


def settings_fingerprint(settings: Settings, embedder: Embedder) -> dict[str, Any]:
    """The settings an index depends on; any difference makes an existing index unusable."""
    return {
        "embedding": {"model": settings.embedding_model, "model_id": embedder.model_id},
        "chunking": {
            "chunker": CHUNKER_VERSION,
            "indexed_text": INDEXED_TEXT_VERSION,
            "max_chars": settings.chunk_max_chars,
            "overlap_chars": settings.chunk_overlap_chars,
        },
        "vectors": {"backend": settings.vector_backend},
    }


def check_compatible(manifest: dict[str, Any], settings: Settings, embedder: Embedder) -> None:
    """Refuse an index built with another model, prompts or chunking, naming both ways out."""
    expected = settings_fingerprint(settings, embedder)
    for section, wanted in expected.items():
        found = manifest.get(section, {})
        for key, value in wanted.items():
            if found.get(key) != value:
                hint = ""
                built = passage_backend_of(str(found.get("model_id")), embedder.model_id)
                if section == "embedding" and built is not None:  # other passage vectors only
                    hint = f", or set PLANQA_PASSAGE_BACKEND={built!r} to use it as built"
                elif section == "embedding":
                    hint = (
                        f", or set PLANQA_EMBEDDING_MODEL={found.get('model')!r} to use it as built"
                    )
                elif section == "vectors":
                    hint = f", or set PLANQA_VECTOR_BACKEND={found.get(key)!r} to use it as built"
                raise IndexStoreError(
                    f"the index was built with {section}.{key}={found.get(key)!r} but the current "
                    f"configuration has {value!r}; rebuild it with `planqa index --rebuild`{hint}"
                )


def chunk_documents(documents: list[Document], settings: Settings) -> list[Chunk]:
    chunks: list[Chunk] = []
    for document in documents:
        chunks.extend(
            chunk_document(
                document,
                max_chars=settings.chunk_max_chars,
                overlap_chars=settings.chunk_overlap_chars,
            )
        )
    return chunks


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
    started = time.perf_counter() if started is None else started
    embedder = embedder or make_embedder(settings, progress=progress)
    fingerprint = settings_fingerprint(settings, embedder)
    clock = time.perf_counter()
    rebuilt_because = ""
    if add:
        previous: StoredVersion | None = store.load_for_update(settings)
        check_compatible(previous.manifest, settings, embedder)
    else:
        previous, rebuilt_because = _previous_version(store, settings, embedder, rebuild)
        if rebuilt_because and progress:
            print(f"planqa: building the index anew: {rebuilt_because}", file=sys.stderr)
    load_seconds = time.perf_counter() - clock
    old_docs = {} if previous is None else previous.documents
    incoming = {d.name: d for d in documents}
    old_hashes = {name: entry["sha256"] for name, entry in old_docs.items()}
    new_hashes = {**(old_hashes if add else {}), **{n: d.sha256 for n, d in incoming.items()}}
    report = BuildReport(
        index_dir=str(store.directory),
        documents=len(new_hashes),
        chunks=0,
        embedded=0,
        reused=0,
        seconds=0.0,
        rebuilt_because=rebuilt_because,
        stages={"load": load_seconds},
        added=sorted(set(new_hashes) - set(old_hashes)),
        changed=sorted(n for n in new_hashes if n in old_hashes and old_hashes[n] != new_hashes[n]),
        removed=sorted(set(old_hashes) - set(new_hashes)),
        problems=list(problems or []),
    )
    unchanged = {
        name
        for name, d in incoming.items()
        if old_hashes.get(name) == d.sha256 and document_meta(old_docs[name]) == d.meta
    }
    if add:
        unchanged |= old_docs.keys() - incoming.keys()
    if previous is not None and unchanged == set(old_docs) == set(new_hashes):
        report.up_to_date = True
        store.tidy()
        report.chunks = len(previous.chunk_ids)
        report.seconds = time.perf_counter() - started
        return report

    clock = time.perf_counter()
    # The new version's rows: the previous rows it keeps, in order, then new ones.
    new_documents = [d for d in incoming.values() if d.name not in unchanged]
    fresh = chunk_documents(new_documents, settings)
    per_document = Counter(c.doc for c in fresh)
    kept_documents = np.fromiter((n in unchanged for n in old_docs), bool, len(old_docs))
    # Kept documents keep their entries: their chunks stay theirs even when rows move below.
    catalogue = [entry for name, entry in old_docs.items() if name in unchanged]
    catalogue += [catalogue_entry(d, per_document[d.name]) for d in new_documents]
    old_chunk_docs = [] if previous is None else previous.chunk_docs
    keep = np.fromiter((d in unchanged for d in old_chunk_docs), bool, len(old_chunk_docs))
    tokenizer = ChineseTokenizer(region_vocabulary(catalogue))
    prepare_query_dictionary(settings.cache_dir)
    if previous is not None:
        # New or dropped region words re-segment only the chunks that contain them: those
        # move to the end with the fresh ones (their vectors are reused, not re-embedded).
        old_words = set(previous.manifest["tokenizer"]["user_words"])
        changed_words = old_words ^ set(tokenizer.user_words)
        if changed_words:
            candidates = previous.chunks_mentioning(changed_words)
            moved = _containing(candidates, keep, changed_words)
            fresh = [candidates[row] for row in moved] + fresh
            keep[moved] = False
    kept_rows = np.flatnonzero(keep)
    report.chunks = len(kept_rows) + len(fresh)
    report.stages["chunk"] = time.perf_counter() - clock

    clock = time.perf_counter()
    vectors, report.embedded = _update_vectors(
        settings, embedder, previous, keep, fresh, report.chunks, progress
    )
    report.reused = report.chunks - report.embedded
    report.stages["embed_and_store"] = time.perf_counter() - clock

    clock = time.perf_counter()
    fresh_tokens = tokenizer.tokenize_many(lexical_text(c) for c in fresh)
    if previous is not None:
        bm25 = previous.bm25.kept(kept_rows).appended(fresh_tokens)
    else:
        bm25 = BM25Index.build(fresh_tokens)
    report.stages["bm25"] = time.perf_counter() - clock

    manifest = {
        "format": FORMAT_VERSION,
        "planqa_version": planqa_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **fingerprint,
        "dimension": embedder.dimension,
        "tokenizer": {"signature": tokenizer.signature, "user_words": list(tokenizer.user_words)},
        "vector_index": vectors.describe(),
        "counts": {"documents": len(catalogue), "chunks": report.chunks},
        "documents": catalogue,
    }
    clock = time.perf_counter()
    store.write(
        manifest,
        vectors,
        bm25,
        documents=new_documents,
        chunks=fresh,
        previous=previous,
        kept_documents=kept_documents,
        kept_chunks=keep,
    )
    report.stages["write"] = time.perf_counter() - clock
    if vectors.backend == "milvus":
        vectors.drop_others(settings.milvus_collection)  # type: ignore[attr-defined]
    report.seconds = time.perf_counter() - started
    return report


def _containing(candidates: dict[int, Chunk], keep: np.ndarray, words: set[str]) -> list[int]:
    """The kept rows among ``candidates`` whose lexical text contains any of ``words``.

    Normalising 100K chunks costs seconds, so the raw text is searched for the words as they
    are (the store finds the candidates by a byte search of its rows). A word written
    differently in an old chunk (traditional or full-width characters) is re-segmented only by
    ``planqa index --rebuild``.
    """
    return [
        row
        for row, chunk in sorted(candidates.items())
        if keep[row] and any(word in lexical_text(chunk) for word in words)
    ]


def _previous_version(
    store: IndexStore, settings: Settings, embedder: Embedder, rebuild: bool
) -> tuple[StoredVersion | None, str]:
    """The current index when it can be reused, else None and why not: a damaged or
    incompatible index is simply replaced. It is loaded in full, texts and all, as a search
    would load it, so whatever a search refuses is rebuilt here rather than carried over."""
    if rebuild or not store.exists():
        return None, ""
    try:
        contents = store.load(settings=settings)
        check_compatible(contents.manifest, settings, embedder)
    except IndexStoreError as exc:
        return None, str(exc)
    return StoredVersion.of(contents), ""


def vector_record(chunk: Chunk) -> VectorRecord:
    return VectorRecord(chunk.id, chunk.doc, chunk.region, lexical_text(chunk))


def _update_vectors(
    settings: Settings,
    embedder: Embedder,
    previous: StoredVersion | None,
    keep: np.ndarray,
    fresh: list[Chunk],
    total: int,
    progress: bool,
) -> tuple[VectorStore, int]:
    """The previous store minus the rows ``keep`` drops, plus ``fresh`` rows (reusing stored
    vectors of chunk ids it already has); or a new store. Returns it and how many chunks were
    embedded."""
    fresh_vectors = np.zeros((len(fresh), embedder.dimension), dtype=np.float32)
    todo = list(range(len(fresh)))
    if previous is None:
        vectors = new_vector_store(settings, embedder.dimension, total)
    else:
        vectors = previous.vectors
        stored = set(previous.chunk_ids)
        reusable = [i for i, c in enumerate(fresh) if c.id in stored]
        if reusable:
            fresh_vectors[reusable] = vectors.get_vectors([fresh[i].id for i in reusable])
            todo = [i for i in todo if fresh[i].id not in stored]
        vectors.delete([i for i, kept in zip(previous.chunk_ids, keep, strict=True) if not kept])
    texts = {r: embedding_text(fresh[r]) for r in todo}
    cache = open_embedding_cache(settings, embedder) if todo else None
    if cache is not None:
        cached = cache.lookup([texts[r] for r in todo])
        for position, vector in cached.items():
            fresh_vectors[todo[position]] = vector
        todo = [r for position, r in enumerate(todo) if position not in cached]
    batch = 64
    with tqdm(
        total=len(todo), desc="embedding chunks", unit="chunk", disable=not progress or not todo
    ) as bar:
        for start in range(0, len(todo), batch):
            rows = todo[start : start + batch]
            batch_texts = [texts[r] for r in rows]
            fresh_vectors[rows] = embedder.embed_passages(batch_texts)
            if cache is not None:  # batch by batch: a killed build keeps what it paid for
                cache.store(batch_texts, fresh_vectors[rows])
            bar.update(len(rows))
    if cache is not None:
        cache.close()
    vectors.add([vector_record(c) for c in fresh], fresh_vectors)
    if isinstance(vectors, FaissVectorStore):
        params = index_params_for(vectors.size, settings)
        if params.kind != vectors.index.kind:
            vectors = vectors.reindexed(params)  # the corpus crossed the exact/HNSW threshold
    return vectors, len(todo)
