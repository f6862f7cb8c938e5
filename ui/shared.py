"""What every tab of the web UI shares: error handling, event options, input cleaning, the
static files, and the base of the tabs' handler classes.

Each tab module (:mod:`ui.tab_ask`, :mod:`ui.tab_search`, :mod:`ui.tab_documents`,
:mod:`ui.tab_review`) holds its layout and its handlers; the rules they must all follow live
here once, so a tab cannot forget one:

* **Errors are messages.** :func:`user_facing` shows a :class:`~corpus.errors.PlanqaError` as
  its message and logs anything else with its traceback, showing :data:`INTERNAL_ERROR`. One
  failed request never takes the server down. A form that must keep working after a mistake
  (the 评测 tab) shows :func:`error_message` in a line of its own (:func:`notice_html`)
  instead: a raised ``gr.Error`` also marks every output component "Error".
* **UI events are private.** :func:`private` hides an event from the API page and
  ``gradio_client``; :mod:`ui.security` refuses calls of it that do not come from a page this
  server sent. Only ``/ask`` is public.
* **Text is valid text.** :func:`clean_text` drops lone surrogates before they reach the
  session, where gradio's JSON encoder would fail on them.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable
from functools import cache, wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import gradio as gr

from planqa.corpus.errors import PlanqaError
from planqa.corpus.text_edges import valid_text
from planqa.ui.index_watch import LiveIndex
from planqa.ui.messages import query_too_long, scrub_paths, toast_text, user_message

if TYPE_CHECKING:
    from planqa.index.search import HybridSearcher
    from planqa.rag.pipeline import Pipeline

log = logging.getLogger("planqa.ui")

INTERNAL_ERROR = "内部错误：这次请求没有完成（详情已记录在服务器日志中），请重试或换个问法。"
#: Search and answering share one model: their events queue under one concurrency limit.
BUSY: dict[str, Any] = {"concurrency_id": "planqa", "concurrency_limit": "default"}
#: The page's script and style files, shipped as package data ("planqa.ui" = ["static/*"]).
STATIC_DIR = Path(__file__).resolve().parent / "static"

T = TypeVar("T")


def error_message(exc: Exception, where: str = "") -> str:
    """What the page says about an error raised by a handler (``where``, for the log): a
    planqa error in Chinese (its English goes to the log), anything else as
    :data:`INTERNAL_ERROR` with the traceback logged."""
    if isinstance(exc, PlanqaError):
        log.info("%s in %s: %s", type(exc).__name__, where, exc)  # the English, for staff
        return user_message(exc)
    log.error("unexpected error in %s", where, exc_info=exc)
    return INTERNAL_ERROR


def notice_html(message: str, kind: str = "error") -> str:
    """A status line beside a control: ``kind`` is error, warning or ok; the message is text
    (paths scrubbed, markup escaped). Errors are announced to screen readers (role=alert)."""
    if not message:
        return ""
    role = "alert" if kind == "error" else "status"
    text = html.escape(scrub_paths(message), quote=False)
    return f'<div class="pq-line pq-line-{kind}" role="{role}">{text}</div>'


def user_facing(fn: Callable[..., T]) -> Callable[..., T]:
    """Show planqa errors as their message and anything else as a logged internal error."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except PlanqaError as exc:
            message = toast_text(error_message(exc, fn.__name__))
            raise gr.Error(message, title="无法完成", print_exception=False) from None
        except Exception as exc:
            message = error_message(exc, fn.__name__)
            raise gr.Error(message, title="出错了", print_exception=False) from None

    return wrapper


def check_query_length(text: str, limit: int) -> str | None:
    """The Chinese message for a question over ``limit`` characters, else None: checked here,
    before the core, so the page need not read the core's English message."""
    length = len(text.strip())
    return query_too_long(length, limit) if length > limit else None


def private(**kwargs: Any) -> dict[str, Any]:
    """UI events are not API endpoints: hidden from the API page and from gradio_client."""
    return {"api_visibility": "private", **kwargs}


def clean_text(value: Any) -> Any:
    """A text input as valid text: a lone surrogate (half an emoji from a browser or an API
    client) would otherwise be kept in the session, where gradio's JSON encoder fails on it —
    dropping the connection and every later answer of the session."""
    return valid_text(value) if isinstance(value, str) else value


def int_or_none(value: Any) -> int | None:
    """A number from a link's query string, or None when it is not one (links can be edited)."""
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


@cache
def static_text(name: str) -> str:
    """A file of ``ui/static`` (a component's script), read once at start-up."""
    return (STATIC_DIR / name).read_text(encoding="utf-8")


class LiveHandlers:
    """The base of each tab's handlers: the pipeline they work on, always the index's latest.

    ``pipeline`` may be a :class:`LiveIndex` shared by all tabs; a plain pipeline gets its own.
    Handlers that start a request take ``self.live.current()`` once (switching to a newly
    published index version first) and use that pipeline throughout.
    """

    def __init__(self, pipeline: Pipeline | LiveIndex) -> None:
        self.live = pipeline if isinstance(pipeline, LiveIndex) else LiveIndex(pipeline)

    @property
    def pipeline(self) -> Pipeline:
        return self.live.pipeline

    @property
    def searcher(self) -> HybridSearcher:
        return self.live.pipeline.searcher

    def document_choices(self, names: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """Documents as dropdown choices ("全部文件" first), by region then name: the 检索
        filter, the 文档 picker and the index line's refresh all offer the same list."""
        docs = self.searcher.documents
        wanted = sorted(
            names if names is not None else docs, key=lambda n: (docs[n].meta.region, n)
        )
        return [("全部文件", "")] + [
            (f"{docs[n].meta.region} · {docs[n].meta.title}", n) for n in wanted
        ]
