"""Precedent search (ui.precedents): a term in exactly N passages gives exactly N results.

The test writes its own small corpus, so the counts are known: 「人才公寓」 is planted in three
passages of two regions, its parts 人才 and 公寓 apart in one more, and nowhere else.
"""

from __future__ import annotations

import json

import pytest

from planqa.corpus.settings import Settings
from planqa.index.search import HybridSearcher
from planqa.ui.precedents import (
    LEVEL_HIGH,
    LEVEL_LOW,
    LEVEL_MID,
    find_precedents,
    match_spans,
    query_terms,
    summary_table,
)
from planqa.ui.render_search import search_results_html, search_summary

DOCS = {
    "a.txt": (
        "甲市",
        "2021—2025",
        "甲市住房发展规划\n\n一、总体要求\n加快建设人才公寓，完善住房保障体系。\n\n"
        "二、重点任务\n（一）住房保障\n新建人才公寓两千套，优先保障青年人才。\n\n"
        "（二）产业配套\n建设集成电路产业园，配套检测平台。\n",
    ),
    "b.txt": (
        "乙县",
        "2016—2020",
        "乙县城镇发展规划\n\n一、总体要求\n推进新型城镇化，改善人居环境。\n\n"
        "二、重点任务\n（一）引才\n为引进人才提供公寓和生活补贴。\n\n"
        "（二）住房\n在县城东部规划建设人才公寓小区。\n",
    ),
    "c.txt": (
        "丙区",
        "2021—2025",
        "丙区生态环境保护规划\n\n一、总体要求\n持续改善生态环境质量。\n\n"
        "二、重点任务\n（一）治水\n开展河道综合整治，建设生态缓冲带。\n",
    ),
}


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory) -> HybridSearcher:
    from planqa.index.builder import build_index

    root = tmp_path_factory.mktemp("precedents")
    corpus = root / "corpus"
    corpus.mkdir()
    entries = []
    for name, (region, period, text) in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
        title = text.split("\n", 1)[0]
        entries.append(
            {"file": name, "region": region, "title": title, "kind": "专项规划", "period": period}
        )
    manifest = {"documents": entries}
    (corpus / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
    settings = Settings(embedding_model="hash", index_dir=root / "index", corpus_dir=corpus)
    build_index(settings, [corpus], progress=False)
    return HybridSearcher.open(settings)


def passages_with(searcher: HybridSearcher, text: str) -> int:
    return sum(text in chunk.text for chunk in searcher.contents.chunks)


def test_a_term_in_n_passages_gives_n_results(searcher: HybridSearcher) -> None:
    assert passages_with(searcher, "人才公寓") == 3  # the corpus is what the test says
    result = find_precedents(searcher, "人才公寓", limit=50)
    assert [p.level for p in result.matches] == [LEVEL_HIGH] * 3
    assert all("人才公寓" in p.hit.chunk.text for p in result.matches)
    assert result.related == ()
    assert search_summary(result).startswith("共 3 条段落，来自 2 个地区、2 份文件")


def test_terms_apart_are_a_weaker_match(searcher: HybridSearcher) -> None:
    apart = find_precedents(searcher, "人才 公寓")  # two keywords: both, anywhere
    assert len(apart.matches) == 4 and {p.level for p in apart.matches} == {LEVEL_HIGH}
    # A sentence matches on its terms (中): 新建…人才公寓 is found by a reworded question.
    sentence = find_precedents(searcher, "哪些地区新建了人才公寓两千套")
    assert [p.level for p in sentence.matches] == [LEVEL_MID]
    assert "新建人才公寓两千套" in sentence.matches[0].hit.chunk.text


def test_related_passages_only_when_asked(searcher: HybridSearcher) -> None:
    with_related = find_precedents(searcher, "人才公寓", include_related=True, limit=50)
    assert len(with_related.matches) == 3
    assert with_related.related and all(p.level == LEVEL_LOW for p in with_related.related)
    assert not {p.hit.chunk.id for p in with_related.related} & {
        p.hit.chunk.id for p in with_related.matches
    }
    assert "另列出" in search_summary(with_related)
    # The true count stays 3 whatever the display limit.
    capped = find_precedents(searcher, "人才公寓", limit=1)
    assert len(capped.matches) == 3 and len(capped.shown) == 1
    assert "已显示前 1 条" in search_summary(capped)


def test_filters_chapter_and_named_region_scope(searcher: HybridSearcher) -> None:
    assert len(find_precedents(searcher, "人才公寓", region="乙县").matches) == 1
    assert len(find_precedents(searcher, "人才公寓", doc="a.txt").matches) == 2
    assert len(find_precedents(searcher, "人才公寓", chapter="住房").matches) == 2
    named = find_precedents(searcher, "甲市 人才公寓")
    assert named.scope_regions == ("甲市",) and len(named.matches) == 2
    assert find_precedents(searcher, "量子计算").matches == ()


def test_sorting_by_region_and_period(searcher: HybridSearcher) -> None:
    by_region = find_precedents(searcher, "人才公寓", sort="region")
    regions = [p.hit.chunk.region for p in by_region.matches]
    assert regions == sorted(regions)
    by_period = find_precedents(searcher, "人才公寓", sort="period")
    periods = [p.meta.period for p in by_period.matches]
    assert periods == sorted(periods, reverse=True)


def test_count_table_and_highlights(searcher: HybridSearcher) -> None:
    result = find_precedents(searcher, "人才公寓")
    table = summary_table(result)
    assert sorted((region, count) for region, _, _, _, count in table) == [("乙县", 1), ("甲市", 2)]
    markup = search_results_html(result)
    assert markup.count('<mark class="pq-term">人才公寓</mark>') == 3
    assert "相关度：高" in markup and 'title="包含完整检索词' in markup
    assert markup.count("<tr>") == 1 + len(table) and 'href="#pq-doc-' in markup


def test_query_terms_keep_the_longest_tokens(searcher: HybridSearcher) -> None:
    assert query_terms("集成电路", searcher.tokenizer) == ["集成电路"]
    assert "哪些" not in query_terms("哪些地区建设集成电路产业园", searcher.tokenizer)


def test_match_spans_map_normalised_matches_back() -> None:
    text = "建设 人才\u3000公寓，人才公寓"
    spans = match_spans(text, ["人才公寓"])
    assert [text[s:e].replace(" ", "").replace("\u3000", "") for s, e in spans] == ["人才公寓"] * 2
    assert match_spans("ＡＢＣ集团", ["abc"]) == [(0, 3)]  # full width and case folded
    assert match_spans("人才公寓公寓", ["人才公寓", "公寓"]) == [(0, 6)]  # overlaps merged
    assert match_spans("<b>人才</b>", ["人才"]) == [(3, 5)]
