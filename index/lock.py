"""The index folder's writer lock: one writer at a time, readers never wait.

Why: every writer (``planqa index``, ``planqa index --add``, and later a web upload or a
background upgrade) reads the current version, writes a new one beside it, switches ``CURRENT``
and then deletes what is neither current nor its own. Two writers at once undo each other: one
deletes the other's freshly published version, the other then points ``CURRENT`` at it (an index
that opens nowhere), or an up-to-date run's clean-up deletes a running build's staging folder
under it. They also lose updates: two ``--add`` runs that read the same version each publish it
plus their own document, and the later one wins. So a writer holds this lock from the moment it
reads the current version until it has switched ``CURRENT`` and tidied up.

How: an OS advisory lock (``fcntl.flock``; ``msvcrt.locking`` on Windows) on ``INDEX_DIR/
.writer.lock``. The kernel drops it when its process dies, even by ``kill -9``, so a crashed
writer never leaves a lock someone has to delete by hand; the next writer finds the dead
holder's note in the file, says so and carries on (its leftovers are tidied under the lock).
The file itself is never deleted: removing a lock file races with a process opening it.
The holder writes who it is (pid, host, command, start time) into the file, so a writer that has
to wait, or gives up, can name it. Readers (``IndexStore.load``, ``HybridSearcher.open``) never
take the lock: they read whichever version ``CURRENT`` names, which writers only ever replace
atomically.

The lock is re-entrant within a thread (a web upload holding it may call the builder, which takes
it again) but excludes other threads of the same process, as flock locks belong to open files,
not processes. flock is not reliable on every network file system; keep indexes on local disks.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from planqa.corpus.errors import IndexStoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

LOCK_FILE = ".writer.lock"
#: How often a waiting writer tries again: short next to any build, long next to a syscall.
POLL_SECONDS = 0.1
#: The byte locked on Windows, past the holder's note (Windows locks are mandatory, and the note
#: must stay readable).
_WINDOWS_LOCK_OFFSET = 1 << 30

#: Locks this process holds: resolved lock path -> (thread id, depth), for re-entry.
_held: dict[Path, tuple[int, int]] = {}
_held_guard = threading.Lock()


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _try_lock(fd: int) -> bool:
    """Take the lock without blocking; False when another open file holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        if fcntl is None or exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:  # pragma: no cover - Windows
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _read_note(fd: int) -> dict[str, Any] | None:
    """The holder's note, or None when there is none (released cleanly, or being written)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 4096)
        note = json.loads(data.decode("utf-8")) if data.strip() else None
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def describe_holder(note: dict[str, Any] | None) -> str:
    """``process 123 on host (planqa index --add x.txt, since 2025-01-01 12:00:00)``."""
    if note is None:
        return "another process"
    where = f" on {note['host']}" if note.get("host") not in (None, socket.gethostname()) else ""
    since = f"since {note['started']}" if note.get("started") else ""
    details = ", ".join(str(v) for v in (note.get("purpose"), since) if v)
    return f"process {note.get('pid', '?')}{where}" + (f" ({details})" if details else "")


class IndexLock:
    """``with IndexLock(index_dir, timeout=60, purpose="web upload"): ...`` around any write.

    ``timeout`` is how many seconds to wait for another writer (0: refuse at once); waiting is
    announced once through ``notify`` (stderr by default), and giving up raises
    :class:`IndexStoreError` (exit code 4) naming the holder and the fix.
    """

    def __init__(
        self,
        directory: Path,
        timeout: float = 60.0,
        *,
        purpose: str | None = None,
        notify: Callable[[str], None] | None = _stderr,
    ) -> None:
        self.directory = Path(directory).expanduser()
        self.path = self.directory / LOCK_FILE
        self.timeout = max(0.0, float(timeout))
        #: What the holder's note says it is doing; by default its command line.
        self.purpose = purpose or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200]
        self.notify = notify or (lambda message: None)
        self._fd: int | None = None
        self._key: Path | None = None

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> IndexLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    # ------------------------------------------------------------------ acquire / release
    def acquire(self) -> None:
        key = self.path.resolve()
        me = threading.get_ident()
        with _held_guard:
            owner = _held.get(key)
            if owner is not None and owner[0] == me:  # re-entry: this thread already writes
                _held[key] = (me, owner[1] + 1)
                self._key = key
                return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise IndexStoreError(
                f"cannot open the index's lock file {self.path} ({exc.strerror}); a writer "
                "needs write access to the index folder (choose another with --index)"
            ) from exc
        try:
            self._wait_for(fd)
            previous = _read_note(fd)
            if previous is not None:
                self.notify(
                    f"planqa: {describe_holder(previous)} ended while writing the index at "
                    f"{self.directory} without releasing its lock; taking it over"
                )
            self._write_note(fd)
        except BaseException:
            os.close(fd)
            raise
        with _held_guard:
            _held[key] = (me, 1)
        self._fd, self._key = fd, key

    def release(self) -> None:
        key = self._key
        if key is None:
            return
        with _held_guard:
            owner, depth = _held[key]
            if depth > 1:
                _held[key] = (owner, depth - 1)
                self._key = None
                return
            del _held[key]
        fd = self._fd
        self._fd = self._key = None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)  # no note: the next writer knows this one finished cleanly
                _unlock(fd)
            finally:
                os.close(fd)

    @property
    def held(self) -> bool:
        return self._key is not None

    # ------------------------------------------------------------------ internals
    def _wait_for(self, fd: int) -> None:
        deadline = time.monotonic() + self.timeout
        announced = False
        while not _try_lock(fd):
            holder = describe_holder(_read_note(fd))
            if time.monotonic() >= deadline:
                waited = f" after waiting {self.timeout:g} s" if self.timeout else ""
                raise IndexStoreError(
                    f"the index at {self.directory} is being written by {holder}{waited}; "
                    "run again when it has finished, or set PLANQA_INDEX_LOCK_TIMEOUT to "
                    "the seconds to wait (a writer that was killed releases the lock by itself)"
                )
            if not announced:
                self.notify(
                    f"planqa: the index at {self.directory} is being written by {holder}; "
                    f"waiting up to {self.timeout:g} s for it to finish"
                )
                announced = True
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def _write_note(self, fd: int) -> None:
        note = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "purpose": self.purpose,
            "started": datetime.now().isoformat(sep=" ", timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(note, ensure_ascii=False).encode("utf-8"))


def holds_lock(directory: Path) -> bool:
    """Whether this thread holds the writer lock of ``directory`` (for writers' assertions)."""
    key = (Path(directory).expanduser() / LOCK_FILE).resolve()
    with _held_guard:
        owner = _held.get(key)
    return owner is not None and owner[0] == threading.get_ident()
