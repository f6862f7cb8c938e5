"""Traditional → simplified Chinese for everything planqa *matches*, never for what it *shows*.

Users paste questions in 繁体 (from Hong Kong or Taiwan sources, or an IME set that way) and some
documents are published in it; 海州區 must find 海州区 and the other way round. Queries are
converted before retrieval (``HybridSearcher.validate_query``) and indexed views are converted
before tokenising and embedding (``normalise_text``, ``index.builder.embedding_text``). Stored
document text and the question shown back to the user are never changed, so citation offsets
still index the original text.

The converter is OpenCC's t2s dictionaries through ``opencc-python-reimplemented`` (pure Python,
Apache-2.0, 1.3 MB, installs offline on any platform). Pure Python converts about 0.3 ms per 100
characters, too slow to run on every candidate passage of every query, so two things keep the
cost near zero for the usual simplified text:

* *triggers*: the characters whose own rule changes them (about 4,100) and the phrases whose
  rule changes them. Text containing neither is returned as it is after one set pass (~65 µs
  per 500 characters): OpenCC only replaces dictionary keys by their values, so it cannot change;
* an LRU cache of converted texts, because the same passages are re-ranked query after query.

Both the converter and the dictionaries are loaded on first use (~15 ms), not at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Protocol

#: The OpenCC configuration: generic traditional → mainland simplified, characters and phrases.
CONVERSION = "t2s"
#: Dictionaries of that configuration (characters, phrases); their changing rules are the triggers.
_DICTIONARIES = ("TSCharacters.txt", "TSPhrases.txt")
#: Converted texts kept; passages are re-ranked many times, questions are short.
_CACHE_SIZE = 4096


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


@cache
def _converter() -> _Converter:
    from opencc import OpenCC

    return OpenCC(CONVERSION)


@dataclass(frozen=True)
class _Triggers:
    """What must occur in a text for t2s to change it.

    ``characters``: characters whose own rule changes them (劃 → 划). ``phrases``: for a phrase
    rule that changes something (反覆 → 反复), the whole phrase, filed under the characters it
    changes; 覆 alone is common simplified text (覆盖), so it only counts inside 反覆.
    """

    characters: frozenset[str]
    phrases: dict[str, tuple[str, ...]]
    #: Both kinds of trigger character, so that one pass over the text finds all candidates.
    any_trigger: frozenset[str]

    def may_change(self, text: str) -> bool:
        found = self.any_trigger.intersection(text)
        if not found:
            return False
        if not self.characters.isdisjoint(found):
            return True
        return any(phrase in text for char in found for phrase in self.phrases.get(char, ()))


def _changing_rules(name: str) -> list[tuple[str, str]] | None:
    """(key, first value) pairs of one dictionary whose value differs from the key."""
    import opencc

    path = Path(opencc.__file__).resolve().parent / "dictionary" / name
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    rules = []
    for line in lines:
        key, _, values = line.partition("\t")
        value = values.split(" ")[0].strip()  # the converter, too, takes the first value
        if key and value and key != value:
            rules.append((key, value))
    return rules


@cache
def triggers() -> _Triggers | None:
    """The trigger sets, or None (convert every text) if the dictionaries cannot be read."""
    characters, phrases = _changing_rules(_DICTIONARIES[0]), _changing_rules(_DICTIONARIES[1])
    if characters is None or phrases is None:
        return None
    by_char: dict[str, list[str]] = {}
    for key, value in phrases:
        changed = (
            {a for a, b in zip(key, value, strict=True) if a != b}
            if len(key) == len(value)
            else set(key)
        )
        for char in changed:
            by_char.setdefault(char, []).append(key)
    single = frozenset(key for key, _ in characters)
    return _Triggers(
        single, {char: tuple(keys) for char, keys in by_char.items()}, single | by_char.keys()
    )


@lru_cache(maxsize=_CACHE_SIZE)
def _convert(text: str) -> str:
    return _converter().convert(text)


def to_simplified(text: str) -> str:
    """``text`` with traditional characters and phrases in simplified form (same length for
    every rule in the bundled dictionaries); simplified text comes back unchanged.

    >>> to_simplified("海州區規劃建設積體電路測試產業園")
    '海州区规划建设积体电路测试产业园'
    """
    if not text:
        return text
    found = triggers()
    if found is not None and not found.may_change(text):
        return text
    return _convert(text)
