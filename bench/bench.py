"""Speed of the real path: building the index of a corpus, then warm hybrid searches.

The build goes into a temporary folder with the configured model (its one-off conversion is cached
and excluded, as a user pays it once), so the number is what `planqa index` costs on a new corpus.
"""

from __future__ import annotations

import resource
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from planqa.corpus.settings import Settings
from planqa.eval.retrieval import search_latency
from planqa.index.builder import build_index
from planqa.index.embedder import make_embedder
from planqa.index.search import HybridSearcher


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bench(
    settings: Settings,
    questions: Sequence[str],
    *,
    corpus: Sequence[Path] | None = None,
    repeats: int = 3,
    progress: bool = False,
) -> dict[str, Any]:
    embedder = make_embedder(settings, progress=progress)
    embedder.embed_queries(["预热"])  # loads (and if needed converts) the model outside the timing
    with tempfile.TemporaryDirectory(prefix="planqa-bench-") as scratch:
        # Without the embedding cache: the figure is what indexing a new corpus costs.
        bench_settings = settings.model_copy(
            update={"index_dir": Path(scratch) / "index", "embedding_cache": False}
        )
        report = build_index(
            bench_settings,
            list(corpus or [settings.corpus_dir]),
            embedder=embedder,
            progress=progress,
        )
        index_bytes = directory_bytes(bench_settings.resolved_index_dir)
        searcher = HybridSearcher.open(bench_settings, embedder=embedder)
        latency = search_latency(searcher, list(questions), repeats=repeats)
    return {
        "model": settings.embedding_model,
        "documents": report.documents,
        "chunks": report.chunks,
        "build_seconds": round(report.seconds, 2),
        "build_chunks_per_second": round(report.chunks / report.seconds, 1),
        "index_bytes": index_bytes,
        "search_queries": int(latency["queries"]),
        "search_p50_ms": round(latency["p50_ms"], 1),
        "search_p95_ms": round(latency["p95_ms"], 1),
        "peak_rss_mb": round(peak_rss_mb(), 0),
    }
