"""planqa's retrieval as a LangChain retriever, so it plugs into any LangChain chain.

It wraps the ``PassageRetriever`` that planqa's own pipeline calls: one retrieval, two ways to
read it (``as_langchain(pipeline.retriever)`` gives the pipeline's own, reranker included). This
module imports :mod:`rag.retrieval` and not the other way round: LangChain loads only for callers
who want it, and the plain retriever never depends on its adapter.
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
    """A hit as a LangChain Document: the passage text, everything else in the metadata."""
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


def as_langchain(passages: PassageRetriever) -> PlanqaRetriever:
    """``passages`` (e.g. ``Pipeline.retriever``) as a LangChain ``BaseRetriever``."""
    return PlanqaRetriever(passages=passages)
