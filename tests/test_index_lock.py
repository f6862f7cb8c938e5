"""Issue #16, item 1: one writer at a time per index folder (index/lock.py).

Two ``planqa index`` runs used to wipe a folder between them, both exiting 0: one deleted the
other's freshly published version, which the other then pointed ``CURRENT`` at. The race is made
deterministic here by pausing a build between publishing its version and switching ``CURRENT``
(``IndexStore._switch_current``); a second writer then waits or is refused (exit code 4), and the
index stays whole and openable. Fast: the hash embedder, indexes of two or three small files.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.builder import BuildReport, add_documents, build_index
from planqa.index.lock import LOCK_FILE, IndexLock, holds_lock
from planqa.index.search import HybridSearcher
from planqa.index.store import IndexStore
from planqa.ui.cli import app

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Long enough for any step here on a loaded machine; only reached when a test fails.
PATIENCE = 60.0


def plan_text(region: str, sentinel: str) -> str:
    return (
        f"{region}国民经济和社会发展第十四个五年规划纲要\n"
        "第一章 发展基础\n"
        f"“十三五”期间，{region}经济稳步增长，地区生产总值年均增长6.5%。\n"
        "第二章 重点任务\n"
        f"一、建设{sentinel}\n"
        f"到2025年，{region}将建成{sentinel}，带动就业三千人，年产值突破120亿元。\n"
    )


DOCS = {
    "keep.txt": plan_text("甲县", "鲲鹏智造港"),
    "second.txt": plan_text("乙县", "麒麟数据湾"),
    "third.txt": plan_text("丙县", "凤凰物流园"),
}


def corpus(tmp_path: Path, name: str, *files: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for file in files:
        (folder / file).write_text(DOCS[file], encoding="utf-8")
    return folder


def settings_for(tmp_path: Path, timeout: float = 0.0) -> Settings:
    return Settings(
        embedding_model="hash", index_dir=tmp_path / "index", index_lock_timeout=timeout
    )


def assert_whole(settings: Settings, documents: set[str]) -> None:
    """``CURRENT`` names an existing version holding ``documents``, it opens for search, and no
    other version or staging folder is left."""
    index_dir = settings.resolved_index_dir
    current = IndexStore(index_dir).current_version_dir()[0]
    assert current.is_dir()
    assert [p.name for p in index_dir.glob("v-*")] == [current.name]
    assert not list(index_dir.glob(".tmp-*"))
    searcher = HybridSearcher.open(settings)
    assert set(searcher.documents) == documents
    assert searcher.search("建设", 3)


class Writer(threading.Thread):
    """A build in a thread, keeping its report or its exception."""

    def __init__(self, work: Callable[[], BuildReport]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.report: BuildReport | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.report = self.work()
        except BaseException as exc:
            self.error = exc

    def result(self) -> BuildReport:
        self.join(PATIENCE)
        assert not self.is_alive(), "the writer never finished"
        if self.error is not None:
            raise self.error
        assert self.report is not None
        return self.report


class PausedSwitch:
    """Once armed, the first build to publish a version stops before switching ``CURRENT``
    until released (``go``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.published = threading.Event()
        self.go = threading.Event()
        original = IndexStore._switch_current
        self.paused = threading.Lock()
        self.paused.acquire()  # disarmed

        def switch(store: IndexStore, version_name: str, manifest_bytes: bytes) -> None:
            if self.paused.acquire(blocking=False):
                self.published.set()
                assert self.go.wait(PATIENCE), "the test never let the build finish"
            original(store, version_name, manifest_bytes)

        monkeypatch.setattr(IndexStore, "_switch_current", switch)

    def arm(self) -> None:
        self.paused.release()

    def wait_published(self) -> None:
        assert self.published.wait(PATIENCE), "the first build never published its version"


@pytest.fixture
def paused(monkeypatch: pytest.MonkeyPatch) -> PausedSwitch:
    return PausedSwitch(monkeypatch)


@contextmanager
def held_elsewhere(directory: Path, purpose: str) -> Iterator[None]:
    """The writer lock held by another thread, as a concurrent writer in this process would."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with IndexLock(directory, 0, purpose=purpose):
            taken.set()
            done.wait(PATIENCE)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert taken.wait(PATIENCE)
    try:
        yield
    finally:
        done.set()
        holder.join(PATIENCE)


def test_a_second_writer_while_one_publishes_is_refused_and_the_index_stays_whole(
    tmp_path: Path, paused: PausedSwitch
) -> None:
    """The reported race: B ran while A had published but not yet switched ``CURRENT``.

    A full build, an ``--add`` and an up-to-date run (whose clean-up deleted staging folders)
    are all refused with the holder named; a reader meanwhile opens the previous version."""
    one = corpus(tmp_path, "one", "keep.txt")
    build_index(settings_for(tmp_path), [one], progress=False)
    two = corpus(tmp_path, "two", "keep.txt", "second.txt")
    first = Writer(lambda: build_index(settings_for(tmp_path), [two], progress=False))
    paused.arm()
    first.start()
    paused.wait_published()

    other = settings_for(tmp_path, timeout=0)
    three = corpus(tmp_path, "three", "keep.txt", "third.txt")
    held_by = rf"being written by process {os.getpid()}\b.*PLANQA_INDEX_LOCK_TIMEOUT"
    with pytest.raises(IndexStoreError, match=held_by):
        build_index(other, [three], progress=False)
    with pytest.raises(IndexStoreError, match=held_by):
        build_index(other, [one], progress=False)  # up to date: it would only tidy
    with pytest.raises(IndexStoreError, match=held_by):
        add_documents(other, [three / "third.txt"], progress=False)
    assert IndexStoreError.exit_code == 4
    assert set(HybridSearcher.open(other).documents) == {"keep.txt"}  # readers never wait

    paused.go.set()
    assert first.result().added == ["second.txt"]
    assert_whole(other, {"keep.txt", "second.txt"})


def test_a_waiting_writer_builds_on_the_version_the_first_one_published(
    tmp_path: Path, paused: PausedSwitch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two ``--add`` runs at once: the second says on stderr that it waits, then adds its
    document to the first one's version, so neither document is lost."""
    one = corpus(tmp_path, "one", "keep.txt", "second.txt", "third.txt")
    build_index(settings_for(tmp_path), [one / "keep.txt"], progress=False)
    first = Writer(
        lambda: add_documents(settings_for(tmp_path), [one / "second.txt"], progress=False)
    )
    paused.arm()
    first.start()
    paused.wait_published()
    second = Writer(
        lambda: add_documents(
            settings_for(tmp_path, timeout=PATIENCE), [one / "third.txt"], progress=False
        )
    )
    second.start()
    err = ""
    deadline = time.monotonic() + PATIENCE
    while "waiting up to" not in err and time.monotonic() < deadline:
        time.sleep(0.05)
        err += capsys.readouterr().err
    assert f"is being written by process {os.getpid()}" in err, err
    assert f"waiting up to {PATIENCE:g} s" in err
    assert second.is_alive()

    paused.go.set()
    assert first.result().added == ["second.txt"]
    assert second.result().added == ["third.txt"]
    assert_whole(settings_for(tmp_path), {"keep.txt", "second.txt", "third.txt"})


KILLED_WRITER = """
import sys, time
from pathlib import Path
from planqa.corpus.settings import Settings
from planqa.index.builder import build_index
from planqa.index.store import IndexStore

def switch(store, version_name, manifest_bytes):
    print("published", flush=True)
    time.sleep(600)

IndexStore._switch_current = switch
settings = Settings(embedding_model="hash", index_dir=Path(sys.argv[1]))
build_index(settings, [Path(sys.argv[2])], progress=False)
"""


def test_a_lock_left_by_a_killed_writer_is_recovered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``kill -9`` between publishing and switching: the OS drops the lock, the next writer
    says whose it was, takes it at once (timeout 0) and removes the orphaned version."""
    one = corpus(tmp_path, "one", "keep.txt")
    settings = settings_for(tmp_path)
    build_index(settings, [one], progress=False)
    two = corpus(tmp_path, "two", "keep.txt", "second.txt")
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(settings.resolved_index_dir), str(two)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "published"
        with pytest.raises(IndexStoreError, match=rf"being written by process {writer.pid}\b"):
            build_index(settings, [one], progress=False)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(PATIENCE)
    assert writer.returncode == -signal.SIGKILL
    assert len(list(settings.resolved_index_dir.glob("v-*"))) == 2  # the orphan is still there
    capsys.readouterr()

    report = build_index(settings, [one], progress=False)
    assert report.up_to_date
    err = capsys.readouterr().err
    assert re.search(rf"process {writer.pid} \(.*\) ended while writing .* taking it over", err)
    assert_whole(settings, {"keep.txt"})
    assert build_index(settings, [two], progress=False).added == ["second.txt"]
    assert_whole(settings, {"keep.txt", "second.txt"})


def assert_refused(result: Any, *patterns: str) -> None:
    """Exit code 4, one ``error:`` line on stderr, no traceback."""
    output = result.stdout + result.stderr
    assert result.exit_code == 4, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for pattern in patterns:
        assert pattern in result.stderr, result.stderr


def test_the_cli_refuses_a_locked_index_with_exit_code_4(tmp_path: Path) -> None:
    """``planqa index`` and ``planqa index --add`` against another writer (here a "web upload"
    taking the lock as a context manager), with ``PLANQA_INDEX_LOCK_TIMEOUT=0``."""
    index_dir = tmp_path / "index"
    folder = corpus(tmp_path, "docs", "keep.txt", "second.txt")
    runner = CliRunner(
        env={
            "PLANQA_EMBEDDING_MODEL": "hash",
            "PLANQA_INDEX_DIR": str(index_dir),
            "PLANQA_INDEX_LOCK_TIMEOUT": "0",
        }
    )
    assert runner.invoke(app, ["index", str(folder / "keep.txt")]).exit_code == 0
    fix = "PLANQA_INDEX_LOCK_TIMEOUT"
    with held_elsewhere(index_dir, "web upload"):
        assert_refused(
            runner.invoke(app, ["index", "--add", str(folder / "second.txt")]),
            f"process {os.getpid()} (web upload",
            fix,
        )
        assert_refused(runner.invoke(app, ["index", str(folder)]), "web upload", fix)
        found = runner.invoke(app, ["search", "鲲鹏智造港", "--k", "1"])
        assert found.exit_code == 0 and "keep.txt" in found.stdout  # readers never wait
    added = runner.invoke(app, ["index", "--add", str(folder / "second.txt")])
    assert added.exit_code == 0, added.stdout + added.stderr
    assert_whole(settings_for(tmp_path), {"keep.txt", "second.txt"})


def test_the_lock_is_reentrant_for_its_thread_and_released_after(tmp_path: Path) -> None:
    """A writer holding the lock (a web upload, a background upgrade) can call the builder, which
    takes it again; when it lets go the file stays, with no note of a holder."""
    settings = settings_for(tmp_path)
    folder = corpus(tmp_path, "docs", "keep.txt")
    with IndexLock(settings.resolved_index_dir, 0, purpose="background upgrade") as lock:
        assert lock.held and holds_lock(settings.resolved_index_dir)
        build_index(settings, [folder], progress=False)
        assert holds_lock(settings.resolved_index_dir)
    assert not holds_lock(settings.resolved_index_dir)
    assert (settings.resolved_index_dir / LOCK_FILE).read_bytes() == b""
    assert_whole(settings, {"keep.txt"})
