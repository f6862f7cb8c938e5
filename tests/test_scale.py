"""Scale machinery: incremental BM25, the exact/HNSW switch, filtered ANN, adding a document,
and the scale benchmark's own code path (on a tiny corpus, so it stays fast)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.scale import DEFAULT_SCALE_DIR, KernelDensity, news_documents
from bench.scale_bench import run_scale_bench, summary_rows
from planqa.corpus.settings import Settings
from planqa.index.bm25 import BM25Index
from planqa.index.builder import add_documents, build_index
from planqa.index.search import HybridSearcher
from planqa.index.store import IndexStore
from planqa.index.vectors import INDEX_KIND_FLAT, INDEX_KIND_HNSW, IndexParams, VectorIndex

SAMPLE = Path(__file__).parent / "data" / "scale_sample_e5.npy"


def test_bm25_merged_updates_score_like_a_fresh_build() -> None:
    rng = np.random.default_rng(0)
    vocab = [f"词{i}" for i in range(40)]
    corpus = [list(rng.choice(vocab, size=rng.integers(0, 15))) for _ in range(90)]
    keep = np.array([i for i in range(60) if i % 4])
    merged = BM25Index.build(corpus[:30]).appended(corpus[30:60]).kept(keep).appended(corpus[60:])
    fresh = BM25Index.build([corpus[i] for i in keep] + corpus[60:])
    for query in (["词1", "词2", "词2"], ["词39", "没有"], []):
        np.testing.assert_allclose(merged.scores(query), fresh.scores(query), rtol=1e-5)
    assert merged.idf("词3") == pytest.approx(fresh.idf("词3"))


def test_bm25_loads_memory_mapped(tmp_path: Path) -> None:
    index = BM25Index.build([["南通", "集成电路"], ["海州区"], []])
    index.save(tmp_path)
    loaded = BM25Index.load(tmp_path, size=3, mmap=True)
    assert isinstance(loaded.rows, np.memmap)
    np.testing.assert_allclose(loaded.scores(["南通"]), index.scores(["南通"]))


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("exact_filter_rows", [0, 10_000], ids=["graph-walk", "exact-rows"])
def test_hnsw_filters_return_the_best_allowed_rows(exact_filter_rows: int) -> None:
    vectors = unit_rows(3000, 24, 1)
    params = IndexParams(INDEX_KIND_HNSW, 16, 100, 200, exact_filter_rows)
    index = VectorIndex.build(vectors, 24, params)
    allowed = np.arange(5, 3000, 9)
    hits = 0
    for query in vectors[:30]:
        expected = allowed[np.argsort(-(vectors[allowed] @ query))][:10]
        got = [row for row, _ in index.search(query, 10, allowed)]
        assert set(got) <= set(allowed.tolist())
        hits += len(set(got) & set(expected.tolist()))
    assert hits / 300 >= 0.95
    np.testing.assert_array_equal(index.vectors(), vectors)


@pytest.mark.parametrize("kind", [INDEX_KIND_FLAT, INDEX_KIND_HNSW])
def test_memory_mapped_faiss_searches_like_the_loaded_one(tmp_path: Path, kind: str) -> None:
    vectors = unit_rows(500, 16, 2)
    index = VectorIndex.build(vectors, 16, IndexParams(kind, 8, 40, 64))
    index.save(tmp_path / "v.faiss")
    mapped = VectorIndex.load(tmp_path / "v.faiss", index.params, mmap=True)
    assert mapped.kind == kind
    for query in vectors[:5]:
        assert mapped.search(query, 5) == index.search(query, 5)
        assert mapped.search(query, 5, np.arange(0, 500, 3)) == index.search(
            query, 5, np.arange(0, 500, 3)
        )


@pytest.mark.slow
def test_hnsw_recall_against_exact_on_scale_set_vectors() -> None:
    """Recall@10 of the default HNSW parameters on 40K vectors shaped like real e5 embeddings of
    the news corpus (kernel density around a committed sample of real ones), with and without
    a filter; the issue's bar is 0.95."""
    settings = Settings()
    density = KernelDensity(np.load(SAMPLE, allow_pickle=False).astype(np.float32))
    base = density.vectors(40_000, seed=1)
    queries = density.vectors(100, seed=7)
    params = IndexParams(
        INDEX_KIND_HNSW,
        settings.hnsw_m,
        settings.hnsw_ef_construction,
        settings.hnsw_ef_search,
        exact_filter_rows=1_000,  # so the 8% filter below walks the graph
    )
    index = VectorIndex.build(base, base.shape[1], params)
    rng = np.random.default_rng(0)
    for allowed in (None, np.flatnonzero(rng.random(len(base)) < 0.08)):
        rows = np.arange(len(base)) if allowed is None else allowed
        recalls = []
        for query in queries:
            truth = rows[np.argsort(-(base[rows] @ query))[:10]]
            found = [r for r, _ in index.search(query, 10, allowed)]
            recalls.append(len(set(found) & set(truth.tolist())) / 10)
        assert np.mean(recalls) >= 0.95, (allowed is None, np.mean(recalls))


