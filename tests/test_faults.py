"""Issue #6, faults: ``planqa index`` killed at any moment never damages the index, an update
equals a full rebuild, and the server outlives a request that fails.

The kill tests run the real command in a subprocess (hash embedder) and send SIGKILL at random
moments (the seed is printed, and ``PLANQA_FAULT_SEED`` replays it) and at the moments that
matter most: while the new version is being written, right after it appears, and right after
``CURRENT`` is switched to it. After each
kill the index directory must hold either the previous index or the complete new one — loadable
and answering exactly as that index answers — and the next build must finish the job, leaving
no staging directory or old version behind.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ports import serving

from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.builder import build_index
from planqa.index.search import HybridSearcher
from planqa.rag.pipeline import Pipeline

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED = REPO_ROOT / "corpus" / "documents"
QUERIES = ["集成电路测试产业园", "海州区人均地区生产总值", "港开 重大项目 2022年"]
SEED = int(os.environ.get("PLANQA_FAULT_SEED", time.time_ns() % 1_000_000))
#: Random kill moments per scenario (each costs one `planqa index` run of a few seconds).
RANDOM_KILLS = 3

Fingerprint = tuple[Any, ...]


# --------------------------------------------------------------------------- corpora


def write_corpus(folder: Path, copies: int, *, drop: str = "", change: str = "") -> Path:
    """The bundled corpus plus ``copies`` altered copies of it (so a build takes a few seconds).

    ``drop`` leaves one bundled file out; ``change`` appends a paragraph to one.
    """
    folder.mkdir(parents=True)
    shutil.copy(BUNDLED / "manifest.json", folder / "manifest.json")
    for path in sorted(BUNDLED.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        if path.name != drop:
            extra = "\n十、补充说明\n本区新增集成电路测试公共服务平台一个。\n"
            (folder / path.name).write_text(
                text + (extra if path.name == change else ""), encoding="utf-8"
            )
        for n in range(copies):
            (folder / f"copy{n}-{path.name}").write_text(
                f"{text}\n附：第{n}份副本。\n", encoding="utf-8"
            )
    return folder


def fingerprint(index_dir: Path) -> Fingerprint:
    """What a user can observe of an index: its documents, its chunks, and every chunk's dense
    and BM25 score for a few queries (row order, which an update may change, is left out)."""
    searcher = HybridSearcher.open(Settings(embedding_model="hash", index_dir=index_dir))
    total = len(searcher.contents.chunks)
    scores = []
    for query in QUERIES:
        for mode in ("dense", "bm25"):
            hits = searcher.search(query, total, mode=mode)
            scores.append(frozenset((h.chunk.id, round(h.score, 4)) for h in hits))
    return (
        frozenset((d.name, d.sha256) for d in searcher.documents.values()),
        frozenset(c.id for c in searcher.contents.chunks),
        tuple(scores),
    )


def state(index_dir: Path) -> Fingerprint | None:
    """The index's fingerprint, or None when there is no index at all; any other refusal fails."""
    try:
        return fingerprint(index_dir)
    except IndexStoreError as exc:
        if "no index at" in str(exc):
            return None
        raise


# --------------------------------------------------------------------------- killing


def index_command(corpus: Path, index_dir: Path, rebuild: bool) -> list[str]:
    command = [sys.executable, "-m", "planqa.ui.cli", "index", str(corpus)]
    command += ["--index", str(index_dir)]
    return command + (["--rebuild"] if rebuild else [])


