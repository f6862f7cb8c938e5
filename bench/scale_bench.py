"""``planqa bench --scale``: build, size, memory and latency at 10K, 100K and 1M chunks.

What is real and what is not (the report says it too, under "method"):

* Real: the text (CRUD-RAG news + the planning documents, repeated under new names to reach
  100K chunks), chunking, jieba tokenisation, BM25, FAISS, the on-disk store, loading, hybrid
  search, the extractive ``ask`` pipeline, and every query embedding (the configured model).
* Measured apart: passage embedding with the real model, on a random sample of news chunks; the
  full-build time at each size is extrapolated from that rate.
* Synthetic: the passage vectors of the 10K/100K indexes and the whole 1M vector set, drawn from a
  kernel density estimate of the real sample (bench/scale.py). Only the 1M vector index is built
  at 1M: its text side would not fit the time a 2-core machine has (tokenising alone ~15 min).
* Adding a document embeds its chunks with the real model, so that number is end to end.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench import directory_bytes
from bench.fast_first_bench import bench_fast_first
from bench.process_memory import proc_status_mb
from bench.scale import (
    DEFAULT_SCALE_DIR,
    NEWS_REGION_PREFIX,
    KernelDensity,
    SyntheticPassageEmbedder,
    news_documents,
    sample_embeddings,
    scale_corpus,
)
from planqa.corpus.settings import Settings
from planqa.eval.metrics import percentile
from planqa.index.builder import add_documents, build_from_documents
from planqa.index.embedder import make_embedder
from planqa.index.search import HybridSearcher
from planqa.index.vectors import VectorIndex, exact_search, set_search_threads
from planqa.index.vectorstore import index_params_for
from planqa.rag.pipeline import Pipeline

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
METHOD = (
    "real: text, chunking, jieba, BM25, FAISS, store, loading, search, ask, query embeddings; "
    "synthetic: passage vectors of the 10K/100K indexes and all 1M vectors (kernel density "
    "around real e5 vectors of sampled news chunks, bench/scale.py); measured apart: passage "
    "embedding throughput, from which full-build hours are extrapolated; add-one-document "
    "embeds with the real model."
)
#: Above this many chunks only the vector index is built (see the module docstring).
VECTOR_ONLY_ABOVE = 200_000
#: The passage sample is embedded at this sequence length to keep it to minutes (the vector
#: distribution barely depends on it); throughput is reported at the configured length too.
SAMPLE_SEQ_LENGTH = 128

Progress = Callable[[str], None]


def _rss_mb(field: str = "VmRSS") -> float:
    """Current (VmRSS) or peak (VmHWM) resident memory of this process."""
    value = proc_status_mb("self", field)
    return math.nan if value is None else value


def _reset_peak_rss() -> None:
    """Linux resets VmHWM to the current RSS on "5" > clear_refs, so each size gets its own peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _latency(fn: Callable[[str], Any], questions: Sequence[str], repeats: int) -> dict[str, float]:
    for question in questions:  # warm: first calls load lazily
        fn(question)
    timings = []
    for _ in range(repeats):
        for question in questions:
            started = time.perf_counter()
            fn(question)
            timings.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(percentile(timings, 50), 2),
        "p95_ms": round(percentile(timings, 95), 2),
    }


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else math.inf


