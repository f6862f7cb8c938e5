"""LLM answering with verified citations, and a guaranteed way back to extraction.

A language model writes fluent answers but may cite passages that do not exist, state things it
was never given, or obey instructions hidden in a document. So the model's reply is never shown
as-is: :func:`verify_reply` parses its [n] markers, drops markers that point at no passage,
renumbers the rest 1..k in order of first appearance, and flags every statement without a marker
(``Answer.uncited``). A reply with no valid citation at all is not an answer planqa can stand
behind, so the extractive answerer answers instead, with a visible ``notice``; the same happens
when the model fails or is slower than ``settings.llm_timeout_s``.

Streaming (:meth:`LLMAnswerer.stream`) shows the raw tokens while they arrive and then hands the
UI the verified :class:`~rag.answer.Answer`, which replaces the streamed text.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from corpus.chunking import split_sentences
from corpus.errors import InputError
from corpus.settings import Settings
from index.search import Hit
from rag.answer import NOT_FOUND, Answer, Answerer, Citation
from rag.prompts import build_messages
from rag.question import QuestionAnalysis

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

#: A cap on generated tokens: answers are ≤ 3 sentences, and a looping small model must stop.
MAX_ANSWER_TOKENS = 384

_CONFIG_HELP = (
    "set PLANQA_LLM_PROVIDER=openai (any OpenAI-compatible server: vLLM, DeepSeek, "
    "Qwen/DashScope, llama.cpp) or PLANQA_LLM_PROVIDER=ollama, PLANQA_LLM_MODEL=<model name>, "
    "PLANQA_LLM_BASE_URL=<server URL, e.g. http://127.0.0.1:8012/v1> and, if the server needs "
    "a key, PLANQA_LLM_API_KEY_ENV=<name of the environment variable that holds it> "
    "(or the same keys, lower-case without the prefix, in planqa.toml)"
)

_NUMBER = r"\d{1,3}(?:\s*[-–~～]\s*\d{1,3})?"
_LABEL = r"(?:段落|来源|资料|passage)?\s*"
#: One citation marker: [1], ［1］, 【1】, [1,3], [1、3], [1-3], [段落1].
_MARKER = rf"[\[［【]\s*{_LABEL}{_NUMBER}(?:\s*[,，、;；]\s*{_LABEL}{_NUMBER})*\s*[\]］】]"
_MARKER_RE = re.compile(_MARKER, re.IGNORECASE)
#: Adjacent markers ([1][2], [1] [3]) are one run, so a run renumbers as a unit without repeats.
_MARKER_RUN_RE = re.compile(rf"{_MARKER}(?:[ \t]*{_MARKER})*", re.IGNORECASE)
_NUMBER_RE = re.compile(_NUMBER)
_CANONICAL_MARKER_RE = re.compile(r"\[\d+\]")
#: A statement ends at 。！？ (with closing quotes and any markers right after it) or a newline,
#: so "…80%。[1]" keeps its marker.
_STATEMENT_END_RE = re.compile(r"[。！？!?]+[”’」』）)】》\"']*(?:[ \t]*\[\d+\])*|\n")
_THINK_RE = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_SPACE_BEFORE_PUNCT_RE = re.compile(r"[ \t]+(?=[。！？，；：,;:!?])")
_WORD_RE = re.compile(r"\w")
_FIGURE_RE = re.compile(r"\d+(?:\.\d+)?")

T = TypeVar("T")


def _require_config(settings: Settings) -> None:
    """Fail before any question is asked, with the exact settings that are missing."""
    if settings.llm_provider is None:
        raise InputError(f"LLM answering is not configured: {_CONFIG_HELP}")
    if not settings.llm_model:
        raise InputError(
            f"PLANQA_LLM_PROVIDER is {settings.llm_provider!r} but PLANQA_LLM_MODEL is not set; "
            f"{_CONFIG_HELP}"
        )
    if (
        settings.llm_provider == "openai"
        and not settings.llm_base_url
        and not os.environ.get(settings.llm_api_key_env)
    ):
        raise InputError(
            "PLANQA_LLM_BASE_URL is not set, so the OpenAI API itself would be used, but the "
            f"environment variable {settings.llm_api_key_env} (PLANQA_LLM_API_KEY_ENV) holds no "
            "key; set PLANQA_LLM_BASE_URL to your server (e.g. http://127.0.0.1:8012/v1) or "
            f"export {settings.llm_api_key_env}"
        )


def make_chat_model(settings: Settings) -> BaseChatModel:
    """The configured chat model. Imports lazily: extraction-only runs never load the SDKs.

    "openai" covers every OpenAI-compatible server (vLLM, DeepSeek, DashScope, llama.cpp); a
    local server needs no key, so a placeholder is sent when the key variable is unset.
    """
    _require_config(settings)
    assert settings.llm_model is not None  # checked above; narrows the type
    if settings.llm_provider == "openai":
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            api_key=os.environ.get(settings.llm_api_key_env) or "not-needed",
            timeout=settings.llm_timeout_s,
            temperature=settings.llm_temperature,
            max_retries=1,
            max_tokens=MAX_ANSWER_TOKENS,
        )
    from langchain_ollama import ChatOllama

    return ChatOllama(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        temperature=settings.llm_temperature,
        num_predict=MAX_ANSWER_TOKENS,
        client_kwargs={"timeout": settings.llm_timeout_s},
    )


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class VerifiedReply:
    """What is left of a model reply after checking it against the passages it was given.

    ``text`` carries canonical markers [1]..[k] that match ``citations``; ``dropped`` lists the
    model's numbers that pointed at no passage; ``renumbered`` maps the model's numbers to ours.
    """

    text: str
    citations: tuple[Citation, ...]
    uncited: tuple[str, ...]
    dropped: tuple[int, ...]
    renumbered: dict[int, int]
    abstained: bool
    #: Some statements are cited and another says NOT_FOUND (e.g. one region of a comparison).
    partial_refusal: bool = False
    #: Cited statements with numbers that none of their cited passages contain (a likely
    #: hallucinated figure): statement -> the missing numbers. Reported, not removed.
    ungrounded_numbers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def supported(self) -> bool:
        """A refusal, or an answer with at least one valid citation: presentable as is."""
        return self.abstained or bool(self.citations)


def _marker_numbers(marker: str, limit: int) -> list[int]:
    """Numbers in one marker, ranges expanded (capped at ``limit`` so [1-999] stays small)."""
    numbers: list[int] = []
    for match in _NUMBER_RE.finditer(marker):
        parts = re.split(r"\s*[-–~～]\s*", match.group(0))
        low, high = int(parts[0]), int(parts[-1])
        if high < low or high - low > limit:
            high = low
        numbers.extend(range(low, high + 1))
    return numbers


def strip_reasoning(reply: str) -> str:
    """Remove <think>…</think> blocks that reasoning models (Qwen3, DeepSeek-R1) put in content."""
    return _THINK_RE.sub("", reply).strip()


def _is_refusal(statement: str) -> bool:
    return NOT_FOUND in re.sub(r"\s+", "", statement)


def _segments(text: str) -> list[tuple[str, bool]]:
    """``text`` cut into consecutive raw slices, each flagged whether it is a statement.

    Cuts fall at 。！？ (keeping the markers right after the full stop) and line ends. A slice
    that is only markers ("……。\n[1]") joins the statement before it (at the very start, the one
    after it): the model put the citation on its own line. Slices without words are filler.
    Joining the slices gives back ``text`` exactly, so the answer can be rewritten slice by slice.
    """
    pieces: list[str] = []
    cursor = 0
    for match in _STATEMENT_END_RE.finditer(text):
        pieces.append(text[cursor : match.end()])
        cursor = match.end()
    pieces.append(text[cursor:])
    segments: list[tuple[str, bool]] = []
    pending = ""
    for piece in pieces:
        if _WORD_RE.search(_CANONICAL_MARKER_RE.sub("", piece)):
            segments.append((pending + piece, True))
            pending = ""
        elif _CANONICAL_MARKER_RE.search(piece) and _attachable(segments):
            while not segments[-1][1]:  # blank lines between statement and marker
                blank = segments.pop()[0]
                piece = blank + piece
            segments[-1] = (segments[-1][0] + piece, True)
        elif _CANONICAL_MARKER_RE.search(piece):
            pending += piece
        else:
            segments.append((piece, False))
    if pending:
        segments.append((pending, False))
    return segments


def _attachable(segments: list[tuple[str, bool]]) -> bool:
    """A statement exists with nothing but whitespace after it."""
    for segment, is_statement in reversed(segments):
        if is_statement:
            return True
        if segment.strip():
            return False
    return False


def split_statements(text: str) -> list[str]:
    """The statements of ``text`` (see :func:`_segments`), whitespace-trimmed."""
    return [segment.strip() for segment, is_statement in _segments(text) if is_statement]


def _is_lead_in(statement: str) -> bool:
    """ "各地区情况如下：" states nothing, so it needs no citation."""
    return statement.rstrip().endswith(("：", ":"))


def _bigrams(text: str) -> set[str]:
    compact = re.sub(r"\s+", "", _CANONICAL_MARKER_RE.sub("", text))
    return {compact[i : i + 2] for i in range(len(compact) - 1)}


def _best_quote(hit: Hit, statements: Sequence[str]) -> tuple[int, int] | None:
    """The passage sentence sharing most character bigrams with the statements citing it, as
    document offsets, so the UI highlights the supporting sentence rather than the whole chunk."""
    chunk = hit.chunk
    wanted = set().union(*(_bigrams(s) for s in statements)) if statements else set()
    best: tuple[int, tuple[int, int]] | None = None
    for start, end in split_sentences(chunk.text, chunk.start):
        overlap = len(wanted & _bigrams(chunk.text[start - chunk.start : end - chunk.start]))
        if overlap and (best is None or overlap > best[0]):
            best = (overlap, (start, end))
    return best[1] if best else None


def verify_reply(reply: str, passages: Sequence[Hit]) -> VerifiedReply:
    """Check a reply against the numbered ``passages`` it was written from (1-based).

    Markers may be [n], ［n］, 【n】, [n,m], [n][m] or ranges; numbers outside 1..len(passages)
    are removed from the text and listed in ``dropped``. Only markers on a statement with
    content count ("[1]" alone is no answer; a marker on a refusal line is removed). A reply
    that is (only) the refusal abstains. ``supported`` says whether it can be shown as cited.
    """
    limit = len(passages)
    dropped: list[int] = []

    def canonical(run: re.Match[str]) -> str:
        """Pass 1: every marker run as [a][b] in the model's numbering, invalid numbers out."""
        kept: list[int] = []
        for marker in _MARKER_RE.finditer(run.group(0)):
            for number in _marker_numbers(marker.group(0), limit):
                if not 1 <= number <= limit:
                    dropped.append(number)
                elif number not in kept:
                    kept.append(number)
        return "".join(f"[{n}]" for n in kept)

    text = _MARKER_RUN_RE.sub(canonical, strip_reasoning(reply))
    if dropped:
        text = _SPACE_BEFORE_PUNCT_RE.sub("", text)
    dropped_t = tuple(dict.fromkeys(dropped))
    segments = [
        (segment, is_statement and not _is_refusal(segment), is_statement and _is_refusal(segment))
        for segment, is_statement in _segments(text)
    ]
    has_refusal = any(refusal for _, _, refusal in segments)
    if has_refusal and not any(
        content and _CANONICAL_MARKER_RE.search(segment) for segment, content, _ in segments
    ):
        return VerifiedReply(NOT_FOUND, (), (), dropped_t, {}, abstained=True)

    # Pass 2: the passages content statements cite become 1..k in order of first appearance;
    # markers anywhere else are removed.
    renumbered: dict[int, int] = {}
    for segment, content, _ in segments:
        for marker in _CANONICAL_MARKER_RE.findall(segment) if content else ():
            renumbered.setdefault(int(marker[1:-1]), len(renumbered) + 1)
    rewritten = [
        (_renumber(segment, renumbered if content else {}), content)
        for segment, content, _ in segments
    ]
    text = "".join(segment for segment, _ in rewritten).strip()
    content_statements = [segment.strip() for segment, content in rewritten if content]
    cited = [s for s in content_statements if _CANONICAL_MARKER_RE.search(s)]

    by_new = {new: old for old, new in renumbered.items()}
    citations = tuple(
        Citation.from_hit(
            new,
            passages[by_new[new] - 1],
            _best_quote(passages[by_new[new] - 1], [s for s in cited if f"[{new}]" in s]),
        )
        for new in sorted(by_new)
    )
    uncited = tuple(
        s for s in content_statements if not _CANONICAL_MARKER_RE.search(s) and not _is_lead_in(s)
    )
    ungrounded: dict[str, list[str]] = {}
    for statement in cited:
        cited_text = "".join(
            passages[by_new[int(marker[1:-1])] - 1].chunk.text
            for marker in _CANONICAL_MARKER_RE.findall(statement)
        )
        missing = _missing_figures(_CANONICAL_MARKER_RE.sub("", statement), cited_text)
        if missing:
            ungrounded[statement] = missing
    return VerifiedReply(
        text=text,
        citations=citations,
        uncited=uncited,
        dropped=dropped_t,
        renumbered=renumbered,
        abstained=False,
        partial_refusal=has_refusal,
        ungrounded_numbers=ungrounded,
    )


