"""The numeric core: FAISS equals brute force, BM25 equals a reference formula, RRF, top-k."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planqa.index.bm25 import BM25Index
from planqa.index.ranking import reciprocal_rank_fusion, top_k_indices
from planqa.index.text_tokenizer import ChineseTokenizer, normalise_text
from planqa.index.vectors import VectorIndex


def test_faiss_equals_brute_force_numpy() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(500, 48)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex.build(vectors, 48)
    for query in vectors[:20] + rng.normal(scale=0.1, size=(20, 48)).astype(np.float32):
        expected = np.argsort(-(vectors @ query), kind="stable")[:10]
        got = [row for row, _ in index.search(query, 10)]
        assert got == expected.tolist()


def test_faiss_filter_returns_best_rows_inside_the_filter() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    index = VectorIndex.build(vectors, 16)
    allowed = np.arange(0, 200, 7)
    query = rng.normal(size=16).astype(np.float32)
    expected = allowed[np.argsort(-(vectors[allowed] @ query))][:5]
    assert [row for row, _ in index.search(query, 5, allowed)] == expected.tolist()
    assert index.search(query, 5, np.zeros(0, dtype=np.int64)) == []


def test_vectors_survive_save_and_load(tmp_path) -> None:
    vectors = np.eye(8, dtype=np.float32)
    VectorIndex.build(vectors, 8).save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss")
    assert np.array_equal(loaded.vectors(), vectors)


def reference_bm25(corpus: list[list[str]], query: list[str], k1: float = 1.2, b: float = 0.75):
    """Lucene (8+) BM25 by hand: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), no (k1 + 1) factor."""
    n = len(corpus)
    avgdl = sum(len(d) for d in corpus) / n
    scores = []
    for doc in corpus:
        score = 0.0
        for term in query:
            df = sum(term in d for d in corpus)
            if df == 0:
                continue
            tf = doc.count(term)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(score)
    return np.array(scores)


def test_bm25_agrees_with_reference_on_chinese_fixture() -> None:
    tokenizer = ChineseTokenizer(["港闸经济开发区", "港开"])
    texts = [
        "港开全年力争招引科创项目不少于40个",
        "设立国家集成电路测试产业园，聚力打造国家测谷",
        "海州区到2025年高标准农田面积比重达到80%",
        "集成电路产业链加快集聚，测试产业园建设提速",
    ]
    corpus = tokenizer.tokenize_many(texts)
    index = BM25Index.build(corpus)
    for question in ["集成电路测试产业园", "港开科创项目", "高标准农田"]:
        query = tokenizer.tokenize(question)
        np.testing.assert_allclose(index.scores(query), reference_bm25(corpus, query), rtol=1e-5)
    best = index.search(tokenizer.tokenize("集成电路测试产业园"), 2)
    assert {row for row, _ in best} == {1, 3}


def test_tokenizer_keeps_user_words_and_normalises_numbers() -> None:
    tokenizer = ChineseTokenizer(["港开"])
    assert "港开" in tokenizer.tokenize("港开加快转型升级")
    assert tokenizer.tokenize("653 亿元") == tokenizer.tokenize("653亿元")
    assert tokenizer.tokenize("ＧＤＰ增长１０％") == tokenizer.tokenize("gdp增长10%")
    assert tokenizer.tokenize("，。！？、") == []
    assert normalise_text("A\u00a0B") == "a b"


def test_tokenizers_do_not_share_user_dictionaries() -> None:
    ChineseTokenizer(["测试产业园"])
    plain = ChineseTokenizer()
    assert "测试产业园" not in plain.tokenize("国家集成电路测试产业园")


@pytest.mark.parametrize("k", [1, 3, 6])
def test_top_k_indices_matches_sorting(k: int) -> None:
    scores = np.array([0.3, 0.9, 0.1, 0.9, 0.5, 0.0])
    assert top_k_indices(scores, k).tolist() == [1, 3, 4, 0, 2, 5][:k]


def test_reciprocal_rank_fusion_worked_example() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert list(dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60))) == [
        "a",
        "c",
        "b",
    ]
