"""Building and updating an index from documents.

An update re-chunks every document (cheap) but embeds only chunks whose id is not already in the
current index: ids hash document, span and text, so unchanged text is never re-embedded. When no
document and no setting changed, nothing is written at all.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from corpus.chunking import CHUNKER_VERSION, Chunk, chunk_document
from corpus.documents import Document
from corpus.errors import DocumentError, IndexStoreError
from corpus.loader import LoadProblem, load_corpus
from corpus.settings import Settings
from index.bm25 import BM25Index
from index.embedder import Embedder, make_embedder
from index.store import FORMAT_VERSION, IndexContents, IndexStore, planqa_version
from index.text_tokenizer import ChineseTokenizer
from index.vectors import INDEX_KIND_FLAT, VectorIndex


@dataclass
class BuildReport:
    index_dir: str
    documents: int
    chunks: int
    embedded: int
    reused: int
    seconds: float
    up_to_date: bool = False
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Bumped whenever embedding_text or lexical_text change, so old indexes are rebuilt, not misread.
INDEXED_TEXT_VERSION = "context-2"


def embedding_text(chunk: Chunk) -> str:
    """What the model sees: the chunk with a reader's context (region, plan, chapter)."""
    return f"{chunk.region}《{chunk.title}》{chunk.chapter}\n{chunk.text}"


def lexical_text(chunk: Chunk) -> str:
    """What BM25 sees: headings count as words of their chunk, so a chapter title can match.

    The region name is left out on purpose: repeated in every chunk of a document it would make
    any query containing 南通 or 开发区 favour that whole document; regions named in a query are
    handled by region-aware fusion instead.
    """
    return f"{chunk.chapter}\n{chunk.text}"


def region_vocabulary(documents: list[Document]) -> list[str]:
    return sorted({name for d in documents for name in d.meta.region_names})


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
    }


def check_compatible(manifest: dict[str, Any], settings: Settings, embedder: Embedder) -> None:
    """Refuse an index built with another model, prompts or chunking, naming both ways out."""
    expected = settings_fingerprint(settings, embedder)
    for section, wanted in expected.items():
        found = manifest.get(section, {})
        for key, value in wanted.items():
            if found.get(key) != value:
                hint = ""
                if section == "embedding":
                    hint = (
                        f", or set PLANQA_EMBEDDING_MODEL={found.get('model')!r} to use it as built"
                    )
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
    started = time.perf_counter()
    store = IndexStore(settings.resolved_index_dir)
    loaded = load_corpus(paths or [settings.corpus_dir])
    documents = loaded.documents
    if not documents:
        details = (
            "; ".join(p.reason for p in loaded.problems) or "no .txt/.md/.docx/.pdf files found"
        )
        raise DocumentError(f"nothing to index ({details})")
    embedder = embedder or make_embedder(settings, progress=progress)
    fingerprint = settings_fingerprint(settings, embedder)

    previous = _previous_contents(store, settings, embedder, rebuild)
    old_hashes = (
        {} if previous is None else {d["file"]: d["sha256"] for d in previous.manifest["documents"]}
    )
    new_hashes = {d.name: d.sha256 for d in documents}
    report = BuildReport(
        index_dir=str(store.directory),
        documents=len(documents),
        chunks=0,
        embedded=0,
        reused=0,
        seconds=0.0,
        added=sorted(set(new_hashes) - set(old_hashes)),
        changed=sorted(n for n in new_hashes if n in old_hashes and old_hashes[n] != new_hashes[n]),
        removed=sorted(set(old_hashes) - set(new_hashes)),
        problems=loaded.problems,
    )
    if previous is not None and old_hashes == new_hashes:
        report.up_to_date = True
        report.chunks = len(previous.chunks)
        report.seconds = time.perf_counter() - started
        return report

    chunks = chunk_documents(documents, settings)
    vectors, report.reused = _embed_with_reuse(chunks, embedder, previous, progress)
    report.embedded = len(chunks) - report.reused
    tokenizer = ChineseTokenizer(region_vocabulary(documents))
    bm25 = BM25Index.build(tokenizer.tokenize_many(lexical_text(c) for c in chunks))
    vector_index = VectorIndex.build(vectors, embedder.dimension)
    manifest = {
        "format": FORMAT_VERSION,
        "planqa_version": planqa_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **fingerprint,
        "dimension": embedder.dimension,
        "tokenizer": {"signature": tokenizer.signature, "user_words": list(tokenizer.user_words)},
        "vector_index": {"kind": INDEX_KIND_FLAT, "metric": "inner_product", "normalized": True},
        "counts": {"documents": len(documents), "chunks": len(chunks)},
        "documents": [
            {
                "file": d.name,
                "sha256": d.sha256,
                "region": d.meta.region,
                "title": d.meta.title,
                "chunks": sum(1 for c in chunks if c.doc == d.name),
            }
            for d in documents
        ],
    }
    store.write(manifest, documents, chunks, vector_index, bm25)
    report.chunks = len(chunks)
    report.seconds = time.perf_counter() - started
    return report


def _previous_contents(
    store: IndexStore, settings: Settings, embedder: Embedder, rebuild: bool
) -> IndexContents | None:
    """The current index when it can be reused; a damaged or incompatible one is simply replaced."""
    if rebuild or not store.exists():
        return None
    try:
        contents = store.load()
        check_compatible(contents.manifest, settings, embedder)
    except IndexStoreError:
        return None
    return contents


def _embed_with_reuse(
    chunks: list[Chunk], embedder: Embedder, previous: IndexContents | None, progress: bool
) -> tuple[np.ndarray, int]:
    vectors = np.zeros((len(chunks), embedder.dimension), dtype=np.float32)
    reusable: dict[str, int] = {}
    if previous is not None:
        reusable = {chunk.id: row for row, chunk in enumerate(previous.chunks)}
        old_vectors = previous.vectors.vectors()
    todo = []
    for row, chunk in enumerate(chunks):
        if chunk.id in reusable:
            vectors[row] = old_vectors[reusable[chunk.id]]
        else:
            todo.append(row)
    batch = 64
    with tqdm(
        total=len(todo), desc="embedding chunks", unit="chunk", disable=not progress or not todo
    ) as bar:
        for start in range(0, len(todo), batch):
            rows = todo[start : start + batch]
            vectors[rows] = embedder.embed_passages([embedding_text(chunks[r]) for r in rows])
            bar.update(len(rows))
    return vectors, len(chunks) - len(todo)
