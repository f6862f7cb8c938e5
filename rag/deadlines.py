"""Bounding a whole model call, not each read: the deadlines LLM answering runs under.

The HTTP clients have their own timeouts, but those bound each read, not the whole call (a
server trickling tokens never trips them) and a custom chat model may have none; the user waits
for the whole call, so that is what these deadlines bound. The work runs in a daemon thread: an
abandoned call finishes in the background and never keeps the process alive.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["call_with_deadline", "failure_reason", "stream_with_deadline"]

T = TypeVar("T")


def call_with_deadline(fn: Callable[[], T], timeout_s: float) -> T:
    """Run ``fn`` in a daemon thread; TimeoutError after ``timeout_s``, else its result or
    its exception."""
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


def stream_with_deadline(chunks: Callable[[], Iterator[T]], timeout_s: float) -> Iterator[T]:
    """Like :func:`call_with_deadline` for a stream: the whole stream must end in time.

    Items are passed on as they arrive; when the consumer stops early, the producing thread
    is told to stop at its next item.
    """
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


def failure_reason(exc: BaseException, timeout_s: float) -> str:
    """A short reason for the user's notice: a timeout by its limit, else the error's first line."""
    if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
        return f"超过 {timeout_s:g} 秒未完成"
    detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
