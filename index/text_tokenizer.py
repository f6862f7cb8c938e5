"""Chinese tokenisation for BM25: jieba's search-mode cut over normalised text.

Search mode emits both a long word and its parts (集成电路 -> 集成, 电路, 集成电路), which
lets a short query word match inside a long compound. Region names and aliases from the manifest
go into a private user dictionary so that 港开 or 海州区 stay whole. No stopword list: BM25's IDF
already discounts 的/和, and an English list would drop nothing useful here. Text is normalised
first (``normalise_text``: full-width forms, case, 繁体 → 简体), so 海州區 and 海州区 are one token.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import ChainMap
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

import jieba

from planqa.index.jieba_dictionary import base_dictionary, query_dictionary
from planqa.index.traditional import to_simplified

#: Tokens made only of punctuation, symbols or spaces carry no meaning for ranking.
_NOISE = re.compile(r"^[\W_]+$")
#: Spaces between a number and its unit or between Han characters are layout, not content:
#: "653 亿元" and "653亿元" must tokenise the same.
_INNER_SPACE = re.compile(r"(?<=[\u4e00-\u9fff\d%.])\s+(?=[\u4e00-\u9fff\d%])")
#: Replacement by Unicode category: control characters, format characters, lone surrogates.
_INVISIBLE = {"Cc": " ", "Cf": "", "Cs": ""}
#: High enough that jieba keeps user words whole against its built-in dictionary.
_USER_WORD_FREQ = 100_000

#: Names the normalisation too (t2s: traditional folded to simplified), so BM25 data built
#: with other tokens is never reused (index.builder compares signatures).
TOKENIZER_NAME = "jieba-search-t2s"
#: Longer texts (whole documents) are normalised without caching them.
_CACHED_MAX_CHARS = 4096


def strip_invisible(text: str) -> str:
    """Control characters become spaces; format characters (zero-width, bidi overrides) and lone
    surrogates are dropped.

    They reach queries from copy-paste and JSON clients; none of them is searchable, an ANSI
    colour code or a zero-width space would split a word in two, and a lone surrogate cannot
    even be encoded as UTF-8 for the model's tokenizer.
    """
    if text.isprintable():
        return text
    return "".join(_INVISIBLE.get(unicodedata.category(ch), ch) for ch in text)


def normalise_text(text: str) -> str:
    """NFKC (full-width to half-width, NBSP to space), lower case, traditional characters in
    simplified form (海州區 matches 海州区), layout spaces removed.

    Short texts (queries, passages, sentences) are cached: phrase ranking and extraction
    normalise the same candidate passages for every query.
    """
    if len(text) <= _CACHED_MAX_CHARS:
        return _normalise_cached(text)
    return _normalise(text)


def _normalise(text: str) -> str:
    text = to_simplified(unicodedata.normalize("NFKC", text).lower())
    return _INNER_SPACE.sub("", text)


@lru_cache(maxsize=8192)
def _normalise_cached(text: str) -> str:
    return _normalise(text)


class ChineseTokenizer:
    """A jieba tokenizer with its own dictionary state, so two indexes never share user words.

    ``frequencies`` is jieba's main dictionary; by default the in-memory one (fast lookups for
    building an index), ``for_queries`` reads it from SQLite instead (fast to open).
    """

    def __init__(
        self,
        user_words: Iterable[str] = (),
        frequencies: tuple[Mapping[str, int], int] | None = None,
    ) -> None:
        self.user_words = tuple(sorted({normalise_text(w) for w in user_words if w.strip()}))
        base, total = frequencies or base_dictionary()
        self._jieba = jieba.Tokenizer()
        # User words go into a private copy (in memory) or a layer over the shared SQLite file.
        self._jieba.FREQ = dict(base) if isinstance(base, dict) else ChainMap({}, base)
        self._jieba.total = total
        self._jieba.initialized = True
        for word in self.user_words:
            self._jieba.add_word(word, freq=_USER_WORD_FREQ)
        # add_word also raises the frequency total, which shifts every route score a little; kept
        # fixed, a user word changes only the segmentation of text that contains it, so adding
        # a region re-tokenises just the chunks naming it (index.builder), not all 100K.
        self._jieba.total = total

    @classmethod
    def for_queries(cls, user_words: Iterable[str], cache_dir: Path) -> ChineseTokenizer:
        """Opens in milliseconds instead of ~2.4 s; meant for cutting questions, not corpora."""
        return cls(user_words, query_dictionary(cache_dir))

    @property
    def signature(self) -> str:
        """Identifies the vocabulary-shaping state; stored in the index manifest."""
        digest = hashlib.sha256("\n".join(self.user_words).encode("utf-8")).hexdigest()[:16]
        return f"{TOKENIZER_NAME}/jieba-{jieba.__version__}/user-{digest}"

    def tokenize(self, text: str) -> list[str]:
        normalised = normalise_text(text)
        return [
            token
            for token in (t.strip() for t in self._jieba.cut_for_search(normalised))
            if token and not _NOISE.match(token)
        ]

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.tokenize(text) for text in texts]