def start(command: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PLANQA_EMBEDDING_MODEL": "hash"}
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_after(command: list[str], seconds: float) -> bool:
    """Run, SIGKILL after ``seconds``; True if it was still running then."""
    process = start(command)
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        return True


def kill_when(command: list[str], seen: Callable[[], bool], timeout: float) -> bool:
    """Run, SIGKILL as soon as ``seen()`` (polled every millisecond); True if it was killed."""
    process = start(command)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if seen():
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                return True
            time.sleep(0.001)
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def run_to_completion(command: list[str]) -> float:
    started = time.perf_counter()
    process = start(command)
    assert process.wait(timeout=600) == 0
    return time.perf_counter() - started


def check_kills(
    pristine: Path | None,
    corpus: Path,
    work: Path,
    rebuild: bool,
    before: Fingerprint | None,
    after: Fingerprint,
) -> dict[str, int]:
    """Kill ``planqa index`` at random and at critical moments; every time the directory must
    hold ``before`` or ``after``, and finishing the job must give ``after``."""

    def reset() -> None:
        shutil.rmtree(work, ignore_errors=True)
        if pristine is not None:
            shutil.copytree(pristine, work)

    command = index_command(corpus, work, rebuild)
    reset()
    duration = run_to_completion(command)
    assert state(work) == after, "an uninterrupted run must give the reference index"
    versions: set[str] = set()
    pointer = b""

    def writing() -> bool:
        return any(work.glob(".tmp-*"))

    def new_version_appeared() -> bool:
        return any(p.name not in versions for p in work.glob("v-*"))

    def current_replaced() -> bool:
        try:
            return (work / "CURRENT").read_bytes() != pointer
        except OSError:
            return False

    rng = random.Random(SEED)
    moments: list[tuple[str, Callable[[], bool]]] = [
        (f"after {m:.2f}s", lambda m=m: kill_after(command, m))  # type: ignore[misc]
        for m in sorted(rng.uniform(0.3, 1.05) * duration for _ in range(RANDOM_KILLS))
    ]
    moments += [
        ("while writing", lambda: kill_when(command, writing, 3 * duration)),
        ("new version present", lambda: kill_when(command, new_version_appeared, 3 * duration)),
        ("CURRENT replaced", lambda: kill_when(command, current_replaced, 3 * duration)),
    ]
    outcomes = {"before": 0, "after": 0, "finished": 0}
    for label, kill in moments:
        reset()
        versions = {p.name for p in work.glob("v-*")}
        pointer = (work / "CURRENT").read_bytes() if (work / "CURRENT").exists() else b""
        killed = kill()
        found = state(work)
        context = f"kill {label} (PLANQA_FAULT_SEED={SEED})"
        assert found in (before, after), f"{context}: the index is neither the old nor the new one"
        outcomes["before" if found == before else "after"] += 1
        outcomes["finished"] += not killed
        # The next build completes the job over whatever the kill left behind.
        settings = Settings(embedding_model="hash", index_dir=work)
        build_index(settings, [corpus], rebuild=rebuild, progress=False)
        assert state(work) == after, context
        assert not list(work.glob(".tmp-*")), f"{context}: staging left behind"
        assert len(list(work.glob("v-*"))) == 1, f"{context}: old versions left behind"
    print(f"\nkills (seed {SEED}, run {duration:.1f}s): {outcomes}")
    return outcomes


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fault-corpora")
    return {
        "old": write_corpus(root / "old", copies=2),
        # An update: one document removed, one changed, and (copy #2) new ones added.
        "new": write_corpus(
            root / "new",
            copies=3,
            drop="004_99a6b245d6293f07.txt",
            change="001_609138391ce5f9ab.txt",
        ),
    }


@pytest.fixture(scope="module")
def references(corpora: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """In-process full builds of both corpora: what the killed runs are compared with."""
    root = tmp_path_factory.mktemp("fault-references")
    result: dict[str, Any] = {}
    for name, corpus in corpora.items():
        settings = Settings(embedding_model="hash", index_dir=root / name)
        build_index(settings, [corpus], progress=False)
        result[name] = settings.resolved_index_dir
        result[f"{name}-fingerprint"] = fingerprint(result[name])
    return result


@pytest.mark.slow
@pytest.mark.parametrize("rebuild", [True, False], ids=["full-rebuild", "incremental-update"])
def test_killed_build_leaves_the_previous_index(
    corpora: dict[str, Path], references: dict, tmp_path: Path, rebuild: bool
) -> None:
    """For the incremental update, also the proof that an update equals a full rebuild:
    ``after`` is the full build."""
    check_kills(
        references["old"],
        corpora["new"],
        tmp_path / "index",
        rebuild=rebuild,
        before=references["old-fingerprint"],
        after=references["new-fingerprint"],
    )


@pytest.mark.slow
def test_killed_first_build_leaves_no_index_or_a_whole_one(
    corpora: dict[str, Path], references: dict, tmp_path: Path
) -> None:
    check_kills(
        None,
        corpora["old"],
        tmp_path / "index",
        rebuild=False,
        before=None,
        after=references["old-fingerprint"],
    )


def test_update_reuses_unchanged_chunks_and_equals_a_full_rebuild(
    corpora: dict[str, Path], references: dict, tmp_path: Path
) -> None:
    """In-process: added, changed and removed documents are handled, nothing unchanged is
    embedded again, and the result is the full build of the new corpus."""
    work = tmp_path / "index"
    shutil.copytree(references["old"], work)
    settings = Settings(embedding_model="hash", index_dir=work)
    report = build_index(settings, [corpora["new"]], progress=False)
    assert report.removed == ["004_99a6b245d6293f07.txt"]
    assert report.changed == ["001_609138391ce5f9ab.txt"]
    assert sorted(report.added) == sorted(f"copy2-{p.name}" for p in BUNDLED.glob("*.txt"))
    assert 0 < report.embedded < report.chunks // 2
    assert fingerprint(work) == references["new-fingerprint"]


# --------------------------------------------------------------------------- the server


@pytest.fixture
def live_pipeline(hash_index_settings: Settings) -> Iterator[tuple[Pipeline, str]]:
    pipeline = Pipeline.open(hash_index_settings)
    with serving(hash_index_settings, pipeline=pipeline) as (url, _):
        yield pipeline, url


@pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")
@pytest.mark.filterwarnings("ignore:.*no_silent_downcasting")
def test_the_server_survives_a_failing_request(
    live_pipeline: tuple[Pipeline, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gradio_client import Client

    from planqa.ui.app import INTERNAL_ERROR

    pipeline, url = live_pipeline
    real_ask = pipeline.ask
    failures = {"left": 1}

    def ask_failing_once(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("secret internal detail: disk on fire")
        return real_ask(*args, **kwargs)

    monkeypatch.setattr(pipeline, "ask", ask_failing_once)
    client = Client(url, verbose=False)
    with pytest.raises(Exception) as error:
        client.predict("哪个区规划了集成电路测试产业园？", api_name="/ask")
    assert INTERNAL_ERROR in str(error.value) and "disk on fire" not in str(error.value)
    text, data = client.predict("哪个区规划了集成电路测试产业园？", api_name="/ask")
    assert "南通" in text and data["citations"]
    # One failure in the middle of a burst fails that request alone.
    failures["left"] = 1
    jobs = [client.submit(q, api_name="/ask") for q in ["集成电路", "海州区", "港开", "海门"]]
    outcomes = []
    for job in jobs:
        try:
            outcomes.append(bool(job.result(timeout=120)[0]))
        except Exception:
            outcomes.append(False)
    assert outcomes.count(False) == 1 and outcomes.count(True) == 3


def test_an_up_to_date_build_removes_what_a_killed_one_left(
    hash_index_settings: Settings, tmp_path: Path
) -> None:
    work = tmp_path / "index"
    shutil.copytree(hash_index_settings.resolved_index_dir, work)
    (work / ".tmp-deadbeef0000").mkdir()
    (work / ".tmp-deadbeef0000" / "chunks.jsonl").write_text("{", encoding="utf-8")
    shutil.copytree(next(work.glob("v-*")), work / "v-20000101T000000-000000")
    settings = Settings(embedding_model="hash", index_dir=work)
    before = fingerprint(work)
    assert build_index(settings, [BUNDLED], progress=False).up_to_date
    assert not list(work.glob(".tmp-*")) and len(list(work.glob("v-*"))) == 1
    assert fingerprint(work) == before
