"""Test doubles shared by the LLM answerer's tests."""

from __future__ import annotations

from planqa.corpus.chunking import Chunk
from planqa.index.search import Hit
from planqa.rag.answer import Answer
from planqa.rag.question import QuestionAnalysis


class FakeExtractive:
    """Stands in for rag.extractive.ExtractiveAnswerer: records that it was asked."""

    mode = "extractive"

    def __init__(self) -> None:
        self.calls = 0

    def passages_in_scope(self, question: QuestionAnalysis, hits: list[Hit]) -> list[Hit]:
        return list(hits)

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


def make_hit(n: int, doc: str, region: str, title: str, chapter: str, text: str) -> Hit:
    """The n-th retrieved passage (1-based), at offset 100·n of its document."""
    start = 100 * n
    chunk = Chunk(f"c{n}", doc, region, title, chapter, start, start + len(text), text)
    return Hit(chunk=chunk, score=1.0 / n, retriever="hybrid")
