"""planqa's hybrid search as a LangChain retriever, so it plugs into any LangChain chain.

planqa's own pipeline calls ``hits`` on the same object: one retriever, two ways to read it.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from index.search import Hit, HybridSearcher
from rag.reranker import CrossEncoderReranker


def hit_to_document(hit: Hit) -> LCDocument:
    metadata = hit.to_dict()
    text = metadata.pop("text")
    return LCDocument(page_content=text, metadata=metadata, id=hit.chunk.id)


class PlanqaRetriever(BaseRetriever):
    """LangChain Documents whose metadata holds doc, region, title, chapter, offsets, score.

    With a reranker, the top ``rerank_candidates`` hybrid hits are reordered before the cut to k.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

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

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LCDocument]:
        return [
            hit_to_document(hit) for hit in self.hits(query, kwargs.get("k"), kwargs.get("region"))
        ]