def _renumber(text: str, mapping: dict[int, int]) -> str:
    """Canonical markers [old] -> [new]; a marker without a mapping is removed."""

    def swap(match: re.Match[str]) -> str:
        new = mapping.get(int(match.group(0)[1:-1]))
        return f"[{new}]" if new is not None else ""

    return _CANONICAL_MARKER_RE.sub(swap, text)


def _missing_figures(statement: str, passages_text: str) -> list[str]:
    """Numbers of ``statement`` absent from the passages (spaces ignored: "7.39 万元")."""
    compact = re.sub(r"\s+", "", passages_text)
    present = set(re.findall(r"(?<![\d.])\d+(?:\.\d+)?(?![\d.])", compact))
    return [f for f in dict.fromkeys(_FIGURE_RE.findall(statement)) if f not in present]


# --------------------------------------------------------------------------- deadlines


def _call_with_deadline(fn: Callable[[], T], timeout_s: float) -> T:
    """Run ``fn`` in a daemon thread and give up after ``timeout_s``.

    The HTTP clients have their own timeouts, but those bound each read, not the whole call (a
    server trickling tokens never trips them) and a custom chat model may have none; the user
    waits for the whole call, so that is what the deadline bounds. An abandoned call finishes in
    the background; being a daemon thread it never keeps the process alive.
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="planqa-llm-call", daemon=True).start()
    if not done.wait(timeout_s):
        raise TimeoutError(f"no reply within {timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _stream_with_deadline(chunks: Callable[[], Iterator[T]], timeout_s: float) -> Iterator[T]:
    """Like :func:`_call_with_deadline` for a stream: the whole stream must end in time."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        try:
            for item in chunks():
                if stop.is_set():
                    return
                items.put(("item", item))
            items.put(("end", None))
        except BaseException as exc:
            items.put(("error", exc))

    threading.Thread(target=run, name="planqa-llm-stream", daemon=True).start()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise queue.Empty
                kind, value = items.get(timeout=remaining)
            except queue.Empty:
                raise TimeoutError(f"the reply did not finish within {timeout_s:g} s") from None
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def _content_text(message: Any) -> str:
    """Text of a message or chunk whose content may be a string or a list of content blocks."""
    text = getattr(message, "text", None)
    if isinstance(text, str):
        return str(text)
    content = getattr(message, "content", message)
    return content if isinstance(content, str) else str(content)


