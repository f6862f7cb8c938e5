"""The gold loader rejects whole files with every bad line named; evidence quotes get offsets."""

from __future__ import annotations

import doctest
import json
import os
from pathlib import Path

import pytest

import planqa.eval.gold
from planqa.corpus.documents import Document, DocumentMeta
from planqa.corpus.errors import InputError
from planqa.corpus.loader import load_corpus
from planqa.eval.gold import (
    BUNDLED_DEV_GOLD,
    Evidence,
    GoldItem,
    check_evidence,
    find_quote,
    load_gold,
    locate_evidence,
    locate_pieces,
)

DEV_GOLD = Path(os.environ.get("PLANQA_DEV_GOLD", str(BUNDLED_DEV_GOLD)))


def record(**overrides) -> dict:
    base = {
        "id": "x1",
        "question": "南通开发区研发机构突破多少家？",
        "answers": ["230家"],
        "evidence": [{"doc": "a.txt", "quote": "研发机构突破230家"}],
        "type": "fact",
        "answerable": True,
    }
    base.update(overrides)
    return base


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def line(**overrides) -> str:
    return json.dumps(record(**overrides), ensure_ascii=False)


def document(name: str, text: str) -> Document:
    return Document(DocumentMeta(file=name, region="某区", title="某规划"), text)


def test_valid_file_loads_as_frozen_items(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "g.jsonl", [line(), "", line(id="x2", type="paraphrase")])
    items = load_gold(path)
    assert [i.id for i in items] == ["x1", "x2"]
    assert items[0].answers == ("230家",)
    assert items[0].evidence == (Evidence("a.txt", "研发机构突破230家"),)
    with pytest.raises(AttributeError):
        items[0].id = "changed"  # type: ignore[misc]


def test_every_bad_line_is_reported_at_once(tmp_path: Path) -> None:
    unanswerable = record(id="u1", type="unanswerable", answerable=False, answers=[], evidence=[])
    lines = [
        line(),  # 1 ok
        '{"id": "x2", "question": ',  # 2 bad JSON
        json.dumps({k: v for k, v in record(id="x3").items() if k != "answers"}),  # 3 missing
        line(id="x4", answers="230家"),  # 4 wrong type
        line(id="x5", type="opinion"),  # 5 unknown type
        line(id="x6", type="unanswerable", answerable=False, evidence=[]),  # 6 has answers
        line(),  # 7 duplicate id x1
        line(id="x8", type="compare"),  # 8 compare with one document
        json.dumps(unanswerable),  # 9 ok
        line(id="x10", answerable="yes"),  # 10 bool as string
        line(id="x11", evidence=[{"doc": "a.txt"}]),  # 11 evidence without quote
        "[1, 2]",  # 12 not an object
        line(id="x13", extra="?"),  # 13 unknown field
    ]
    path = write_lines(tmp_path / "g.jsonl", lines)
    with pytest.raises(InputError) as caught:
        load_gold(path)
    message = str(caught.value)
    for number in (2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13):
        assert f"line {number}:" in message, number
    for number in (1, 9):
        assert f"line {number}:" not in message
    assert "bad JSON" in message
    assert "missing field 'answers'" in message
    assert "field 'answers' must be a JSON array" in message
    assert "unknown type 'opinion'" in message
    assert "answerable is false but answers is not empty" in message
    assert "duplicate id 'x1' (first used on line 1)" in message
    assert "at least two documents" in message
    assert "evidence[0].quote" in message


def test_missing_and_empty_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_gold(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="no items"):
        load_gold(write_lines(tmp_path / "empty.jsonl", [""]))


def test_find_quote_exact_and_every_occurrence() -> None:
    text = "甲乙丙，甲乙丙"
    assert find_quote("甲乙丙", text) == ((0, 3), (4, 7))


def test_find_quote_tolerates_spacing_and_width() -> None:
    text = "力争到2025 年,高新技术企业增至 180 家。"
    ((start, end),) = find_quote("到2025年，高新技术企业增至180家", text)
    assert text[start:end] == "到2025 年,高新技术企业增至 180 家"


def test_locate_evidence_gives_offsets_into_the_document() -> None:
    docs = {"a.txt": document("a.txt", "前言。确保到2025年,研发机构突破230家。")}
    item = GoldItem("x1", "q", ("230家",), (Evidence("a.txt", "研发机构突破230家"),), "fact", True)
    spans = locate_evidence(item, docs)
    assert spans == [("a.txt", 12, 22)]
    assert docs["a.txt"].text[spans[0].start : spans[0].end] == "研发机构突破230家"


def test_unlocatable_quotes_are_problems_not_skips() -> None:
    docs = {"a.txt": document("a.txt", "确保到2025年,研发机构突破230家。")}
    bad_quote = GoldItem("x1", "q", ("1",), (Evidence("a.txt", "不存在的句子"),), "fact", True)
    bad_doc = GoldItem("x2", "q", ("1",), (Evidence("zz.txt", "研发机构"),), "fact", True)
    with pytest.raises(InputError, match="不存在的句子"):
        locate_pieces(bad_quote, docs)
    with pytest.raises(InputError) as caught:
        check_evidence([bad_quote, bad_doc], docs)
    assert "x1:" in str(caught.value) and "x2:" in str(caught.value)
    assert "'zz.txt'" in str(caught.value)


def test_docstring_examples() -> None:
    assert doctest.testmod(planqa.eval.gold).failed == 0


@pytest.mark.skipif(not DEV_GOLD.is_file(), reason=f"no dev gold set at {DEV_GOLD}")
def test_dev_set_loads_and_every_quote_is_in_the_bundled_corpus(corpus_dir: Path) -> None:
    items = load_gold(DEV_GOLD)
    assert len(items) == 40
    assert len({i.id for i in items}) == 40
    documents = {d.name: d for d in load_corpus([corpus_dir]).documents}
    check_evidence(items, documents)
    for item in items:
        for doc, start, end in locate_evidence(item, documents):
            assert end > start
            assert doc in {e.doc for e in item.evidence}


def test_probe_set_loads_and_every_quote_is_in_the_bundled_corpus(corpus_dir: Path) -> None:
    items = load_gold(BUNDLED_DEV_GOLD.with_name("probes.jsonl"))
    assert len({i.id for i in items}) == len(items) == 24
    check_evidence(items, {d.name: d for d in load_corpus([corpus_dir]).documents})


MORE_DOCS = Path(__file__).resolve().parents[2] / "shared" / "more-docs"


@pytest.mark.skipif(not MORE_DOCS.is_dir(), reason=f"no documents at {MORE_DOCS}")
@pytest.mark.parametrize("name", ["generality.jsonl", "rewordings.jsonl"])
def test_nine_document_set_quotes_are_in_the_nine_documents(corpus_dir: Path, name: str) -> None:
    items = load_gold(BUNDLED_DEV_GOLD.with_name(name))
    assert len({i.id for i in items}) == len(items) >= 30
    loaded = load_corpus([corpus_dir, *sorted(MORE_DOCS.glob("*.txt"))])
    check_evidence(items, {d.name: d for d in loaded.documents})
    kinds = {i.type for i in items}
    assert {"unanswerable", "list", "which_region"} <= kinds
