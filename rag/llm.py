"""LLM answering with verified citations, and a guaranteed way back to extraction.

A language model writes fluent answers but may cite passages that do not exist, state things it
was never given, change a figure, or obey instructions hidden in a document. So the model's
reply is never shown as-is: :func:`~rag.citations.verify_reply` parses its [n] markers, drops
markers that point at no passage, renumbers the rest 1..k in order of first appearance, and
flags every statement without a marker (``Answer.uncited``). A cited statement with a figure
its cited passages do not contain (达到800亿元[1] where passage 1 says 500亿元) is not presented
as verified either: it moves to ``uncited`` and the answer carries a ``notice``. A reply with no
valid, grounded citation left is not an answer planqa can stand behind, so the extractive
answerer answers instead, with a visible ``notice``; the same happens when the model fails or is
slower than ``settings.llm_timeout_s``. ``details["llm"]`` records what was done.

Citation parsing lives in :mod:`rag.citations` and number grounding in :mod:`rag.grounding`;
``VerifiedReply``, ``verify_reply``, ``split_statements`` and ``strip_reasoning`` are still
importable from here. Building the chat model (a provider registry) is :mod:`rag.chat_models`,
and bounding a call in time is :mod:`rag.deadlines`; ``make_chat_model`` and
``MAX_ANSWER_TOKENS`` are importable from here too. This module is the answerer alone.

Streaming (:meth:`LLMAnswerer.stream`) shows the raw tokens while they arrive and then hands the
UI the verified :class:`~rag.answer.Answer`, which replaces the streamed text.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from planqa.corpus.errors import InputError
from planqa.corpus.settings import Settings
from planqa.index.search import Hit
from planqa.rag.answer import NOT_FOUND, Answer, ScopedAnswerer
from planqa.rag.chat_models import MAX_ANSWER_TOKENS, make_chat_model, require_config
from planqa.rag.citations import VerifiedReply, split_statements, strip_reasoning, verify_reply
from planqa.rag.deadlines import call_with_deadline, failure_reason, stream_with_deadline
from planqa.rag.prompts import build_messages
from planqa.rag.question import QuestionAnalysis

__all__ = [
    "MAX_ANSWER_TOKENS",
    "AnswerStream",
    "LLMAnswerer",
    "VerifiedReply",
    "make_chat_model",
    "split_statements",
    "strip_reasoning",
    "verify_reply",
]

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage


def _content_text(message: Any) -> str:
    """Text of a message or chunk whose content may be a string or a list of content blocks."""
    text = getattr(message, "text", None)
    if isinstance(text, str):
        return str(text)
    content = getattr(message, "content", message)
    return content if isinstance(content, str) else str(content)


class LLMAnswerer:
    """Answers with a chat model, verifies the citations, falls back to ``fallback`` on failure.

    ``chat_model`` is for tests and custom setups; without it the configured model is built on
    first use (the configuration itself is checked at once, so a missing setting is reported
    before any question). ``fallback`` is the extractive answerer (same protocol).
    """

    mode = "llm"

    def __init__(
        self,
        settings: Settings,
        chat_model: BaseChatModel | None = None,
        *,
        fallback: ScopedAnswerer,
    ) -> None:
        if chat_model is None:
            require_config(settings)
        self.settings = settings
        self.fallback = fallback
        self._chat_model = chat_model
        self._lock = threading.Lock()

    @property
    def chat_model(self) -> BaseChatModel:
        with self._lock:
            if self._chat_model is None:
                self._chat_model = make_chat_model(self.settings)
            return self._chat_model

    def model_name(self) -> str:
        model = self._chat_model
        name = getattr(model, "model_name", None) or getattr(model, "model", None)
        return str(name or self.settings.llm_model or type(model).__name__)

    def passages(self, hits: Sequence[Hit], question: QuestionAnalysis | None = None) -> list[Hit]:
        """The passages the model reads: the top ``answer_passages`` of those with a sentence
        that keeps to the question's years, named regions and named document (another year's
        or region's figure is no answer); none for a place no document covers (rag.constraints)."""
        if question is not None:
            hits = self.fallback.passages_in_scope(question, list(hits))
        return list(hits[: self.settings.answer_passages])

    def messages(self, question: QuestionAnalysis, hits: Sequence[Hit]) -> list[BaseMessage]:
        return build_messages(question, self.passages(hits, question))

    def answer(self, question: QuestionAnalysis, hits: list[Hit]) -> Answer:
        passages = self.passages(hits, question)
        if not passages:
            return self._no_passages(question, hits)
        messages = build_messages(question, passages)
        started = time.perf_counter()
        try:
            model = self.chat_model
            reply = call_with_deadline(lambda: model.invoke(messages), self.settings.llm_timeout_s)
        except InputError:
            raise
        except Exception as exc:
            return self._failed(question, hits, exc)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return self.finish(question, hits, _content_text(reply), elapsed_ms)

    def stream(self, question: QuestionAnalysis, hits: list[Hit]) -> AnswerStream:
        """Text deltas to show while the model writes; then ``.answer`` is the verified Answer.

        Usage::

            stream = answerer.stream(question, hits)
            for delta in stream:          # raw model text, unverified
                show(delta)
            final = stream.answer         # verified (or fallback); replaces what was shown
        """
        return AnswerStream(self, question, hits)

    def finish(
        self, question: QuestionAnalysis, hits: Sequence[Hit], reply: str, elapsed_ms: float
    ) -> Answer:
        """Turn a raw reply into the Answer: verified, or the fallback's when unsupported.

        A cited statement with a figure its cited passages lack is withheld from the text (kept
        in ``uncited``, with a ``notice``); ``details["llm"]["ungrounded_action"]`` says so:
        "moved_to_uncited", or "extractive_fallback" when no grounded citation was left.
        """
        passages = self.passages(hits, question)
        verified = verify_reply(reply, passages, withhold_ungrounded=True)
        info: dict[str, Any] = {
            "model": self.model_name(),
            "passages": len(passages),
            "elapsed_ms": round(elapsed_ms, 1),
            "raw_reply": reply,
            "dropped_citations": list(verified.dropped),
            "renumbered": {str(old): new for old, new in verified.renumbered.items()},
        }
        if verified.partial_refusal:
            info["partial_refusal"] = True
        notice = None
        if verified.ungrounded_numbers:
            info["ungrounded_numbers"] = verified.ungrounded_numbers
            figures = "、".join(
                dict.fromkeys(f for found in verified.ungrounded_numbers.values() for f in found)
            )
            notice = f"回答中的数字未能在引用段落中核实（{figures}）"
        if not verified.supported:
            if verified.withheld:
                info["ungrounded_action"] = "extractive_fallback"
                info["rejected"] = "ungrounded numbers"
                return self._fallback(question, hits, f"{notice}，已改用抽取式回答", info)
            info["rejected"] = "no valid citation"
            notice = "LLM 回答未引用任何文件段落，无法核实，已改用抽取式回答"
            return self._fallback(question, hits, notice, info)
        if verified.withheld:
            info["ungrounded_action"] = "moved_to_uncited"
            notice = (
                f"{notice}，{len(verified.withheld)} 条相关陈述已移出回答，"
                "列入没有引用支持的陈述，请对照引用段落核实"
            )
        return Answer(
            question=question.text,
            answer=verified.text,
            abstained=verified.abstained,
            citations=verified.citations,
            retrieved=tuple(hits),
            mode=self.mode,
            notice=notice,
            uncited=verified.uncited,
            details={"llm": info},
        )

    def _no_passages(self, question: QuestionAnalysis, hits: Sequence[Hit]) -> Answer:
        """Nothing in scope to read: refusing needs no model call. The extractive refusal names
        what is missing (a place, a year, a document) and cites what the documents hold."""
        if not hits:
            return Answer(
                question=question.text,
                answer=NOT_FOUND,
                abstained=True,
                citations=(),
                retrieved=(),
                mode=self.mode,
                details={"llm": {"skipped": "no passages"}},
            )
        answer = self.fallback.answer(question, list(hits))
        skipped = {"llm": {"skipped": "no passage in scope"}}
        return replace(answer, details={**answer.details, **skipped})

    def _failed(
        self, question: QuestionAnalysis, hits: Sequence[Hit], exc: BaseException
    ) -> Answer:
        reason = failure_reason(exc, self.settings.llm_timeout_s)
        info = {"model": self.model_name(), "error": f"{type(exc).__name__}: {exc}"}
        return self._fallback(question, hits, f"LLM 调用失败（{reason}），已改用抽取式回答", info)

    def _fallback(
        self,
        question: QuestionAnalysis,
        hits: Sequence[Hit],
        notice: str,
        info: dict[str, Any],
    ) -> Answer:
        answer = self.fallback.answer(question, list(hits))
        return replace(answer, notice=notice, details={**answer.details, "llm": info})


