"""The SQLite copy of jieba's dictionary cuts text exactly like the in-memory one."""

from __future__ import annotations

import json
from pathlib import Path

from planqa.corpus.loader import load_corpus
from planqa.corpus.settings import BUNDLED_CORPUS_DIR
from planqa.index.jieba_dictionary import SqliteFrequencies, dictionary_path, query_dictionary
from planqa.index.text_tokenizer import ChineseTokenizer

DEV_SET = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev.jsonl"


DOCUMENTS = load_corpus([BUNDLED_CORPUS_DIR]).documents


def _region_words() -> list[str]:
    return [name for document in DOCUMENTS for name in document.meta.region_names]


def _sample_texts() -> list[str]:
    """The two shortest bundled documents line by line, and the dev questions if present."""
    shortest = sorted(DOCUMENTS, key=lambda d: len(d.text))[:2]
    lines = [line for document in shortest for line in document.text.splitlines()]
    if DEV_SET.is_file():
        lines += [json.loads(line)["question"] for line in DEV_SET.read_text().splitlines()]
    return [line for line in lines if line.strip()]


def test_sqlite_dictionary_cuts_like_the_in_memory_one(tmp_path: Path) -> None:
    words = _region_words()
    in_memory = ChineseTokenizer(words)
    from_sqlite = ChineseTokenizer.for_queries(words, tmp_path)
    assert isinstance(from_sqlite._jieba.FREQ.maps[1], SqliteFrequencies)
    texts = _sample_texts()
    assert sum(map(len, texts)) > 5000
    assert from_sqlite.tokenize_many(texts) == in_memory.tokenize_many(texts)
    # User words live in the tokenizer's own layer, never in the shared file.
    text = "国家集成电路测试产业园"
    assert "测试产业园" in ChineseTokenizer.for_queries(["测试产业园"], tmp_path).tokenize(text)
    assert "测试产业园" not in ChineseTokenizer.for_queries([], tmp_path).tokenize(text)


def test_damaged_dictionary_file_is_rewritten(tmp_path: Path) -> None:
    path = dictionary_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database" * 100)
    frequencies, total = query_dictionary(tmp_path)
    assert frequencies["集成电路"] > 0 and total > 0
    assert isinstance(SqliteFrequencies(path)["集成电路"], int)


def test_unwritable_cache_falls_back_to_memory(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "cache"
    not_a_directory.write_text("a file where the cache directory should be")
    tokenizer = ChineseTokenizer.for_queries(["港开"], not_a_directory)
    assert isinstance(tokenizer._jieba.FREQ, dict)
    assert "港开" in tokenizer.tokenize("港开加快转型升级")
