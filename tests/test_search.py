"""Search behaviour through the public API: modes, filters, input validation, JSON shape."""

from __future__ import annotations

import pytest

from planqa.corpus.errors import InputError
from planqa.index.search import HybridSearcher

JSON_KEYS = {"doc", "region", "title", "chapter", "start", "end", "text", "score"}


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_every_mode_returns_ranked_exact_passages(hash_searcher: HybridSearcher, mode: str) -> None:
    hits = hash_searcher.search("集成电路测试产业园", 5, mode=mode)
    assert 0 < len(hits) <= 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        text = hash_searcher.documents[hit.chunk.doc].text
        assert text[hit.chunk.start : hit.chunk.end] == hit.chunk.text
        assert set(hit.to_dict()) >= JSON_KEYS


def test_bm25_finds_the_exact_phrase(hash_searcher: HybridSearcher) -> None:
    hits = hash_searcher.search("国家集成电路测试产业园", 3, mode="bm25")
    assert any("国家集成电路测试产业园" in hit.chunk.text for hit in hits)
    assert all("集成电路" in hit.chunk.text for hit in hits)


@pytest.mark.parametrize("region", ["港开", "港闸经济开发区", "港闸"])
def test_region_filter_accepts_names_and_aliases(
    hash_searcher: HybridSearcher, region: str
) -> None:
    hits = hash_searcher.search("科创项目", 5, region=region)
    assert hits and {h.chunk.doc for h in hits} == {"003_7f17e41e8ac2efc3.txt"}


def test_document_filter(hash_searcher: HybridSearcher) -> None:
    hits = hash_searcher.search("发展目标", 4, doc="001_609138391ce5f9ab.txt", mode="dense")
    assert hits and all(h.chunk.doc == "001_609138391ce5f9ab.txt" for h in hits)


def test_an_analysed_query_searches_like_its_text(hash_searcher: HybridSearcher) -> None:
    """Search reads a SearchQuery's text and regions as they are: same hits as plain text."""
    question = "到2025年，南通開發區和海州区谁计划拥有的高新技术企业更多？"
    query = hash_searcher.analyse_query(question)
    assert query.text == question.replace("開發區", "开发区")
    assert query.regions == ("南通市经济技术开发区", "连云港市海州区")
    for mode in ("hybrid", "bm25"):
        expected = [h.chunk.id for h in hash_searcher.search(question, 8, mode=mode)]
        assert [h.chunk.id for h in hash_searcher.search(query, 8, mode=mode)] == expected


def test_a_k_over_the_chunk_count_returns_every_chunk(hash_searcher: HybridSearcher) -> None:
    hits = hash_searcher.search("规划", 10**6, mode="dense")
    assert len(hits) == len(hash_searcher.contents.chunks)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": ""}, "empty"),
        ({"query": "   \n"}, "empty"),
        ({"query": "，。！？"}, "no words"),
        ({"query": "规划" * 2000}, "over the limit"),
        ({"query": "规划", "k": 0}, "at least 1"),
        ({"query": "规划", "k": -3}, "at least 1"),
        ({"query": "规划", "region": "火星"}, "unknown region.*南通市经济技术开发区"),
        ({"query": "规划", "doc": "nope.txt"}, "unknown document"),
        ({"query": "规划", "mode": "magic"}, "unknown mode"),
    ],
)
def test_bad_input_is_a_clear_error(
    hash_searcher: HybridSearcher, kwargs: dict, message: str
) -> None:
    query = kwargs.pop("query")
    with pytest.raises(InputError, match=message):
        hash_searcher.search(query, kwargs.pop("k", 5), **kwargs)


@pytest.mark.parametrize(
    ("query", "term"),
    [
        ("<script>alert(1)</script> 产业园", "产业园"),
        ("'; DROP TABLE chunks; --", None),
        ("../../etc/passwd", None),
        ("😀 开发区 GDP", "开发区"),
    ],
)
def test_hostile_or_odd_queries_are_just_text(
    hash_searcher: HybridSearcher, query: str, term: str | None
) -> None:
    """Markup, SQL and paths are searched for like any words: ranked verbatim passages come
    back, the words the query does share with the corpus still find it, and nothing is
    executed or opened (the index holds the same chunks afterwards, no file's text appears)."""
    chunks_before = len(hash_searcher.contents.chunks)
    for mode in ("hybrid", "bm25"):
        hits = hash_searcher.search(query, 3, mode=mode)
        assert len(hits) <= 3
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        for hit in hits:
            text = hash_searcher.documents[hit.chunk.doc].text
            assert text[hit.chunk.start : hit.chunk.end] == hit.chunk.text
            assert "root:" not in hit.chunk.text and "<script>" not in hit.chunk.text
        if term is not None and mode == "bm25":
            assert hits and any(term in hit.chunk.text for hit in hits)
    assert len(hash_searcher.contents.chunks) == chunks_before
