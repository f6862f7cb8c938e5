"""A question in, a cited answer out: analyse, retrieve, answer, time it.

The pipeline loads the index and the model once; ``ask`` is then cheap, which is what batch
evaluation (``planqa ask --questions``), the chat and the web UI rely on. A ``Conversation`` keeps
the previous turn so that follow-ups ("那它的GDP目标呢？") are made self-contained before search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from planqa.corpus.errors import InputError
from planqa.corpus.settings import Settings
from planqa.index.search import HybridSearcher
from planqa.rag.answer import ANSWER_MODES, Answer
from planqa.rag.extractive import ExtractiveAnswerer
from planqa.rag.question import QuestionAnalysis, QuestionAnalyzer
from planqa.rag.reranker import make_reranker
from planqa.rag.retrieval import PassageRetriever


@dataclass
class Conversation:
    """The state a follow-up question needs: the previous turn's analysis."""

    previous: QuestionAnalysis | None = None
    turns: list[Answer] = field(default_factory=list)

    def clear(self) -> None:
        self.previous = None
        self.turns.clear()


class Pipeline:
    def __init__(self, settings: Settings, searcher: HybridSearcher, chat_model=None) -> None:
        self.settings = settings
        self.searcher = searcher
        self.retriever = PassageRetriever(
            searcher=searcher,
            k=settings.answer_passages,
            reranker=make_reranker(settings),
            rerank_candidates=settings.rerank_candidates,
        )
        self.analyzer = QuestionAnalyzer(searcher)
        self.extractive = ExtractiveAnswerer(searcher, settings)
        self._chat_model = chat_model
        self._llm = None

    @classmethod
    def open(cls, settings: Settings, chat_model=None) -> Pipeline:
        return cls(settings, HybridSearcher.open(settings), chat_model)

    @property
    def llm_configured(self) -> bool:
        return self._chat_model is not None or self.settings.llm_provider is not None

    def answerer(self, mode: str):
        if mode not in ANSWER_MODES:
            raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(ANSWER_MODES)}")
        if mode == "extractive":
            return self.extractive
        if self._llm is None:
            from planqa.rag.llm import LLMAnswerer

            self._llm = LLMAnswerer(self.settings, self._chat_model, fallback=self.extractive)
        return self._llm

    def prepare(
        self, question: str, region: str | None = None, conversation: Conversation | None = None
    ) -> tuple[QuestionAnalysis, list]:
        """Analyse (resolving follow-ups) and retrieve; shared by ``ask`` and streaming UIs."""
        previous = conversation.previous if conversation else None
        resolved = self.analyzer.resolve_follow_up(question, previous)
        analysis = self.analyzer.analyse(resolved)
        hits = self.retriever.hits(analysis.text, region=region)
        return analysis, hits

    def ask(
        self,
        question: str,
        *,
        mode: str = "extractive",
        region: str | None = None,
        conversation: Conversation | None = None,
        id: str | None = None,
    ) -> Answer:
        started = time.perf_counter()
        answerer = self.answerer(mode)
        analysis, hits = self.prepare(question, region, conversation)
        answer = answerer.answer(analysis, hits)
        answer = replace(
            answer,
            question=question,
            id=id,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            details={**answer.details, "resolved_question": analysis.text},
        )
        if conversation is not None:
            conversation.previous = analysis
            conversation.turns.append(answer)
        return answer
