"""What an answer is: text with [n] markers, the citations they point to, and what was considered.

This is the output contract the CLI, the web UI and the evaluation read; ``to_dict`` gives exactly
the JSON documented in the README. A citation's ``text`` is always ``document.text[start:end]``;
``quote_start``/``quote_end`` mark the supporting sentence inside it for highlighting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from planqa.index.search import Hit
from planqa.rag.question import QuestionAnalysis

#: The fixed refusal, shown and matched verbatim.
NOT_FOUND = "未在现有文件中找到相关内容"
ANSWER_MODES = ("extractive", "llm")


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

    @classmethod
    def from_hit(cls, n: int, hit: Hit, quote: tuple[int, int] | None = None) -> Citation:
        chunk = hit.chunk
        quote_start, quote_end = quote or (chunk.start, chunk.end)
        return cls(
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


class Answerer(Protocol):
    """Turns retrieved passages into an Answer; the pipeline owns retrieval and timing."""

    mode: str

    def answer(self, question: QuestionAnalysis, hits: list[Hit]) -> Answer: ...


class ScopedAnswerer(Answerer, Protocol):
    """An answerer that also says which passages keep to the question's hard constraints: the
    LLM answerer's fallback, whose check decides what the model may read."""

    def passages_in_scope(self, question: QuestionAnalysis, hits: list[Hit]) -> list[Hit]: ...
