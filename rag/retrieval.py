"""Passages for answering: planqa's hybrid search, then the optional cross-encoder reranker.

Plain Python on purpose: importing LangChain costs ~1.4 s, a quarter of a cold `planqa ask`, and
the extractive answer does not need it. ``rag.retriever.PlanqaRetriever`` wraps this very object
as a LangChain ``BaseRetriever`` (``as_langchain``), so chains and planqa's own pipeline read the
same retrieval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from planqa.index.search import Hit, HybridSearcher
from planqa.rag.reranker import CrossEncoderReranker

if TYPE_CHECKING:
    from planqa.rag.retriever import PlanqaRetriever


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

    def hits(self, query: str, k: int | None = None, region: str | None = None) -> list[Hit]:
        total = len(self.searcher.contents.chunks)
        k = min(k or self.k, total)
        pool = min(max(k, self.rerank_candidates), total) if self.reranker else k
        hits = self.searcher.search(query, pool, region=region or self.region, doc=self.doc)
        return self.reranker.rerank(query, hits, k) if self.reranker else hits

    def as_langchain(self) -> PlanqaRetriever:
        from planqa.rag.retriever import PlanqaRetriever

        return PlanqaRetriever(passages=self)