def _failure_reason(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
        return f"超过 {timeout_s:g} 秒未完成"
    detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


# --------------------------------------------------------------------------- the answerer


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
        fallback: Answerer,
    ) -> None:
        if chat_model is None:
            _require_config(settings)
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

    def passages(self, hits: Sequence[Hit]) -> list[Hit]:
        """The passages the model reads: the top ``answer_passages`` of the ranking."""
        return list(hits[: self.settings.answer_passages])

    def messages(self, question: QuestionAnalysis, hits: Sequence[Hit]) -> list[BaseMessage]:
        return build_messages(question, self.passages(hits))

    def answer(self, question: QuestionAnalysis, hits: list[Hit]) -> Answer:
        passages = self.passages(hits)
        if not passages:
            return self._no_passages(question, hits)
        messages = build_messages(question, passages)
        started = time.perf_counter()
        try:
            model = self.chat_model
            reply = _call_with_deadline(lambda: model.invoke(messages), self.settings.llm_timeout_s)
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
        """Turn a raw reply into the Answer: verified, or the fallback's when unsupported."""
        passages = self.passages(hits)
        verified = verify_reply(reply, passages)
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
        if verified.ungrounded_numbers:
            info["ungrounded_numbers"] = verified.ungrounded_numbers
        if not verified.supported:
            notice = "LLM 回答未引用任何文件段落，无法核实，已改用抽取式回答"
            info["rejected"] = "no valid citation"
            return self._fallback(question, hits, notice, info)
        return Answer(
            question=question.text,
            answer=verified.text,
            abstained=verified.abstained,
            citations=verified.citations,
            retrieved=tuple(hits),
            mode=self.mode,
            uncited=verified.uncited,
            details={"llm": info},
        )

    def _no_passages(self, question: QuestionAnalysis, hits: Sequence[Hit]) -> Answer:
        """Nothing retrieved: refusing needs no model call."""
        return Answer(
            question=question.text,
            answer=NOT_FOUND,
            abstained=True,
            citations=(),
            retrieved=tuple(hits),
            mode=self.mode,
            details={"llm": {"skipped": "no passages"}},
        )

    def _failed(
        self, question: QuestionAnalysis, hits: Sequence[Hit], exc: BaseException
    ) -> Answer:
        reason = _failure_reason(exc, self.settings.llm_timeout_s)
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
    extractive fallback with a ``notice`` if the model failed, timed out or cited nothing).
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
        passages = answerer.passages(self.hits)
        if not passages:
            self._answer = answerer._no_passages(self.question, self.hits)
            return
        messages = build_messages(self.question, passages)
        started = time.perf_counter()
        parts: list[str] = []
        try:
            model = answerer.chat_model
            for chunk in _stream_with_deadline(
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
