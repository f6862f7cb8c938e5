"""Time to first answer and to full quality at scale, building fast first (index/upgrade.py).

Part of ``planqa bench --scale``. At each text size the scale corpus is indexed with
``fast_first``: every passage really embedded by the static ``fast`` model, every other stage
real too. Measured: the build, opening the index and the first answer (time to first answer),
warm hybrid search latency, and dev-set evidence recall@5 at that size (the planning documents
are part of the scale corpus, the news around them are distractors). Then the upgrade: its
embedding runs on synthetic vectors (bench/scale.py; a real e5 pass over 100K chunks takes
hours here), so what is measured for real is everything else it does (loading, writing the
version); time to full quality adds the real model's measured passage rate over every chunk.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.scale import SyntheticPassageEmbedder, scale_corpus
from planqa.corpus.settings import Settings
from planqa.eval.gold import BUNDLED_DEV_GOLD, load_gold
from planqa.eval.metrics import percentile
from planqa.eval.retrieval import evaluate_retrieval
from planqa.index.builder import build_from_documents
from planqa.index.search import HybridSearcher
from planqa.index.upgrade import upgrade_index
from planqa.rag.pipeline import Pipeline

Progress = Callable[[str], None]


def _p50_p95(timings: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(timings, 50), 2),
        "p95_ms": round(percentile(timings, 95), 2),
    }


def bench_fast_first(
    settings: Settings,
    target: int,
    scale_dir: Path,
    real_rate: float,
    synthetic: SyntheticPassageEmbedder,
    say: Progress,
) -> dict[str, Any]:
    """The fast-first path at ``target`` chunks (see the module docstring)."""
    items = load_gold(BUNDLED_DEV_GOLD)
    corpus = scale_corpus(target, settings, scale_dir)
    with tempfile.TemporaryDirectory(prefix="planqa-fast-first-") as scratch:
        chosen = settings.model_copy(
            update={
                "index_dir": Path(scratch) / "index",
                "fast_first": True,
                "embedding_cache": False,
            }
        )
        say(f"{target:,} chunks: building fast first ({len(corpus.documents):,} documents)")
        started = time.perf_counter()
        report = build_from_documents(chosen, corpus.documents, progress=False)
        built = time.perf_counter() - started
        searcher = HybridSearcher.open(chosen)
        answer = Pipeline(chosen, searcher).ask(items[0].question)
        first_answer = time.perf_counter() - started
        timings = []
        for item in items:
            clock = time.perf_counter()
            searcher.search(item.question, 10)
            timings.append((time.perf_counter() - clock) * 1000)
        say(f"{target:,} chunks: dev recall@5 with the fast model")
        recall = evaluate_retrieval(items, searcher, ks=(5,), modes=("dense", "hybrid"))
        say(f"{target:,} chunks: upgrading (synthetic vectors; the rest real)")
        synthetic.real_passages = False
        clock = time.perf_counter()
        upgraded = upgrade_index(chosen, embedder=synthetic, progress=False)
        upgrade_seconds = time.perf_counter() - clock
    n = report.chunks
    embed_seconds = report.stages.get("embed_and_store", 0.0)
    return {
        "chunks": n,
        "build_seconds": round(built, 1),
        "stages_seconds": {k: round(v, 1) for k, v in report.stages.items()},
        "fast_embed_chunks_per_s": round(report.embedded / max(embed_seconds, 1e-9)),
        "time_to_first_answer_s": round(first_answer, 1),
        "first_answer_cites": bool(answer.citations),
        "fast_hybrid_search": _p50_p95(timings),
        "fast_recall_at_5": {m.mode: round(m.overall.recall[5], 4) for m in recall.modes},
        "upgrade_seconds_without_embedding": round(upgrade_seconds, 1),
        "upgraded": upgraded.upgraded,
        "real_model_chunks_per_s": round(real_rate, 2),
        "time_to_full_quality_h": round(
            (first_answer + n / max(real_rate, 1e-9) + upgrade_seconds) / 3600, 2
        ),
    }
