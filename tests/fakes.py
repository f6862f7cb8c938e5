"""Test doubles shared by the LLM answerer's tests."""

from __future__ import annotations

from index.search import Hit
from rag.answer import Answer
from rag.question import QuestionAnalysis


class FakeExtractive:
    """Stands in for rag.extractive.ExtractiveAnswerer: records that it was asked."""

    mode = "extractive"

    def __init__(self) -> None:
        self.calls = 0

    def answer(self, question: QuestionAnalysis, hits: list[Hit]) -> Answer:
        self.calls += 1
        return Answer(
            question=question.text,
            answer="抽取式回答[1]",
            abstained=False,
            citations=(),
            retrieved=tuple(hits),
            mode=self.mode,
            details={"extractive": "yes"},
        )