def bench_text_size(
    settings: Settings,
    target: int,
    embedder: SyntheticPassageEmbedder,
    questions: Sequence[str],
    scale_dir: Path,
    real_rate: float,
    repeats: int,
    say: Progress,
) -> dict[str, Any]:
    """The full stack at ``target`` chunks (synthetic passage vectors, everything else real)."""
    _reset_peak_rss()
    say(f"{target:,} chunks: collecting documents")
    corpus = scale_corpus(target, settings, scale_dir)
    with tempfile.TemporaryDirectory(prefix="planqa-scale-") as scratch:
        bench_settings = settings.model_copy(update={"index_dir": Path(scratch) / "index"})
        say(f"{target:,} chunks: building the index ({len(corpus.documents):,} documents)")
        embedder.real_passages = False
        report = build_from_documents(
            bench_settings, corpus.documents, embedder=embedder, progress=False
        )
        stages = report.stages
        n = report.chunks
        index_bytes = directory_bytes(bench_settings.resolved_index_dir)
        say(f"{target:,} chunks: opening and searching")
        started = time.perf_counter()
        searcher = HybridSearcher.open(bench_settings, embedder=embedder)
        open_seconds = time.perf_counter() - started
        search = _latency(lambda q: searcher.search(q, 10), questions, repeats)
        region = f"{NEWS_REGION_PREFIX}01"  # one source file: ~4% of rows at 100K
        filtered = _latency(lambda q: searcher.search(q, 10, region=region), questions, repeats)
        embed = _latency(lambda q: embedder.embed_queries([q]), questions, repeats)
        pipeline = Pipeline(bench_settings, searcher)
        ask = _latency(lambda q: pipeline.ask(q), questions, repeats)
        rss = _rss_mb()

        say(f"{target:,} chunks: adding one document (real embeddings)")
        new_doc = news_documents(scale_dir, copy=99)[17]
        path = Path(scratch) / "added.txt"
        path.write_text(new_doc.text, encoding="utf-8")
        embedder.real_passages = True
        started = time.perf_counter()
        added = add_documents(bench_settings, [path], embedder=embedder, progress=False)
        add_seconds = time.perf_counter() - started
        embedder.real_passages = False
    non_embedding = stages["chunk"] + stages["bm25"] + stages["write"]
    return {
        "chunks": n,
        "documents": len(corpus.documents),
        "vector_index": index_params_for(n, settings).to_dict(),
        "build_chunks_per_s": {
            "chunk": _rate(n, stages["chunk"]),
            "bm25": _rate(n, stages["bm25"]),
            "vectors_and_store": _rate(n, stages["embed_and_store"]),
            "write": _rate(n, stages["write"]),
            "all_but_embedding": _rate(n, non_embedding + stages["embed_and_store"]),
            "real_embedding": round(real_rate, 2),
        },
        "build_seconds_measured": round(report.seconds, 1),
        "build_hours_with_real_embedding": round(
            (n / max(real_rate, 1e-9) + non_embedding) / 3600, 2
        ),
        "index_mb": round(index_bytes / 2**20, 1),
        "open_seconds": round(open_seconds, 2),
        "rss_mb": round(rss, 0),
        "peak_rss_mb": round(_rss_mb("VmHWM"), 0),
        "query_embedding": embed,
        "hybrid_search": search,
        "hybrid_search_region_filter": filtered,
        "ask": ask,
        "add_one_document": {
            "seconds": round(add_seconds, 2),
            "chunks_embedded": added.embedded,
            "stages": {k: round(v, 2) for k, v in added.stages.items()},
        },
    }


def bench_vectors(
    settings: Settings,
    n: int,
    density: KernelDensity,
    real_queries: np.ndarray,
    say: Progress,
    n_queries: int = 200,
) -> dict[str, Any]:
    """The vector index alone at ``n`` synthetic vectors: build, size, latency, recall@10."""
    _reset_peak_rss()
    say(f"{n:,} vectors: drawing")
    base = density.vectors(n, seed=1)
    queries = np.vstack([density.vectors(n_queries, seed=99), real_queries]).astype(np.float32)
    params = index_params_for(n, settings)
    say(f"{n:,} vectors: building {params.kind}")
    set_search_threads(2)  # building uses both cores; searching is timed single-threaded
    started = time.perf_counter()
    index = VectorIndex.build(base, density.dimension, params)
    build_seconds = time.perf_counter() - started
    set_search_threads(settings.search_threads)
    with tempfile.TemporaryDirectory(prefix="planqa-vectors-") as scratch:
        path = Path(scratch) / "v.faiss"
        index.save(path)
        index_bytes = path.stat().st_size
    say(f"{n:,} vectors: exact ground truth")
    truth = _exact_top(base, queries, 10)
    rng = np.random.default_rng(3)
    result: dict[str, Any] = {
        "vectors": n,
        "vector_index": params.to_dict(),
        "build_seconds": round(build_seconds, 1),
        "build_vectors_per_s": _rate(n, build_seconds),
        "index_mb": round(index_bytes / 2**20, 1),
        "peak_rss_mb": round(_rss_mb("VmHWM"), 0),
    }
    say(f"{n:,} vectors: searching")
    result["search"] = _timed_recall(lambda q: index.search(q, 10), queries, truth)
    result["search_real_questions"] = _timed_recall(
        lambda q: index.search(q, 10), queries[n_queries:], truth[n_queries:]
    )
    for share in (0.08, 0.01):
        allowed = np.flatnonzero(rng.random(n) < share)
        sub_truth = allowed[_exact_top(base[allowed], queries, 10)]
        result[f"search_filter_{share:.0%}"] = _timed_recall(
            lambda q, a=allowed: index.search(q, 10, a), queries, sub_truth
        )
    flat_timings = []
    for q in queries[:20]:
        started = time.perf_counter()
        exact_search(base, q, 10, np.arange(n))
        flat_timings.append((time.perf_counter() - started) * 1000)
    result["exact_numpy_p50_ms"] = round(percentile(flat_timings, 50), 2)
    return result


