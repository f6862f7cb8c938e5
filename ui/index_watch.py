"""Serving the index version ``planqa index`` published last, without a restart.

``planqa index`` writes a new version beside the old one, then switches the ``CURRENT`` pointer
in the index folder (index/store.py). A server that kept the searcher it opened at start went on
answering from the old version (whose folder the build deletes) and nothing said so.

:class:`LiveIndex` reads the pointer (a file of ~100 bytes) when a request starts. When it names
another version, that version is opened, reusing the loaded embedding model and reranker, and
swapped in for the requests that start afterwards; requests already running finish on the
pipeline they started with (its memory-mapped files stay readable after the build deletes
them). Only one request opens a new version; the others meanwhile go on with the old one, so
nobody waits. A version that fails to open (built with another model, damaged) is logged with
its reason, the old one is kept, and it is not tried again until the pointer changes again.

Either outcome becomes one line of the UI (:attr:`LiveIndex.status`): 「索引已更新为新版本 …」 or
「发现新的索引版本 … 但无法打开」. The line shows no server paths (the reason is in the log).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planqa.corpus.errors import PlanqaError
from planqa.index.store import CURRENT_FILE

if TYPE_CHECKING:
    from planqa.rag.pipeline import Pipeline

log = logging.getLogger("planqa.ui.index")

#: Seconds between the page's checks for a new index version (gr.Timer): a rebuild shows up
#: within this long on an idle page; any search, answer or /ask call checks at once.
INDEX_CHECK_SECONDS = 10.0
_SHOWN_NAME = re.compile(r"[^\w.-]")


@dataclass(frozen=True)
class IndexStatus:
    """What the UI's index line says. ``serial`` grows with every switch or failed switch, so a
    page knows whether it has shown the latest line."""

    serial: int = 0
    line: str = ""


def reopen(old: Pipeline) -> Pipeline:
    """A pipeline over the index's current version with the old one's models (the embedder,
    reranker and chat model are the expensive part and do not depend on the version)."""
    from planqa.index.search import HybridSearcher
    from planqa.rag.pipeline import Pipeline

    searcher = HybridSearcher.open(old.settings, embedder=old.searcher.embedder)
    new = Pipeline(old.settings, searcher, getattr(old, "_chat_model", None))
    new.retriever.reranker = old.retriever.reranker
    return new


def version_of(pipeline: Pipeline) -> str:
    """The version folder's name (``v-<stamp>-<id>``) the pipeline's index was read from."""
    return pipeline.searcher.contents.directory.name


def _shown(name: str) -> str:
    return _SHOWN_NAME.sub("", name)[:60] or "?"


class LiveIndex:
    """The pipeline requests are answered with, switched to a newly published version between
    requests (see the module docstring)."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        opener: Callable[[Pipeline], Pipeline] = reopen,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pipeline = pipeline
        self._pointer_path = pipeline.settings.resolved_index_dir / CURRENT_FILE
        self._opener = opener
        self._clock = clock
        self._seen: bytes | None = None
        self._lock = threading.Lock()
        #: Bumped on every switch: caches built from one pipeline (chapter trees) compare it.
        self.generation = 0
        self.status = IndexStatus()

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline in use now, without checking for a new version."""
        return self._pipeline

    def current(self) -> Pipeline:
        """The pipeline for a request starting now: the index's current version if it opens."""
        pointer = self._read_pointer()
        if pointer is None or pointer == self._seen:
            return self._pipeline
        if not self._lock.acquire(blocking=False):
            return self._pipeline  # another request is opening it; this one keeps the old one
        try:
            if pointer != self._seen:
                self._update(pointer)
        finally:
            self._lock.release()
        return self._pipeline

    def _read_pointer(self) -> bytes | None:
        try:
            return self._pointer_path.read_bytes()
        except OSError:
            return None  # mid-replace on some systems, or the folder is gone: keep serving

    def _update(self, pointer: bytes) -> None:
        old = self._pipeline
        try:
            wanted = str(json.loads(pointer)["version"])
        except (ValueError, KeyError, TypeError):
            wanted = "?"
        if wanted == version_of(old):
            self._seen = pointer  # the version this server already serves (its start-up)
            return
        try:
            new = self._opener(old)
        except Exception as exc:
            self._seen = pointer
            log.warning(
                "the index's new version %s could not be opened, still serving %s: %s",
                wanted,
                version_of(old),
                exc,
                exc_info=not isinstance(exc, PlanqaError),
            )
            self.status = IndexStatus(
                self.status.serial + 1,
                f"⚠️ 发现新的索引版本 `{_shown(wanted)}`，但无法打开（原因已记录在服务器日志中），"
                f"仍在使用 `{_shown(version_of(old))}`。",
            )
            return
        self._seen = pointer
        self._pipeline = new
        self.generation += 1
        searcher = new.searcher
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._clock()))
        log.info("now serving index version %s (was %s)", version_of(new), version_of(old))
        self.status = IndexStatus(
            self.status.serial + 1,
            f"🔄 索引已更新为新版本 `{_shown(version_of(new))}`（{stamp} 切换）："
            f"{len(searcher.documents)} 份文件，{len(searcher.contents.chunks):,} 个段落。"
            "此后的提问和检索都使用新版本；之前的回答和已打开的文档来自旧版本。",
        )


# --------------------------------------------------------------------------- the page's line


def title_markdown(searcher: Any) -> str:
    """The page title with the index's counts (rewritten when the version changes)."""
    return (
        "# planqa · 规划文件问答与检索\n"
        f"基于 {len(searcher.documents)} 份规划文件（{len(searcher.regions())} 个地区，"
        f"{len(searcher.contents.chunks):,} 个段落）回答问题，每个回答都附带可核对的原文出处。"
    )


class IndexLine:
    """What a page shows of the index version: the line under the title, and, after a switch,
    the counts in the title, the region and document pickers and the documents table (the
    page was built with the old version's).

    :meth:`poll` runs on page load and on a timer (every :data:`INDEX_CHECK_SECONDS`); the page
    keeps the ``serial`` it has shown, so a poll with nothing new changes nothing on screen.
    """

    #: Output order of :meth:`poll`.
    OUTPUTS = (
        "shown",
        "line",
        "title",
        "chat_region",
        "search_region",
        "search_doc",
        "doc_table",
        "doc_choice",
    )

    def __init__(
        self, live: LiveIndex, document_choices: Callable[[], list[tuple[str, str]]]
    ) -> None:
        self.live = live
        self.document_choices = document_choices

    def poll(self, shown: int | None) -> tuple[Any, ...]:
        import gradio as gr

        from planqa.ui.render_documents import document_rows

        self.live.current()
        status = self.live.status
        if (shown or 0) == status.serial:
            return (status.serial, *(gr.update() for _ in self.OUTPUTS[1:]))
        searcher = self.live.pipeline.searcher
        regions = [("全部地区", ""), *((r, r) for r in searcher.regions())]
        documents = self.document_choices()
        return (
            status.serial,
            status.line,
            title_markdown(searcher),
            gr.update(choices=regions),
            gr.update(choices=regions),
            gr.update(choices=documents),
            gr.update(value=document_rows(searcher.documents)),
            gr.update(choices=documents[1:]),
        )
