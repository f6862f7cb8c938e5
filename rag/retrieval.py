"""Passages for answering: planqa's hybrid search, then the optional cross-encoder reranker.

Plain Python on purpose: importing LangChain costs ~1.4 s, a quarter of a cold `planqa ask`, and
the extractive answer does not need it. :func:`rag.langchain_retriever.as_langchain` wraps this
very object as a LangChain ``BaseRetriever``, so chains and planqa's own pipeline read the same
retrieval; the adapter imports this module, never the reverse, so neither depends on the other's
import order.
"""

from __future__ import annotations

from dataclasses import dataclass

from planqa.index.query import SearchQuery
from planqa.index.search import Hit, HybridSearcher
from planqa.rag.reranker import CrossEncoderReranker


@dataclass
class PassageRetriever:
    """With a reranker, the top ``rerank_candidates`` hybrid hits are reordered before the cut
    to ``k``; filters by region or document apply before either."""

    searcher: HybridSearcher
    k: int = 6
    region: str | None = None
    doc: str | None = None
    reranker: CrossEncoderReranker | None = None
    rerank_candidates: int = 20

    def hits(
        self, query: str | SearchQuery, k: int | None = None, region: str | None = None
    ) -> list[Hit]:
        """``query`` is the pipeline's analysed question (``QuestionAnalysis.query``), which
        search reads without checking it again, or plain text, which search analyses."""
        total = len(self.searcher.contents.chunks)
        k = min(k or self.k, total)
        pool = min(max(k, self.rerank_candidates), total) if self.reranker else k
        hits = self.searcher.search(query, pool, region=region or self.region, doc=self.doc)
        if not self.reranker:
            return hits
        text = query.text if isinstance(query, SearchQuery) else query
        return self.reranker.rerank(text, hits, k)