def _exact_top(base: np.ndarray, queries: np.ndarray, k: int, batch: int = 50) -> np.ndarray:
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), batch):
        scores = queries[start : start + batch] @ base.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start : start + batch] = np.take_along_axis(top, order, axis=1)
    return out


def _timed_recall(
    search: Callable[[np.ndarray], list[tuple[int, float]]], queries: np.ndarray, truth: np.ndarray
) -> dict[str, float]:
    timings, recalls = [], []
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        found = search(query)
        timings.append((time.perf_counter() - started) * 1000)
        recalls.append(len({r for r, _ in found} & set(expected.tolist())) / len(expected))
    return {
        "p50_ms": round(percentile(timings, 50), 2),
        "p95_ms": round(percentile(timings, 95), 2),
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "queries": len(queries),
    }


def run_scale_bench(
    settings: Settings,
    questions: Sequence[str],
    *,
    sizes: Sequence[int] = DEFAULT_SIZES,
    scale_dir: Path = DEFAULT_SCALE_DIR,
    sample_size: int = 3000,
    repeats: int = 2,
    vector_only_above: int = VECTOR_ONLY_ABOVE,
    fast_first: bool = True,
    say: Progress = lambda _message: None,
) -> dict[str, Any]:
    real = make_embedder(settings, progress=False)
    say(f"embedding {sample_size} sampled news chunks with the real model (cached)")
    sample_settings = settings.model_copy(update={"max_seq_length": SAMPLE_SEQ_LENGTH})
    sample, sample_rate = sample_embeddings(sample_settings, scale_dir, n=sample_size)
    say("measuring real embedding throughput at the configured sequence length")
    full_rate = _full_length_rate(settings, scale_dir)
    density = KernelDensity(sample)
    embedder = SyntheticPassageEmbedder(real, density)
    real_queries = real.embed_queries(list(questions))
    set_search_threads(settings.search_threads)
    results: dict[str, Any] = {
        "method": METHOD,
        "embedding": {
            "model": settings.embedding_model,
            "sample_chunks": len(sample),
            "sample_max_seq_length": SAMPLE_SEQ_LENGTH,
            "sample_chunks_per_s": round(sample_rate, 2),
            "chunks_per_s_at_configured_length": round(full_rate, 2),
            "configured_max_seq_length": settings.max_seq_length,
        },
        "questions": len(questions),
        "sizes": [],
    }
    for size in sizes:
        if size > vector_only_above:
            results["sizes"].append(
                {"vector_only": bench_vectors(settings, size, density, real_queries, say)}
            )
        else:
            entry = bench_text_size(
                settings, size, embedder, questions, scale_dir, full_rate, repeats, say
            )
            if fast_first:
                entry["fast_first"] = bench_fast_first(
                    settings, size, scale_dir, full_rate, embedder, say
                )
            results["sizes"].append(entry)
    return results


