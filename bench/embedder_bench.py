"""``planqa bench --embedders``: the default e5 model against the static ``fast`` model, and both.

Measured in one run, the same way for each model: the corpus (the bundled documents, plus
``../shared/more-docs`` where it is, so that the generality and rewording sets can be scored)
indexed into a temporary folder with the embedding cache off, so every chunk is really embedded;
build seconds, chunks per second and the passage-embedding rate; query-embedding and hybrid
search latency (p50/p95, warm); evidence recall@5 per gold set, dense-only and hybrid.

"fusion" is reciprocal-rank fusion of the two models' rankings over the same chunks (dense:
both dense lists; hybrid: both hybrid lists), what a corpus searched with both would give.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from planqa.corpus.settings import BUNDLED_CORPUS_DIR, Settings
from planqa.eval.gold import BUNDLED_DEV_GOLD, GoldItem, load_gold
from planqa.eval.retrieval import Passage, Retrieve, evaluate_retrieval
from planqa.index.builder import build_index
from planqa.index.embedder import FAST_MODEL_NAME, make_embedder
from planqa.index.search import Hit, HybridSearcher

GOLD_DIR = BUNDLED_DEV_GOLD.parent
DEFAULT_MORE_DOCS = Path(__file__).resolve().parents[2] / "shared" / "more-docs"
#: Gold sets over the bundled documents only, and those that also need the more-docs ones.
BUNDLED_SETS = ("dev", "probes")
MORE_DOCS_SETS = ("generality", "rewordings")
MODES = ("dense", "hybrid")
#: Reciprocal-rank fusion constant (the usual 60).
RRF_K = 60
#: How deep each model's list goes into the fusion.
FUSION_DEPTH = 50

Say = Callable[[str], None]


def stderr_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(samples, 50)), 2),
        "p95_ms": round(float(np.percentile(samples, 95)), 2),
    }


def _passage(hit: Hit) -> Passage:
    chunk = hit.chunk
    return Passage(chunk.doc, chunk.start, chunk.end, chunk.text, chunk.chapter, hit.score)


def fused(searchers: Sequence[HybridSearcher], mode: str) -> Retrieve:
    """Reciprocal-rank fusion of each searcher's ``mode`` ranking, keyed by chunk id."""

    def retrieve(query: str, k: int) -> list[Passage]:
        scores: dict[str, float] = {}
        hits: dict[str, Hit] = {}
        for searcher in searchers:
            for rank, hit in enumerate(searcher.search(query, FUSION_DEPTH, mode=mode)):
                scores[hit.chunk.id] = scores.get(hit.chunk.id, 0.0) + 1.0 / (RRF_K + rank + 1)
                hits.setdefault(hit.chunk.id, hit)
        best = sorted(scores, key=lambda cid: -scores[cid])[:k]
        return [_passage(hits[cid]) for cid in best]

    return retrieve


def _recalls(
    reference: HybridSearcher,
    gold: dict[str, list],
    modes: Sequence[str] = MODES,
    extra: dict[str, Retrieve] | None = None,
) -> dict[str, dict[str, float]]:
    """Recall@5 per gold set and mode: ``reference``'s own ``modes`` and the ``extra``
    retrievers (the gold evidence is located in ``reference``'s documents)."""
    out: dict[str, dict[str, float]] = {}
    for name, items in gold.items():
        report = evaluate_retrieval(items, reference, ks=(5,), modes=modes, extra=extra)
        out[name] = {m.mode: round(m.overall.recall[5], 4) for m in report.modes}
    return out


def _timed_build(settings: Settings, corpus: list[Path], say: Say) -> tuple[Any, HybridSearcher]:
    embedder = make_embedder(settings, progress=False)
    embedder.embed_queries(["预热"])  # loading (and converting) the model is not indexing
    say(f"{settings.embedding_model}: indexing {', '.join(p.name for p in corpus)}")
    report = build_index(settings, corpus, embedder=embedder, progress=False, rebuild=True)
    return report, HybridSearcher.open(settings, embedder=embedder)


