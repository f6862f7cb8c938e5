"""What of a chunk each retriever reads: the model's text, BM25's text, a vector store's record.

These definitions are part of an index's identity: ``INDEXED_TEXT_VERSION`` is recorded in the
manifest (index/manifest.py), so changing either text without bumping it would let an old index
be searched as if it had been built the new way.
"""

from __future__ import annotations

from planqa.corpus.chunking import Chunk
from planqa.index.traditional import to_simplified
from planqa.index.vector_base import VectorRecord

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


def vector_record(chunk: Chunk) -> VectorRecord:
    """A chunk's entry in a vector store: its id, the fields filters use, and its lexical text
    (which Milvus indexes for its own full-text search)."""
    return VectorRecord(chunk.id, chunk.doc, chunk.region, lexical_text(chunk))
