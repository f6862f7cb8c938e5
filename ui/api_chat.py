"""An OpenAI-compatible ``POST /api/v1/chat/completions``, so that tools which speak only the
OpenAI chat API (chat front-ends, the ``openai`` SDK with ``base_url=http://HOST:7860/api/v1``)
can ask planqa without a client of their own.

Only the last ``user`` message is answered, by the same pipeline as ``POST /api/v1/ask`` (a
planqa answer is grounded in retrieved passages, not in the conversation; earlier turns are
ignored rather than half-used). The reply's ``message.content`` is the answer with its numbered
citations as ``planqa ask`` prints them, so a plain chat window shows where each claim comes
from; the citation objects of ``planqa ask --json`` ride in an extra top-level ``citations``
field for clients that want them. ``model`` picks the answer mode: a name ending in ``llm``
(``planqa-llm``) uses the configured LLM, anything else the extractive answerer. Streaming is
refused (400) rather than faked. Token counts are not measured and are reported as 0.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from planqa.corpus.errors import InputError
from planqa.ui.answer_text import render_answer

if TYPE_CHECKING:
    from planqa.rag.pipeline import Pipeline


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    #: A string, or OpenAI's list of content parts (only the ``text`` parts are read).
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """OpenAI's request body; unknown fields (``temperature``, ``max_tokens``) are accepted and
    ignored, as an OpenAI-compatible server is expected to."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(default="planqa", description="planqa (extractive) or planqa-llm.")
    messages: list[ChatMessage]
    stream: bool = False
    region: str | None = Field(default=None, description="planqa extra: only this region.")


def last_question(messages: list[ChatMessage]) -> str:
    """The text of the last user message (InputError when there is none)."""
    for message in reversed(messages):
        if message.role != "user":
            continue
        content = message.content
        if isinstance(content, list):
            content = "".join(
                str(part.get("text", "")) for part in content if part.get("type") == "text"
            )
        return content or ""
    raise InputError("no user message to answer: messages needs one with role 'user'")


def chat_router(current: Callable[[], Pipeline], turns: threading.BoundedSemaphore) -> APIRouter:
    """The route over ``current``, sharing the API's ``turns`` (questions answered at once)."""
    router = APIRouter()

    @router.post("/chat/completions", summary="OpenAI-compatible chat completion (last question)")
    def chat_completions(request: ChatRequest) -> dict[str, Any]:
        if request.stream:
            raise InputError("stream=true is not supported: ask with stream=false")
        question = last_question(request.messages)
        mode = "llm" if request.model.lower().endswith("llm") else "extractive"
        with turns:
            answer = current().ask(question, mode=mode, region=request.region)
        body = answer.to_dict()
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": render_answer(answer)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "citations": body["citations"],
            "abstained": body["abstained"],
        }

    return router
