"""What a build changes: which documents are new, changed or gone, and which rows the new version
keeps of the previous one.

The new version's rows are the previous rows it keeps, in their old order, then fresh ones. A
kept document keeps its chunks, vectors and BM25 entries; only new or changed documents are
chunked. One exception moves old chunks too: a region word that came or went (a document with a
new region name was added, the last one with it removed) changes how jieba segments every chunk
containing it, so those chunks move to the end with the fresh ones and are tokenised again
(their vectors are reused, not re-embedded).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from planqa.corpus.chunking import Chunk, chunk_document
from planqa.corpus.documents import Document
from planqa.corpus.settings import Settings
from planqa.index.indexed_text import lexical_text
from planqa.index.jieba_dictionary import prepare_query_dictionary
from planqa.index.manifest import CatalogueEntry, catalogue_entry, document_meta
from planqa.index.text_tokenizer import ChineseTokenizer
from planqa.index.versions import StoredVersion


def chunk_documents(documents: list[Document], settings: Settings) -> list[Chunk]:
    """Every chunk of ``documents``, in order, with the configured sizes."""
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


def region_vocabulary(catalogue: list[CatalogueEntry]) -> list[str]:
    """Region names and aliases of the catalogued documents (their ``meta.region_names``)."""
    return sorted(
        {name for entry in catalogue for name in (entry["region"], *entry["aliases"]) if name}
    )


@dataclass
class Changes:
    """How the documents being indexed differ from the previous version's catalogue."""

    #: The previous catalogue by file name, in row order (empty without a previous version).
    old_docs: dict[str, CatalogueEntry]
    #: The documents given to the build, by name.
    incoming: dict[str, Document]
    #: Documents whose rows are kept as they are: same text and metadata (with ``add``, also
    #: every previous document not given again).
    unchanged: set[str]
    #: Hash of every document of the new version, by name.
    new_hashes: dict[str, str]

    @cached_property
    def old_hashes(self) -> dict[str, str]:
        return {name: entry["sha256"] for name, entry in self.old_docs.items()}

    @property
    def added(self) -> list[str]:
        return sorted(set(self.new_hashes) - set(self.old_hashes))

    @property
    def changed(self) -> list[str]:
        old = self.old_hashes
        return sorted(n for n, h in self.new_hashes.items() if n in old and old[n] != h)

    @property
    def removed(self) -> list[str]:
        return sorted(set(self.old_hashes) - set(self.new_hashes))

    @property
    def nothing(self) -> bool:
        """Every document of the new version is a previous one, unchanged."""
        return self.unchanged == set(self.old_docs) == set(self.new_hashes)


def compare(previous: StoredVersion | None, documents: list[Document], add: bool) -> Changes:
    """What changed between the previous version and ``documents`` (with ``add``: and the rest
    of the previous version)."""
    old_docs = {} if previous is None else previous.documents
    incoming = {d.name: d for d in documents}
    old_hashes = {name: entry["sha256"] for name, entry in old_docs.items()}
    new_hashes = {**(old_hashes if add else {}), **{n: d.sha256 for n, d in incoming.items()}}
    unchanged = {
        name
        for name, d in incoming.items()
        if old_hashes.get(name) == d.sha256 and document_meta(old_docs[name]) == d.meta
    }
    if add:
        unchanged |= old_docs.keys() - incoming.keys()
    return Changes(old_docs, incoming, unchanged, new_hashes)


@dataclass
class Rows:
    """The rows of the new version: masks over the previous rows it keeps, and what it adds."""

    #: Documents to write (new or changed), in order.
    new_documents: list[Document]
    #: Chunks to write after the kept ones: moved old chunks first, then those of new_documents.
    fresh: list[Chunk]
    #: Per previous document row / chunk row: kept?
    kept_documents: np.ndarray
    keep: np.ndarray
    #: The new version's catalogue, in row order.
    catalogue: list[CatalogueEntry]
    tokenizer: ChineseTokenizer

    @property
    def kept_rows(self) -> np.ndarray:
        return np.flatnonzero(self.keep)

    @property
    def total(self) -> int:
        return int(np.count_nonzero(self.keep)) + len(self.fresh)


def plan_rows(previous: StoredVersion | None, changes: Changes, settings: Settings) -> Rows:
    """Chunk what is new, keep the rest, and move the old chunks a region word change touches."""
    new_documents = [d for d in changes.incoming.values() if d.name not in changes.unchanged]
    fresh = chunk_documents(new_documents, settings)
    per_document = Counter(c.doc for c in fresh)
    old_docs, unchanged = changes.old_docs, changes.unchanged
    kept_documents = np.fromiter((n in unchanged for n in old_docs), bool, len(old_docs))
    # Kept documents keep their entries: their chunks stay theirs even when rows move below.
    catalogue = [entry for name, entry in old_docs.items() if name in unchanged]
    catalogue += [catalogue_entry(d, per_document[d.name]) for d in new_documents]
    old_chunk_docs = [] if previous is None else previous.chunk_docs
    keep = np.fromiter((d in unchanged for d in old_chunk_docs), bool, len(old_chunk_docs))
    tokenizer = ChineseTokenizer(region_vocabulary(catalogue))
    prepare_query_dictionary(settings.cache_dir)
    # Only local BM25 tokens depend on the region words: Milvus tokenises for itself.
    if previous is not None and settings.lexical_backend == "local":
        fresh = _moved_by_new_words(previous, tokenizer, keep) + fresh
    return Rows(new_documents, fresh, kept_documents, keep, catalogue, tokenizer)


def _moved_by_new_words(
    previous: StoredVersion, tokenizer: ChineseTokenizer, keep: np.ndarray
) -> list[Chunk]:
    """The kept chunks that contain a region word that came or went, now no longer kept (``keep``
    is updated): they are written again with the fresh ones."""
    changed_words = set(previous.manifest.user_words) ^ set(tokenizer.user_words)
    if not changed_words:
        return []
    candidates = previous.chunks_mentioning(changed_words)
    moved = _containing(candidates, keep, changed_words)
    keep[moved] = False
    return [candidates[row] for row in moved]


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
