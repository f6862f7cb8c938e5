"""Issue #6, load: 20 concurrent gradio_client clients × 10 questions against a real
``planqa serve`` process on 127.0.0.1 (hash embedder): no errors, latency reported, memory flat.

The same run against the real model is ``python -m bench.load_test --start`` (numbers in
docs/robustness.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.load_test import percentile, require_loopback, rss_mb, run_load, started_server
from planqa.corpus.errors import InputError
from planqa.corpus.settings import Settings

#: Resident memory may grow this much over 200 requests after the warm-up (gradio keeps a
#: little per-session state); a leak of the answers or passages would be far larger.
MAX_RSS_GROWTH_MB = 64


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_twenty_clients_ten_questions_each(hash_index_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    env = {"PLANQA_EMBEDDING_MODEL": "hash"}
    with started_server(index=hash_index_settings.resolved_index_dir, env=env, log=log) as (
        url,
        pid,
    ):
        result = run_load(url, clients=20, questions_per_client=10, server_pid=pid)
    print("\n" + json.dumps(result.to_dict(), ensure_ascii=False))
    assert result.requests == 200
    assert result.errors == 0, result.error_samples
    assert set(result.latency_ms) == {"p50", "p95", "max", "mean"}
    assert 0 < result.latency_ms["p50"] <= result.latency_ms["p95"] <= result.latency_ms["max"]
    rss = result.rss_mb
    assert rss["before"] and rss["after"], "server RSS not readable from /proc"
    assert rss["growth"] is not None and rss["growth"] < MAX_RSS_GROWTH_MB, rss
    assert "Traceback" not in log.read_text(errors="replace")


def test_load_is_only_sent_to_loopback() -> None:
    for url in ("http://127.0.0.1:7860/", "http://localhost:1/", "http://[::1]:8080/"):
        require_loopback(url)
    for url in ("http://10.0.0.5:7860/", "http://example.org/", "http://0.0.0.0:7860/"):
        with pytest.raises(InputError, match="loopback"):
            require_loopback(url)


def test_percentiles_and_rss_helpers() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95
    assert percentile([7.0], 95) == 7.0
    import os

    assert (rss_mb(os.getpid()) or 0) > 10
    assert rss_mb(None) is None and rss_mb(2**22 + 12345) is None
