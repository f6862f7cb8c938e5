"""Index updates requested over the HTTP API, run one at a time by a single worker thread.

An upload or a removal is slow (parsing a PDF, embedding its chunks) and the index has one
writer at a time anyway (the builder holds the index folder's lock, index/lock.py), so the API
answers ``202`` with a job id at once and :class:`JobRunner` works through the jobs in order.
A second upload therefore waits *visibly*: its job says ``queued`` and its place in the queue,
instead of a request hanging on the lock or failing after ``index_lock_timeout``.

A job goes ``queued`` → ``running`` (stage ``parsing``, then ``embedding`` with ``done``/``total``
chunks) → ``indexed`` or ``failed`` (with the error's one-line message). The work itself writes a
new index version with the existing atomic builder, so searches and answers keep being served
from the old version until :class:`ui.index_watch.LiveIndex` switches; a job that fails leaves
the index as it was and fails only itself. Jobs live in memory (a restart forgets them; the
index and the corpus folder are what persists), the last :data:`KEPT_FINISHED` finished ones are
kept for polling.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planqa.corpus.errors import PlanqaError

log = logging.getLogger("planqa.ui.jobs")

#: Finished jobs kept for ``GET /jobs/{id}``; older ones are forgotten first.
KEPT_FINISHED = 200
QUEUED, RUNNING, INDEXED, FAILED = "queued", "running", "indexed", "failed"


@dataclass
class Job:
    """One index update and what a client polling it is told."""

    kind: str
    documents: list[str]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = QUEUED
    stage: str = ""
    done: int = 0
    total: int = 0
    error: str = ""
    error_type: str = ""
    #: Seconds since the epoch; ``finished`` is None until the job is indexed or failed.
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    #: What the build reported (index version, chunks embedded), for the client.
    result: dict[str, Any] = field(default_factory=dict)

    def progress(self, stage: str, done: int = 0, total: int = 0) -> None:
        """Called by the work as it goes (from the worker thread; readers see plain values)."""
        self.stage, self.done, self.total = stage, done, total

    def to_dict(self, position: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "documents": list(self.documents),
            "state": self.state,
            "stage": self.stage,
            "progress": {"done": self.done, "total": self.total},
            "error": {"type": self.error_type, "message": self.error} if self.error else None,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "result": dict(self.result),
        }
        if position is not None:
            body["queue_position"] = position
        return body


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


Work = Callable[[Job], dict[str, Any] | None]


class JobRunner:
    """A FIFO of jobs and the one daemon thread that runs them (see the module docstring)."""

    def __init__(self, name: str = "planqa-index-jobs") -> None:
        self._queue: queue.Queue[tuple[Job, Work] | None] = queue.Queue()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, kind: str, documents: list[str], work: Work) -> Job:
        """Queue ``work`` (called with its job; may return a result dict) and return its job."""
        job = Job(kind=kind, documents=documents)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        self._queue.put((job, work))
        return job

    def run_alongside(self, kind: str, documents: list[str], work: Work) -> Job:
        """Run ``work`` on a thread of its own, listed with the jobs but outside their queue:
        for the hours-long vector upgrade (index/upgrade.py), which must not hold up uploads."""
        job = Job(kind=kind, documents=documents)
        with self._lock:
            self._jobs[job.id] = job
        threading.Thread(
            target=self._execute, args=(job, work), name=f"planqa-{kind}", daemon=True
        ).start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """1 for the next job to run, 2 after it …; None once the job is running or done."""
        if job.state != QUEUED:
            return None
        with self._lock:
            waiting = [j for j in self._jobs.values() if j.state == QUEUED]
        return next((i for i, j in enumerate(waiting, start=1) if j.id == job.id), None)

    def pending(self) -> list[Job]:
        """Jobs not finished yet, oldest first (to refuse a second upload of the same name)."""
        with self._lock:
            return [j for j in self._jobs.values() if j.state in (QUEUED, RUNNING)]

    def counts(self) -> dict[str, int]:
        with self._lock:
            states = [j.state for j in self._jobs.values()]
        return {state: states.count(state) for state in (QUEUED, RUNNING)}

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the job in progress (queued ones are dropped with the process)."""
        self._queue.put(None)
        self._thread.join(timeout)

    def wait(self, job: Job, timeout: float = 60.0) -> Job:
        """Block until ``job`` is finished or ``timeout`` passes (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while job.finished is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return job

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.finished is not None]
        for job_id in finished[: max(0, len(finished) - KEPT_FINISHED)]:
            del self._jobs[job_id]

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self._execute(*item)

    @staticmethod
    def _execute(job: Job, work: Work) -> None:
        """Run one job; whatever it raises fails that job only."""
        job.state, job.started = RUNNING, time.time()
        try:
            job.result = work(job) or {}
            job.state = INDEXED
        except PlanqaError as exc:
            job.error_type, job.error = type(exc).__name__, str(exc)
            job.state = FAILED
        except OSError as exc:  # a full disk, a folder made read-only: no paths shown
            log.warning("index job %s failed: %s", job.id, exc)
            job.error_type, job.error = type(exc).__name__, str(exc.strerror or exc)
            job.state = FAILED
        except Exception as exc:  # a bug: the job fails, the worker goes on
            log.exception("index job %s failed", job.id)
            job.error_type = "InternalError"
            job.error = f"{type(exc).__name__}: {exc}"
            job.state = FAILED
        finally:
            job.finished = time.time()


class CountingEmbedder:
    """The server's embedder, reporting how many passages it has embedded into a job's
    progress (``embedding done/total``); everything else is the wrapped embedder's."""

    def __init__(self, inner: Any, job: Job) -> None:
        self._inner = inner
        self._job = job

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._inner.embed_queries(texts)

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        vectors = self._inner.embed_passages(texts, progress=progress)
        job = self._job
        job.progress("embedding", min(job.done + len(texts), max(job.total, 1)), job.total)
        return vectors