def _full_length_rate(settings: Settings, scale_dir: Path, n: int = 64) -> float:
    """Real passages per second at the configured max_seq_length, on ``n`` news chunks."""
    from planqa.index.builder import chunk_documents, embedding_text

    embedder = make_embedder(settings, progress=False)
    documents = news_documents(scale_dir)
    chunks = chunk_documents(documents[1000:1100] or documents[:100], settings)[:n]
    texts = [embedding_text(c) for c in chunks]
    embedder.embed_passages(texts[:4])
    started = time.perf_counter()
    embedder.embed_passages(texts)
    return len(texts) / (time.perf_counter() - started)


def summary_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The report as a table: one column per size, one row per figure (for the CLI)."""

    def ms(block: dict[str, float] | None) -> str:
        return "—" if not block else f"{block['p50_ms']:.1f} / {block['p95_ms']:.1f}"

    header = ["figure"]
    columns: list[dict[str, str]] = []
    for entry in result["sizes"]:
        if "vector_only" in entry:
            v = entry["vector_only"]
            header.append(f"{v['vectors']:,} (vectors only)")
            columns.append(
                {
                    "index": v["vector_index"]["kind"],
                    "build chunks/s": f"{v['build_vectors_per_s']:,.0f} (vector index)",
                    "index size MB": f"{v['index_mb']:,.0f}",
                    "peak RSS MB": f"{v['peak_rss_mb']:,.0f}",
                    "vector search p50/p95 ms": ms(v["search"]),
                    "recall@10 vs exact": f"{v['search']['recall_at_10']:.3f}",
                    "recall@10, 8% / 1% filter": f"{v['search_filter_8%']['recall_at_10']:.3f}"
                    f" / {v['search_filter_1%']['recall_at_10']:.3f}",
                    "exact scan p50 ms": f"{v['exact_numpy_p50_ms']:.1f}",
                }
            )
            continue
        header.append(f"{entry['chunks']:,} chunks")
        rates = entry["build_chunks_per_s"]
        add = entry["add_one_document"]
        columns.append(
            {
                "index": entry["vector_index"]["kind"],
                "build chunks/s": f"chunk {rates['chunk']:,.0f} · bm25 {rates['bm25']:,.0f} · "
                f"vectors {rates['vectors_and_store']:,.0f} · write {rates['write']:,.0f} · "
                f"embed {rates['real_embedding']:.1f}",
                "full build h (real model)": f"{entry['build_hours_with_real_embedding']:.2f}",
                "index size MB": f"{entry['index_mb']:,.0f}",
                "RSS / peak MB": f"{entry['rss_mb']:,.0f} / {entry['peak_rss_mb']:,.0f}",
                "open s": f"{entry['open_seconds']:.2f}",
                "query embedding p50/p95 ms": ms(entry["query_embedding"]),
                "hybrid search p50/p95 ms": ms(entry["hybrid_search"]),
                "  with region filter": ms(entry["hybrid_search_region_filter"]),
                "ask p50/p95 ms": ms(entry["ask"]),
                "add one document s": f"{add['seconds']:.2f} ({add['chunks_embedded']} embedded)",
                **_fast_first_rows(entry.get("fast_first")),
            }
        )
    figures = list(dict.fromkeys(key for column in columns for key in column))
    rows = [[figure, *(column.get(figure, "") for column in columns)] for figure in figures]
    return header, rows


def _fast_first_rows(fast: dict[str, Any] | None) -> dict[str, str]:
    """The fast-first figures of one size (bench/fast_first_bench.py), as table rows."""
    if not fast:
        return {}
    search, recall = fast["fast_hybrid_search"], fast["fast_recall_at_5"]
    swap = fast["upgrade_seconds_without_embedding"]
    return {
        "fast first: time to first answer s": f"{fast['time_to_first_answer_s']:.1f}",
        "fast first: embed chunks/s": f"{fast['fast_embed_chunks_per_s']:,.0f}",
        "fast first: hybrid search p50/p95 ms": f"{search['p50_ms']:.1f} / {search['p95_ms']:.1f}",
        "fast first: dev R@5 dense / hybrid": f"{recall['dense']:.3f} / {recall['hybrid']:.3f}",
        "fast first: upgrade, less embedding, s": f"{swap:.1f}",
        "time to full quality h (real model)": f"{fast['time_to_full_quality_h']:.2f}",
    }
