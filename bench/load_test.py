"""A bounded load test of ``planqa serve`` through its public API, the way other programs call it.

``clients`` threads, each with its own ``gradio_client.Client``, start together and ask
``questions`` questions each from the bundled dev set, one after another, through ``/ask``. The
result (JSON) has the errors, latency percentiles over every request, throughput, and the
server's resident memory at the start, after a warm-up pass (lazy caches filled) and after the
run, so a leak shows as growth between the last two.

It only talks to loopback addresses, its request count is fixed, and a server it starts is
stopped again::

    python -m bench.load_test --start         # planqa serve on a free port, then stop it
    python -m bench.load_test --url http://127.0.0.1:7860/ --pid 12345
    python -m bench.load_test --start --embedding-model hash --index /tmp/idx --out load.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.process_memory import proc_status_mb
from planqa.corpus.errors import InputError
from planqa.eval.gold import BUNDLED_DEV_GOLD, load_gold

#: Seconds one request may take before it counts as an error (a queued request waits its turn).
REQUEST_TIMEOUT_S = 300.0
#: Seconds a started server may take to load the index and the model.
STARTUP_TIMEOUT_S = 600.0


@dataclass
class LoadResult:
    url: str
    clients: int
    questions_per_client: int
    requests: int
    errors: int
    error_samples: list[str] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    throughput_rps: float = 0.0
    server_pid: int | None = None
    rss_mb: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of ``pid`` in MiB (``VmRSS`` from /proc; None where that is missing)."""
    value = proc_status_mb(pid) if pid is not None else None
    return round(value, 1) if value is not None else None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def require_loopback(url: str) -> None:
    """Load is only ever sent to this machine."""
    host = (urlparse(url).hostname or "").lower()
    if host == "localhost":
        return
    import ipaddress

    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise InputError(f"refusing to load-test {url}: only loopback addresses (127.0.0.1, ::1)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"planqa serve exited with {process.returncode} before serving")
        try:
            with urllib.request.urlopen(url + "config", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"planqa serve did not answer at {url} within {timeout:.0f} s")


@contextmanager
def started_server(
    port: int | None = None,
    *,
    index: Path | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[tuple[str, int]]:
    """``planqa serve`` on 127.0.0.1 in a subprocess; yields (url, pid) and stops it after."""
    port = port or free_port()
    command = [sys.executable, "-m", "planqa.ui.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    if index is not None:
        command += ["--index", str(index)]
    output = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        command,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})},
        stdout=output,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, process, STARTUP_TIMEOUT_S)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        if log is not None:
            output.close()  # type: ignore[union-attr]


def default_questions() -> list[str]:
    return [item.question for item in load_gold(BUNDLED_DEV_GOLD)]


def _client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False, download_files=False)


def run_load(
    url: str,
    *,
    clients: int = 20,
    questions_per_client: int = 10,
    questions: Sequence[str] | None = None,
    server_pid: int | None = None,
    warm_up: bool = True,
) -> LoadResult:
    """``clients`` × ``questions_per_client`` requests to ``/ask``; never more, never elsewhere."""
    require_loopback(url)
    pool = list(questions or default_questions())
    result = LoadResult(url, clients, questions_per_client, clients * questions_per_client, 0)
    result.server_pid = server_pid
    result.rss_mb["start"] = rss_mb(server_pid)
    if warm_up:
        warm = _client(url)
        for question in dict.fromkeys(pool[: min(len(pool), 10)]):
            warm.predict(question, "", "extractive", api_name="/ask")
        warm.close()
    result.rss_mb["before"] = rss_mb(server_pid)

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients)

    def one_client(number: int) -> None:
        try:
            client = _client(url)
        except Exception as exc:  # a client that cannot even connect counts all its requests
            with lock:
                errors.extend([f"connect: {exc}"] * questions_per_client)
            ready.abort()
            return
        with suppress(threading.BrokenBarrierError):  # start together, or as soon as possible
            ready.wait(timeout=REQUEST_TIMEOUT_S)
        for turn in range(questions_per_client):
            question = pool[(number * questions_per_client + turn) % len(pool)]
            started = time.perf_counter()
            try:
                job = client.submit(question, "", "extractive", api_name="/ask")
                text, data = job.result(timeout=REQUEST_TIMEOUT_S)
                if not isinstance(text, str) or not (data.get("citations") or data["abstained"]):
                    raise ValueError(f"neither cited nor refused: {text!r}")
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            with lock:
                latencies.append((time.perf_counter() - started) * 1000.0)
        client.close()

    threads = [threading.Thread(target=one_client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall_s = round(time.perf_counter() - started, 2)
    result.errors = len(errors)
    result.error_samples = errors[:5]
    if latencies:
        result.latency_ms = {
            "p50": round(percentile(latencies, 50), 1),
            "p95": round(percentile(latencies, 95), 1),
            "max": round(max(latencies), 1),
            "mean": round(sum(latencies) / len(latencies), 1),
        }
        result.throughput_rps = round(len(latencies) / result.wall_s, 2)
    result.rss_mb["after"] = rss_mb(server_pid)
    before, after = result.rss_mb["before"], result.rss_mb["after"]
    result.rss_mb["growth"] = round(after - before, 1) if before and after else None
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_test", description=__doc__)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--url", help="A running server (loopback only), e.g. http://127.0.0.1:7860/"
    )
    target.add_argument("--start", action="store_true", help="Start planqa serve on a free port.")
    parser.add_argument("--pid", type=int, help="The running server's process id (for its RSS).")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10, help="Questions per client.")
    parser.add_argument("--index", type=Path, help="Index directory for --start.")
    parser.add_argument("--embedding-model", help="PLANQA_EMBEDDING_MODEL for --start.")
    parser.add_argument("--out", type=Path, help="Also write the JSON result here.")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 200 or not 1 <= args.questions <= 1000:
        parser.error("--clients must be 1..200 and --questions 1..1000 (a bounded test)")

    try:
        if args.start:
            env = {"PLANQA_EMBEDDING_MODEL": args.embedding_model} if args.embedding_model else {}
            with started_server(index=args.index, env=env) as (url, pid):
                result = run_load(
                    url, clients=args.clients, questions_per_client=args.questions, server_pid=pid
                )
        else:
            result = run_load(
                args.url,
                clients=args.clients,
                questions_per_client=args.questions,
                server_pid=args.pid,
            )
    except (InputError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result.to_dict(), ensure_ascii=False, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
