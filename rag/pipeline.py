"""A question in, a cited answer out: analyse, retrieve, answer, time it.

The pipeline loads the index and the model once; ``ask`` is then cheap, which is what batch
evaluation (``planqa ask --questions``), the chat and the web UI rely on. A ``Conversation`` keeps
the previous turn so that follow-ups ("那它的GDP目标呢？") are made self-contained before search.

``ask`` gives the whole answer, ``stream`` the drafts an LLM writes on the way to it; both run
the same steps (:meth:`Pipeline._stages`), so a streamed answer is the answer ``ask`` gives,
timed, stamped and recorded in the conversation the same way.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from planqa.corpus.errors import InputError
from planqa.corpus.settings import Settings
from planqa.index.search import Hit, HybridSearcher
from planqa.rag.answer import Answer, Answerer
from planqa.rag.answer_model import load_answer_model
from planqa.rag.extractive import ExtractiveAnswerer
from planqa.rag.judging import SentenceJudging, tuning_from
from planqa.rag.question import QuestionAnalysis, QuestionAnalyzer
from planqa.rag.reranker import make_reranker
from planqa.rag.retrieval import PassageRetriever

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

#: A question that leans on an earlier turn: 「那它的GDP目标呢？」, 「该区…」, 「其…」.
_LEANS_ON_A_TURN = re.compile(
    r"^(?:那么?|还有|另外)?(?:它|其|该区|该地|这个区|这个地区)|^那.{0,12}呢[？?]?$"
)

#: One stage of a streamed answer: the draft so far (unverified LLM text), or the final Answer.
Stage = str | Answer


@dataclass
class Conversation:
    """The state a follow-up question needs: the previous turn's analysis."""

    previous: QuestionAnalysis | None = None
    turns: list[Answer] = field(default_factory=list)

    def clear(self) -> None:
        self.previous = None
        self.turns.clear()


def _llm_answerer(pipeline: Pipeline) -> Answerer:
    # Imported here: LangChain is loaded only when an LLM answer is asked for.
    from planqa.rag.llm import LLMAnswerer

    return LLMAnswerer(pipeline.settings, pipeline._chat_model, fallback=pipeline.extractive)


#: Answer mode -> how a pipeline makes that mode's answerer (once, on first use), so that a new
#: mode is one entry here instead of another branch in :meth:`Pipeline.answerer`.
ANSWERER_FACTORIES: dict[str, Callable[[Pipeline], Answerer]] = {
    "extractive": lambda pipeline: pipeline.extractive,
    "llm": _llm_answerer,
}