def real_documents(more_docs: Path | None) -> tuple[list[Path], dict[str, list[GoldItem]]]:
    """The corpus measured on and its gold sets: the bundled documents with dev and probes,
    plus ``more_docs`` with the generality and rewording sets where that folder is."""
    corpus = [BUNDLED_CORPUS_DIR]
    sets = list(BUNDLED_SETS)
    if more_docs is not None and more_docs.is_dir():
        # The documents, not the folder: its README is about them, not one of them.
        corpus += [
            p
            for p in sorted(more_docs.iterdir())
            if p.is_file() and not p.name.startswith("README")
        ]
        sets += MORE_DOCS_SETS
    return corpus, {name: load_gold(GOLD_DIR / f"{name}.jsonl") for name in sets}


def search_latency(searcher: HybridSearcher, questions: Sequence[str]) -> dict[str, float]:
    """Warm hybrid search p50/p95 ms over ``questions`` (the first five searched untimed)."""
    for question in questions[:5]:
        searcher.search(question, 5)
    timings = []
    for question in questions:
        clock = time.perf_counter()
        searcher.search(question, 5)
        timings.append((time.perf_counter() - clock) * 1000)
    return percentiles(timings)


def _latency(searcher: HybridSearcher, questions: Sequence[str]) -> dict[str, Any]:
    search = search_latency(searcher, questions)
    embed = []
    for question in questions:
        clock = time.perf_counter()
        searcher.embedder.embed_queries([question])
        embed.append((time.perf_counter() - clock) * 1000)
    return {"query_embedding": percentiles(embed), "hybrid_search": search}


def run_embedder_bench(
    settings: Settings, *, more_docs: Path | None = DEFAULT_MORE_DOCS, say: Say = stderr_line
) -> dict[str, Any]:
    corpus, gold = real_documents(more_docs)
    questions = [item.question for items in gold.values() for item in items]
    rows: list[dict[str, Any]] = []
    searchers: dict[str, HybridSearcher] = {}
    with tempfile.TemporaryDirectory(prefix="planqa-embedders-") as scratch:
        for model in (settings.embedding_model, FAST_MODEL_NAME):
            chosen = settings.model_copy(
                update={
                    "embedding_model": model,
                    "index_dir": Path(scratch) / model.replace("/", "_"),
                    "embedding_cache": False,
                    "fast_first": False,
                }
            )
            report, searcher = _timed_build(chosen, corpus, say)
            searchers[model] = searcher
            embed_seconds = report.stages.get("embed_and_store", report.seconds)
            row = {
                "model": model,
                "model_id": searcher.embedder.model_id,
                "dimension": searcher.embedder.dimension,
                "chunks": report.chunks,
                "build_seconds": round(report.seconds, 2),
                "build_chunks_per_s": round(report.chunks / report.seconds, 1),
                "embed_passages_per_s": round(report.embedded / embed_seconds, 1),
                **_latency(searcher, questions),
                "recall_at_5": _recalls(searcher, gold),
            }
            say(f"{model}: {row}")
            rows.append(row)
        both = list(searchers.values())
        fusion = {m: fused(both, m) for m in MODES}
        rows.append(
            {"model": "fusion", "recall_at_5": _recalls(both[0], gold, modes=(), extra=fusion)}
        )
    return {
        "corpus": [str(p) for p in corpus],
        "sets": {n: len(g) for n, g in gold.items()},
        "rows": rows,
    }


def format_table(result: dict[str, Any]) -> str:
    """A Markdown table: one row per model, recall as dense / hybrid per set."""
    sets = list(result["sets"])
    header = [
        "model",
        "build chunks/s",
        "embed passages/s",
        "query emb. p50 ms",
        "search p50/p95 ms",
    ]
    header += [f"R@5 {name} dense / hybrid" for name in sets]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in result["rows"]:
        cells = [row["model"]]
        if "build_chunks_per_s" in row:
            search = row["hybrid_search"]
            cells += [
                f"{row['build_chunks_per_s']}",
                f"{row['embed_passages_per_s']}",
                f"{row['query_embedding']['p50_ms']}",
                f"{search['p50_ms']} / {search['p95_ms']}",
            ]
        else:
            cells += [""] * 4
        recall = row["recall_at_5"]
        cells += [f"{recall[n]['dense']:.3f} / {recall[n]['hybrid']:.3f}" for n in sets]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