def test_index_kind_follows_size_and_is_recorded(tmp_path: Path, corpus_dir: Path) -> None:
    small = Settings(embedding_model="hash", index_dir=tmp_path / "a", ann_min_vectors=100_000)
    build_index(small, [corpus_dir], progress=False)
    assert IndexStore(small.resolved_index_dir).read_manifest()["vector_index"] == {
        "backend": "faiss",
        "kind": INDEX_KIND_FLAT,
        "metric": "inner_product",
        "normalized": True,
    }
    big = Settings(embedding_model="hash", index_dir=tmp_path / "b", ann_min_vectors=50)
    build_index(big, [corpus_dir], progress=False)
    recorded = IndexStore(big.resolved_index_dir).read_manifest()["vector_index"]
    assert recorded["kind"] == INDEX_KIND_HNSW
    assert (recorded["hnsw_m"], recorded["ef_search"]) == (big.hnsw_m, big.hnsw_ef_search)
    searcher = HybridSearcher.open(big)
    assert searcher.contents.vectors.index.kind == INDEX_KIND_HNSW
    assert searcher.search("集成电路", 5, region="海州区")


def test_adding_a_document_equals_indexing_the_whole_folder(
    tmp_path: Path, corpus_dir: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for path in sorted(corpus_dir.glob("00[0-3]*.txt")):
        shutil.copy(path, docs / path.name)
    shutil.copy(corpus_dir / "manifest.json", docs / "manifest.json")
    incremental = Settings(embedding_model="hash", index_dir=tmp_path / "inc")
    build_index(incremental, [docs], progress=False)
    before = len(IndexStore(incremental.resolved_index_dir).load().chunks)
    shutil.copy(corpus_dir / "004_99a6b245d6293f07.txt", docs)
    report = add_documents(incremental, [docs / "004_99a6b245d6293f07.txt"], progress=False)
    assert report.added == ["004_99a6b245d6293f07.txt"] and report.removed == []
    assert report.embedded == report.chunks - before

    full = Settings(embedding_model="hash", index_dir=tmp_path / "full")
    build_index(full, [docs], progress=False)
    a, b = HybridSearcher.open(incremental), HybridSearcher.open(full)
    # Same chunks, same metadata: the added document got its region from the folder manifest.
    assert {c.id: c for c in a.contents.chunks} == {c.id: c for c in b.contents.chunks}
    for question in ("南通市海门区的发展目标", "集成电路 产业园", "海州区"):
        assert [h.chunk.id for h in a.search(question, 8)] == [
            h.chunk.id for h in b.search(question, 8)
        ]
    # Adding it again changes nothing; replacing it re-embeds only its own chunks.
    again = add_documents(incremental, [docs / "004_99a6b245d6293f07.txt"], progress=False)
    assert again.up_to_date


def write_tiny_scale_dir(directory: Path) -> Path:
    directory.mkdir()
    lines = [
        f"[ 2023-07-{day:02d} 10：00 ] ，正文：第{day}条新闻。南通市今天发布了集成电路产业的消息。"
        + "本地企业扩大投资，新建生产线，带动就业增长。" * 8
        for day in range(1, 29)
    ]
    (directory / "news_part_1.txt").write_text("\n".join(lines), encoding="utf-8")
    return directory


def test_scale_bench_runs_end_to_end_on_a_tiny_corpus(tmp_path: Path) -> None:
    scale_dir = write_tiny_scale_dir(tmp_path / "scale")
    settings = Settings(embedding_model="hash", cache_dir=tmp_path / "cache")
    result = run_scale_bench(
        settings,
        ["南通市集成电路产业", "就业增长"],
        sizes=[400, 3000],
        scale_dir=scale_dir,
        sample_size=20,
        repeats=1,
        vector_only_above=1000,
    )
    text, vectors = result["sizes"]
    assert text["chunks"] >= 400 and text["add_one_document"]["chunks_embedded"] >= 1
    assert text["hybrid_search"]["p50_ms"] > 0 and text["ask"]["p95_ms"] > 0
    # Exact below the threshold (float ties between near-duplicates aside).
    assert vectors["vector_only"]["search"]["recall_at_10"] >= 0.99
    fast = text["fast_first"]  # built with the real fast model, upgraded (synthetic vectors)
    assert fast["upgraded"] and fast["chunks"] >= 400 and fast["time_to_first_answer_s"] > 0
    assert set(fast["fast_recall_at_5"]) == {"dense", "hybrid"}
    json.dumps(result, ensure_ascii=False)  # the --json output
    header, rows = summary_rows(result)
    assert any(row[0].startswith("fast first: time to first answer") for row in rows)
    assert len(header) == 3 and all(len(row) == 3 for row in rows)
    # The sample is cached as .npy (never pickle) and reused.
    assert list((tmp_path / "cache" / "bench").glob("sample-*.npy"))


@pytest.mark.skipif(not DEFAULT_SCALE_DIR.is_dir(), reason="shared/scale not beside the repo")
def test_the_shared_scale_corpus_reads_as_articles() -> None:
    documents = news_documents(DEFAULT_SCALE_DIR)
    assert len(documents) > 20_000
    assert len({d.name for d in documents}) == len(documents)
    assert all(d.text for d in documents[:100])


def test_hnsw_deletes_leave_tombstones_that_no_search_returns(tmp_path: Path) -> None:
    from planqa.index.vectorstore import FaissVectorStore, VectorRecord

    vectors = unit_rows(600, 16, 4)
    records = [VectorRecord(f"c{i}", f"d{i % 20}", f"r{i % 3}") for i in range(600)]
    store = FaissVectorStore.empty(16, IndexParams(INDEX_KIND_HNSW, 16, 100, 300, 0))
    store.add(records, vectors)
    store.delete(["c0", "c1", "c2", "c40"])  # d0 and d1 lose rows; d2 too
    assert store.tombstones == 4 and store.size == 596
    live = [i for i in range(600) if i not in {0, 1, 2, 40}]
    for query in vectors[:6]:
        truth = [f"c{live[j]}" for j in np.argsort(-(vectors[live] @ query))[:10]]
        got = [i for i, _ in store.search(query, 10)]
        assert got == truth
        assert [i for i, _ in store.search(query, 5, docs={"d0"})][:1] != ["c0"]
    # Rows stay the live positions in order, across save and load, tombstones included.
    store.save(tmp_path)
    again = FaissVectorStore.load(tmp_path, store.index.params)
    assert again.tombstones == 4 and again.ids() == [f"c{i}" for i in live]
    assert again.search_rows(vectors[3], 1, None) == [(live.index(3), pytest.approx(1.0))]
    # Past the tombstone share the graph is rebuilt without them.
    store.delete([f"c{i}" for i in range(100, 200)])
    assert store.tombstones == 0 and store.size == 496


def test_changing_a_document_in_an_hnsw_index_matches_a_fresh_build(
    tmp_path: Path, corpus_dir: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(corpus_dir / "000_7b8cb340e9bca2f6.txt", docs)
    shutil.copy(corpus_dir / "001_609138391ce5f9ab.txt", docs)
    note = docs / "note.txt"
    note.write_text("南通市海门区通知\n\n海门区将建设集成电路测试中心。", encoding="utf-8")
    settings = Settings(embedding_model="hash", index_dir=tmp_path / "inc", ann_min_vectors=10)
    build_index(settings, [docs], progress=False)
    note.write_text("南通市海门区通知\n\n海门区将建设生物医药产业园。", encoding="utf-8")
    report = build_index(settings, [docs], progress=False)
    assert report.changed == ["note.txt"] and report.embedded == 1
    searcher = HybridSearcher.open(settings)
    assert searcher.contents.vectors.tombstones == 1  # the old chunk, skipped not rebuilt
    fresh = Settings(embedding_model="hash", index_dir=tmp_path / "fresh", ann_min_vectors=10)
    build_index(fresh, [docs], progress=False)
    other = HybridSearcher.open(fresh)
    for question in ("生物医药产业园", "集成电路测试中心", "海州区 发展目标"):
        for mode in ("dense", "hybrid"):
            assert [h.chunk.id for h in searcher.search(question, 5, mode=mode)] == [
                h.chunk.id for h in other.search(question, 5, mode=mode)
            ]


def test_embedder_bench_compares_a_model_with_fast_and_their_fusion(tmp_path: Path) -> None:
    from bench.embedder_bench import format_table, run_embedder_bench

    settings = Settings(embedding_model="hash", cache_dir=tmp_path / "cache")
    result = run_embedder_bench(settings, more_docs=None, say=lambda _m: None)
    assert [row["model"] for row in result["rows"]] == ["hash", "fast", "fusion"]
    assert set(result["sets"]) == {"dev", "probes"}
    for row in result["rows"]:
        for recall in row["recall_at_5"].values():
            assert set(recall) == {"dense", "hybrid"} and all(0 <= v <= 1 for v in recall.values())
    assert result["rows"][1]["embed_passages_per_s"] > 0
    assert format_table(result).count("\n") == 4  # header, rule, three rows
