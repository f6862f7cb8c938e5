"""planqa's retrieval as a LangChain retriever, so it plugs into any LangChain chain.

It wraps the ``PassageRetriever`` that planqa's own pipeline calls: one retrieval, two ways to
read it (``Pipeline.retriever.as_langchain()`` gives the pipeline's own, reranker included).
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from planqa.index.search import Hit
from planqa.rag.retrieval import PassageRetriever


def hit_to_document(hit: Hit) -> LCDocument:
    metadata = hit.to_dict()
    text = metadata.pop("text")
    return LCDocument(page_content=text, metadata=metadata, id=hit.chunk.id)


class PlanqaRetriever(BaseRetriever):
    """LangChain Documents whose metadata holds doc, region, title, chapter, offsets, score.

    ``invoke(query, k=…, region=…)`` overrides the wrapped retriever's k and region per call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    passages: PassageRetriever

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LCDocument]:
        hits = self.passages.hits(query, kwargs.get("k"), kwargs.get("region"))
        return [hit_to_document(hit) for hit in hits]