class Pipeline:
    """The loaded index, retriever and answerers; one instance serves every question."""

    def __init__(
        self,
        settings: Settings,
        searcher: HybridSearcher,
        chat_model: BaseChatModel | None = None,
    ) -> None:
        self.settings = settings
        self.searcher = searcher
        self.retriever = PassageRetriever(
            searcher=searcher,
            k=settings.answer_passages,
            reranker=make_reranker(settings),
            rerank_candidates=settings.rerank_candidates,
        )
        self.analyzer = QuestionAnalyzer(searcher)
        judge = load_answer_model(settings)
        self.extractive = ExtractiveAnswerer(
            searcher,
            settings,
            SentenceJudging(judge, tuning_from(settings)) if judge is not None else None,
        )
        self._chat_model = chat_model
        self._answerers: dict[str, Answerer] = {}

    @classmethod
    def open(cls, settings: Settings, chat_model: BaseChatModel | None = None) -> Pipeline:
        return cls(settings, HybridSearcher.open(settings), chat_model)

    @property
    def llm_configured(self) -> bool:
        return self._chat_model is not None or self.settings.llm_provider is not None

    def answerer(self, mode: str) -> Answerer:
        """The answerer of ``mode``, made on first use (the LLM's checks its configuration)."""
        factory = ANSWERER_FACTORIES.get(mode)
        if factory is None:
            choices = ", ".join(ANSWERER_FACTORIES)
            raise InputError(f"unknown mode {mode!r}; choose one of {choices}")
        if mode not in self._answerers:
            self._answerers[mode] = factory(self)
        return self._answerers[mode]

    def prepare(
        self, question: str, region: str | None = None, conversation: Conversation | None = None
    ) -> tuple[QuestionAnalysis, list[Hit]]:
        """Analyse (resolving follow-ups) and retrieve; shared by ``ask`` and streaming UIs."""
        analysis = self._analyse(question, conversation)
        return analysis, self.retriever.hits(analysis.query, region=region)

    def _analyse(self, question: str, conversation: Conversation | None) -> QuestionAnalysis:
        previous = conversation.previous if conversation else None
        return self.analyzer.analyse(self.analyzer.resolve_follow_up(question, previous))

    def _filter_overruled(self, analysis: QuestionAnalysis, region: str | None) -> bool:
        """Whether the question names regions none of which the region filter selects: the
        question says what it is about, so the filter is ignored (and the answer says so)
        rather than answering about the filter's region with another region's figure."""
        if not region or not analysis.regions:
            return False
        filtered = set(self.searcher.documents_for_region(region))
        return not any(
            filtered & set(self.searcher.documents_for_region(r)) for r in analysis.regions
        )

    def _which_region(self, question: str, mode: str, id: str | None, started: float) -> Answer:
        """A follow-up («那它的…呢») with no earlier turn and no region: ask which one is meant."""
        choices = "、".join(self.searcher.regions()[:5])
        return Answer(
            question=question,
            answer=f"请先说明是哪个地区（例如：{choices}），或在地区筛选中选择一个。",
            abstained=True,
            citations=(),
            retrieved=(),
            mode=mode,
            id=id,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            details={"needs_region": True},
        )

    def ask(
        self,
        question: str,
        *,
        mode: str = "extractive",
        region: str | None = None,
        conversation: Conversation | None = None,
        id: str | None = None,
    ) -> Answer:
        """The cited answer to ``question`` (a follow-up of ``conversation``'s last turn, which
        records this one)."""
        *_, answer = self._stages(question, mode, region, conversation, id, drafts=False)
        return answer

    def stream(
        self,
        question: str,
        *,
        mode: str = "extractive",
        region: str | None = None,
        conversation: Conversation | None = None,
        id: str | None = None,
    ) -> Iterator[Stage]:
        """The answer as it takes shape: the draft so far (str) each time the LLM writes more,
        then the verified :class:`Answer` — the one ``ask`` would give.

        An answerer without ``stream`` (extraction) has nothing to show before its answer, so
        the one stage is ``ask``'s answer, got through ``ask`` itself: every whole answer goes
        through that one method, whatever wraps or replaces it.
        """
        if not hasattr(self.answerer(mode), "stream"):
            yield self.ask(question, mode=mode, region=region, conversation=conversation, id=id)
            return
        yield from self._stages(question, mode, region, conversation, id, drafts=True)

    def _stages(
        self,
        question: str,
        mode: str,
        region: str | None,
        conversation: Conversation | None,
        id: str | None,
        *,
        drafts: bool,
    ) -> Iterator[Stage]:
        """Every answer's bookkeeping, written once: time it from the start, analyse and
        retrieve, answer (streaming drafts when asked to and the answerer can), then stamp the
        Answer with the question, id, latency and resolved question and record the turn."""
        started = time.perf_counter()
        answerer = self.answerer(mode)
        analysis = self._analyse(question, conversation)
        first_turn = conversation is None or conversation.previous is None
        if first_turn and not (analysis.regions or region) and _LEANS_ON_A_TURN.search(question):
            yield self._which_region(question, mode, id, started)
            return
        ignored = self._filter_overruled(analysis, region)
        hits = self.retriever.hits(analysis.query, region=None if ignored else region)
        start_stream = getattr(answerer, "stream", None) if drafts else None
        if start_stream is not None:
            stream = start_stream(analysis, hits)
            draft = ""
            for delta in stream:
                draft += delta
                yield draft
            answer = stream.result()
        else:
            answer = answerer.answer(analysis, hits)
        answer = replace(
            answer,
            question=question,
            id=id,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            details={**answer.details, "resolved_question": analysis.text},
        )
        # Citations made without the documents at hand (the LLM's) get their pages here.
        answer = answer.with_pages(self.searcher.documents)
        if ignored:
            named = "、".join(analysis.regions)
            note = f"问题问的是{named}，已忽略地区筛选“{region}”"
            answer = replace(answer, notice=f"{note}；{answer.notice}" if answer.notice else note)
        if conversation is not None:
            conversation.previous = analysis
            conversation.turns.append(answer)
        yield answer
