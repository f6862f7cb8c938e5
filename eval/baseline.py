"""The baseline planqa must beat: the LangChain pipeline a user builds in an afternoon.

Fixed-size recursive character chunks (500 characters, 50 overlap, LangChain's default
separators), the *same* embedding model as planqa wrapped as a LangChain ``Embeddings``, and an
in-memory ``FAISS`` vector store with its default (L2) distance. Sharing the embedder makes the
comparison about chunking, context and hybrid retrieval, not about which model is better.

The store is built in memory and never saved: ``FAISS.save_local`` pickles its docstore.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter

from planqa.corpus.chunking import split_sentences
from planqa.corpus.documents import Document
from planqa.corpus.errors import InputError
from planqa.index.embedder import Embedder

BASELINE_CHUNK_SIZE = 500
BASELINE_CHUNK_OVERLAP = 50
#: The baseline's answer is the top passage's first sentences, cut to about this many characters.
BASELINE_ANSWER_CHARS = 150


@dataclass(frozen=True)
class BaselineHit:
    """A baseline passage. ``score`` is LangChain's L2 distance: lower means closer."""

    doc: str
    start: int
    end: int
    text: str
    score: float


class PlanqaEmbeddings(Embeddings):
    """Adapts a planqa embedder (with its query/passage prompts) to LangChain's interface."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_passages(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_queries([text])[0].tolist()


def split_documents(documents: Iterable[Document]) -> list[LCDocument]:
    """LangChain chunks of each document's text, with ``source`` and ``start_index`` metadata.

    The splitter finds ``start_index`` with ``str.find`` from an estimated offset; each one is
    checked here against the document text, because an offset that does not point at the chunk
    would make the overlap rule of the metrics score the wrong characters.
    """
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=BASELINE_CHUNK_SIZE,
        chunk_overlap=BASELINE_CHUNK_OVERLAP,
        add_start_index=True,
    )
    chunks: list[LCDocument] = []
    for document in documents:
        pieces = splitter.create_documents([document.text], metadatas=[{"source": document.name}])
        for piece in pieces:
            _check_offset(document, piece)
        chunks.extend(pieces)
    return chunks


def _check_offset(document: Document, piece: LCDocument) -> None:
    start = piece.metadata["start_index"]
    if start < 0 or document.text[start : start + len(piece.page_content)] != piece.page_content:
        raise InputError(
            f"the LangChain splitter reported start_index={start} for a chunk of {document.name} "
            "that is not at that offset; the baseline cannot be scored by offsets"
        )


class BaselineRetriever:
    """``search(query, k)`` over the afternoon pipeline; built eagerly (it embeds every chunk)."""

    def __init__(self, documents: Iterable[Document], embedder: Embedder) -> None:
        self.chunks = split_documents(documents)
        if not self.chunks:
            raise InputError("the baseline has no documents to split; give it at least one")
        self.store = _faiss_class().from_documents(self.chunks, PlanqaEmbeddings(embedder))

    def search(self, query: str, k: int = 10) -> list[BaselineHit]:
        k = min(k, len(self.chunks))
        return [
            BaselineHit(
                doc=chunk.metadata["source"],
                start=chunk.metadata["start_index"],
                end=chunk.metadata["start_index"] + len(chunk.page_content),
                text=chunk.page_content,
                score=float(distance),
            )
            for chunk, distance in self.store.similarity_search_with_score(query, k=k)
        ]


def _faiss_class() -> Any:
    """LangChain's FAISS store, imported on first use without its package-sunset warning.

    The warning is about langchain-community's maintenance, not about this use; importing lazily
    also keeps ``import eval.baseline`` cheap for code that never builds a baseline.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.vectorstores import FAISS
    return FAISS


def baseline_answer(passage_text: str, max_chars: int = BASELINE_ANSWER_CHARS) -> tuple[int, int]:
    """The afternoon pipeline's "answer": the span of the top passage's first sentences.

    Returns ``(start, end)`` inside ``passage_text``. Whole sentences are added while the span
    stays within ``max_chars``; a first sentence longer than that is cut to it. The budget keeps
    the baseline honest: the whole 500-character passage would "contain" a gold number far more
    often than an answer a user reads at a glance. The baseline never abstains.

    >>> text = "第一句。第二句。第三句很长很长。"
    >>> start, end = baseline_answer(text, max_chars=10); text[start:end]
    '第一句。第二句。'
    >>> baseline_answer("  一二三四五六七八九十。", max_chars=4)
    (2, 6)
    """
    spans = split_sentences(passage_text)
    if not spans:
        return 0, min(len(passage_text), max_chars)
    start, end = spans[0][0], min(spans[0][1], spans[0][0] + max_chars)
    for _, sentence_end in spans[1:]:
        if sentence_end - start > max_chars:
            break
        end = sentence_end
    return start, end