class AnswerStream:
    """One streamed answer: iterate for raw text deltas, then read the verified ``answer``.

    The deltas are the model's unverified words (markers as the model wrote them); the UI shows
    them as a draft and replaces the draft with ``answer`` (renumbered citations, or the
    extractive fallback with a ``notice`` if the model failed, timed out, cited nothing or
    kept no grounded statement).
    The stream is its own iterator, so it runs once; :meth:`result` drains whatever is left
    (also after the caller stopped early) and returns the answer.
    """

    def __init__(
        self, answerer: LLMAnswerer, question: QuestionAnalysis, hits: Sequence[Hit]
    ) -> None:
        self.answerer = answerer
        self.question = question
        self.hits = list(hits)
        self._answer: Answer | None = None
        self._deltas = self._run()

    @property
    def answer(self) -> Answer:
        if self._answer is None:
            raise RuntimeError("the stream has not finished: iterate it or call result()")
        return self._answer

    @property
    def done(self) -> bool:
        return self._answer is not None

    def result(self) -> Answer:
        """Drain the remaining deltas (if any) and return the verified answer."""
        for _ in self._deltas:
            pass
        return self.answer

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._deltas)

    def _run(self) -> Iterator[str]:
        answerer = self.answerer
        passages = answerer.passages(self.hits, self.question)
        if not passages:
            self._answer = answerer._no_passages(self.question, self.hits)
            return
        messages = build_messages(self.question, passages)
        started = time.perf_counter()
        parts: list[str] = []
        try:
            model = answerer.chat_model
            for chunk in stream_with_deadline(
                lambda: model.stream(messages), answerer.settings.llm_timeout_s
            ):
                delta = _content_text(chunk)
                if delta:
                    parts.append(delta)
                    yield delta
        except InputError:
            raise
        except Exception as exc:
            self._answer = answerer._failed(self.question, self.hits, exc)
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        self._answer = answerer.finish(self.question, self.hits, "".join(parts), elapsed_ms)
