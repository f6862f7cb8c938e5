"""``planqa bench --milvus``: the whole hybrid search in Milvus against planqa's local hybrid.

The corpus (bundled documents, plus ``../shared/more-docs`` where it is) is indexed three times
with the configured model: with FAISS, into Milvus (Milvus Lite unless ``milvus_uri`` names a
server), and into Milvus with ``lexical_backend = "milvus"`` (no local BM25, so no jieba pass),
sharing the embedding cache so the model embeds each chunk once; each build is timed. Scored on
every gold set the corpus holds: evidence recall@5 of planqa's hybrid (FAISS vectors, planqa's
BM25, region-aware fusion, phrase ranking) and of ``lexical_backend = "milvus"`` (one Milvus
hybrid request: dense + Milvus's BM25 over its jieba analyzer, fused by RRF in Milvus), with
warm latency of each, the time to open each index (with texts in Milvus, reading them from
there) and the size of each index folder (what stays on local disk).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.embedder_bench import (
    DEFAULT_MORE_DOCS,
    Say,
    real_documents,
    search_latency,
    stderr_line,
)
from planqa.corpus.settings import Settings
from planqa.eval.retrieval import evaluate_retrieval
from planqa.index.builder import build_index
from planqa.index.embedder import make_embedder
from planqa.index.search import HybridSearcher


def run_milvus_bench(
    settings: Settings, *, more_docs: Path | None = DEFAULT_MORE_DOCS, say: Say = stderr_line
) -> dict[str, Any]:
    corpus, gold = real_documents(more_docs)
    questions = [item.question for items in gold.values() for item in items]
    embedder = make_embedder(settings, progress=False)
    rows: dict[str, Any] = {}
    builds: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="planqa-milvus-bench-") as scratch:
        base = settings.model_copy(update={"fast_first": False, "lexical_backend": "local"})
        uri = settings.milvus_uri or str(Path(scratch) / "milvus.db")
        chosen = {
            "planqa hybrid (FAISS)": base.model_copy(
                update={"index_dir": Path(scratch) / "faiss", "vector_backend": "faiss"}
            ),
            "planqa hybrid (Milvus vectors)": base.model_copy(
                update={
                    "index_dir": Path(scratch) / "milvus",
                    "vector_backend": "milvus",
                    "milvus_uri": uri,
                }
            ),
            "Milvus hybrid request": base.model_copy(
                update={
                    "index_dir": Path(scratch) / "milvus-lexical",
                    "vector_backend": "milvus",
                    "milvus_uri": uri,
                    "lexical_backend": "milvus",
                }
            ),
        }
        for label, options in chosen.items():
            say(f"{label}: indexing {', '.join(p.name for p in corpus)} (embedding cache on)")
            report = build_index(options, corpus, embedder=embedder, progress=False, rebuild=True)
            builds[label] = {
                "seconds": round(report.seconds, 1),
                "embedded": report.embedded,
                "stages": {k: round(v, 2) for k, v in report.stages.items()},
            }
            clock = time.perf_counter()
            searcher = HybridSearcher.open(options, embedder=embedder)
            opened = time.perf_counter() - clock
            say(f"{label}: scoring")
            recall = {
                name: round(
                    evaluate_retrieval(items, searcher, ks=(5,), modes=("hybrid",))
                    .mode("hybrid")
                    .overall.recall[5],
                    4,
                )
                for name, items in gold.items()
            }
            rows[label] = {
                "recall_at_5": recall,
                "hybrid_search": search_latency(searcher, questions),
                "build": builds[label],
                "open_seconds": round(opened, 2),
                "index_folder_bytes": sum(
                    p.stat().st_size for p in options.resolved_index_dir.rglob("*") if p.is_file()
                ),
            }
    return {
        "model": settings.embedding_model,
        "corpus": [str(p) for p in corpus],
        "sets": {n: len(g) for n, g in gold.items()},
        "rows": rows,
    }


def format_table(result: dict[str, Any]) -> str:
    sets = list(result["sets"])
    header = [
        "search",
        *(f"R@5 {name}" for name in sets),
        "p50 / p95 ms",
        "build s (BM25 s)",
        "open s",
        "index folder KB",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for label, row in result["rows"].items():
        latency = row["hybrid_search"]
        cells = [label, *(f"{row['recall_at_5'][n]:.3f}" for n in sets)]
        cells.append(f"{latency['p50_ms']} / {latency['p95_ms']}")
        build = row["build"]
        cells.append(f"{build['seconds']} ({build['stages'].get('bm25', 0.0)})")
        cells.append(f"{row['open_seconds']}")
        cells.append(f"{row['index_folder_bytes'] / 1024:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
