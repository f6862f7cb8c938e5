"""What an answer is: text with [n] markers, the citations they point to, and what was considered.

This is the output contract the CLI, the web UI and the evaluation read; ``to_dict`` gives exactly
the JSON documented in the README. A citation's ``text`` is always ``document.text[start:end]``;
``quote_start``/``quote_end`` mark the supporting sentence inside it for highlighting.
A citation into a paged file (PDF) also says the ``page`` its quote starts on, and ``ocr`` when
that page's text was recognised from a scan (shown as 「扫描件识别」: it may hold misreadings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from planqa.corpus.documents import Document
from planqa.index.search import Hit
from planqa.rag.question import QuestionAnalysis

#: The fixed refusal, shown and matched verbatim.
NOT_FOUND = "未在现有文件中找到相关内容"
ANSWER_MODES = ("extractive", "llm")
#: How a citation into OCR text is marked where it is shown.
OCR_MARK = "扫描件识别"


@dataclass(frozen=True)
class Citation:
    n: int
    doc: str
    region: str
    title: str
    chapter: str
    start: int
    end: int
    text: str
    quote_start: int
    quote_end: int
    #: The page (1-based) the quote starts on, for a paged file (PDF); None otherwise.
    page: int | None = None
    #: The quote's page was read by OCR from a scan (「扫描件识别」).
    ocr: bool = False

    @classmethod
    def from_hit(
        cls,
        n: int,
        hit: Hit,
        quote: tuple[int, int] | None = None,
        document: Document | None = None,
    ) -> Citation:
        """The citation of ``hit`` (its ``quote`` span, else the whole chunk); with the cited
        ``document`` it also carries the quote's page."""
        chunk = hit.chunk
        quote_start, quote_end = quote or (chunk.start, chunk.end)
        citation = cls(
            n,
            chunk.doc,
            chunk.region,
            chunk.title,
            chunk.chapter,
            chunk.start,
            chunk.end,
            chunk.text,
            quote_start,
            quote_end,
        )
        return citation.with_page(document) if document is not None else citation

    def with_page(self, document: Document) -> Citation:
        """This citation with the page of its quote in ``document`` (unchanged without pages)."""
        page = document.meta.page_at(self.quote_start)
        if page is None:
            return self
        return replace(self, page=page, ocr=document.meta.is_ocr_page(page))

    @property
    def page_label(self) -> str:
        """What a viewer shows: 「第3页」, 「第3页（扫描件识别）」, or "" without pages."""
        if self.page is None:
            return ""
        return f"第{self.page}页" + (f"（{OCR_MARK}）" if self.ocr else "")


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...]
    retrieved: tuple[Hit, ...]
    mode: str
    latency_ms: float = 0.0
    id: str | None = None
    #: Shown to the user when the answer is degraded, e.g. the LLM failed and extraction answered.
    notice: str | None = None
    #: Statements without a citation (LLM mode): flagged, never silently trusted.
    uncited: tuple[str, ...] = ()
    #: The abstention decision's inputs, so evaluators can see why planqa answered or refused.
    confidence: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [asdict(c) for c in self.citations],
            "retrieved": [hit.to_dict() for hit in self.retrieved],
            "mode": self.mode,
            "latency_ms": round(self.latency_ms, 1),
            "notice": self.notice,
            "uncited": list(self.uncited),
            "confidence": self.confidence,
        }
        if self.details:
            data["details"] = self.details
        return data

    def with_pages(self, documents: Mapping[str, Document]) -> Answer:
        """This answer with every citation's page set from the cited documents: for answerers
        that make citations without the documents at hand (the LLM path's verify_reply)."""
        citations = tuple(
            c.with_page(documents[c.doc]) if c.page is None and c.doc in documents else c
            for c in self.citations
        )
        return replace(self, citations=citations)


class Answerer(Protocol):
    """Turns retrieved passages into an Answer; the pipeline owns retrieval and timing."""

    mode: str

    def answer(self, question: QuestionAnalysis, hits: list[Hit]) -> Answer: ...


class ScopedAnswerer(Answerer, Protocol):
    """An answerer that also says which passages keep to the question's hard constraints: the
    LLM answerer's fallback, whose check decides what the model may read."""

    def passages_in_scope(self, question: QuestionAnalysis, hits: list[Hit]) -> list[Hit]: ...
