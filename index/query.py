"""A query as search reads it, and the one place that finds region names in text.

A question used to be checked and scanned for regions twice: once by the question analysis in
``rag`` and again inside :meth:`HybridSearcher.search`. Now :class:`QueryAnalyzer` does it once
and hands search a :class:`SearchQuery`; ``rag`` builds its richer analysis on top of that, and
callers with plain text (the CLI's ``planqa search``, the web UI, evaluation) still pass a string
and search analyses it itself. It lives in ``index`` because search consumes it and ``index``
must not import ``rag``.

:class:`RegionNames` is every rule about where region names appear: full names and aliases from
the documents' metadata, longest name first, and a national document's 「全国」, which is that
document's scope rather than a place a question names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from planqa.corpus.documents import DocumentMeta
from planqa.corpus.errors import InputError
from planqa.corpus.text_edges import valid_text
from planqa.index.text_tokenizer import ChineseTokenizer, normalise_text, strip_invisible
from planqa.index.traditional import to_simplified


@dataclass(frozen=True)
class SearchQuery:
    """What search matches: the validated, simplified ``text`` and the ``regions`` it names.

    Build one with :meth:`QueryAnalyzer.analyse` (or ``HybridSearcher.analyse_query``): search
    trusts both fields and does not check the text again.
    """

    text: str
    #: Canonical region names mentioned in ``text``, in order of first mention.
    regions: tuple[str, ...] = ()


class RegionNames:
    """The region names and aliases of an index's documents, and where they occur in text.

    Only names from the metadata count, so an ordinary word is never mistaken for a region.
    """

    def __init__(self, documents: Mapping[str, DocumentMeta]) -> None:
        self._documents = dict(documents)
        # A national document's 「全国」 is its scope, not a place a question names: 「全国第一条…」
        # and 「全国唯一…的省」 ask about a province, and must not be steered to that document.
        self._mentionable = sorted(
            {
                (normalise_text(name), meta.region)
                for meta in self._documents.values()
                if meta.scope != "national"
                for name in meta.region_names
            },
            key=lambda pair: (-len(pair[0]), pair),
        )
        # Every name, national ones included, is cut from a question's content words.
        self._all_names = sorted(
            {
                normalise_text(name)
                for meta in self._documents.values()
                for name in meta.region_names
            },
            key=lambda name: (-len(name), name),
        )

    def regions(self) -> list[str]:
        """The canonical region names, sorted."""
        return sorted({meta.region for meta in self._documents.values()})

    def mentioned(self, text: str) -> list[str]:
        """Regions named in ``text`` by full name or alias, in order of first mention.

        Longer names win over names inside them (南通市经济技术开发区 over 南通市).
        """
        normalised = normalise_text(text)
        taken = [False] * len(normalised)
        found: list[tuple[int, str]] = []
        for name, region in self._mentionable:
            start = normalised.find(name)
            while start >= 0:
                if not any(taken[start : start + len(name)]):
                    taken[start : start + len(name)] = [True] * len(name)
                    found.append((start, region))
                start = normalised.find(name, start + 1)
        return list(dict.fromkeys(region for _, region in sorted(found)))

    def without_names(self, text: str) -> str:
        """``text`` normalised, with every region name and alias (longest first) replaced by a
        space, so that the pieces of a name (南通, 开发) do not count as content words."""
        normalised = normalise_text(text)
        for name in self._all_names:
            normalised = normalised.replace(name, " ")
        return normalised

    def documents_for(self, region: str) -> list[str]:
        """Documents whose region is ``region`` or has it as an alias (exact, else substring);
        InputError listing the regions when none matches, since a filter that matches nothing
        is a typo, not an empty result."""
        wanted = region.strip()
        exact = [n for n, m in self._documents.items() if wanted in m.region_names]
        if exact:
            return exact
        partial = [
            n
            for n, m in self._documents.items()
            if any(wanted in name or name in wanted for name in m.region_names)
        ]
        if not partial:
            raise InputError(
                f"unknown region {region!r}; regions in the index: {', '.join(self.regions())}"
            )
        return partial


class QueryAnalyzer:
    """Checks a query once and finds its regions, with the index's own tokenizer and names."""

    def __init__(
        self, tokenizer: ChineseTokenizer, region_names: RegionNames, max_chars: int
    ) -> None:
        self.tokenizer = tokenizer
        self.region_names = region_names
        self.max_chars = max_chars

    def validate(self, query: str) -> str:
        """The query as matched: checked (InputError with the fix), cleaned, simplified."""
        if not isinstance(query, str):
            raise InputError(f"the query must be text, not {type(query).__name__}")
        text = valid_text(query).strip()  # lone surrogates would fail the tokenizers
        if len(text) <= self.max_chars:
            text = strip_invisible(text).strip()
        if not text:
            raise InputError("the query is empty; type a question or keywords")
        if len(text) > self.max_chars:
            raise InputError(
                f"the query has {len(text)} characters, over the limit of "
                f"{self.max_chars}; shorten it or set PLANQA_MAX_QUERY_CHARS"
            )
        if not self.tokenizer.tokenize(text) and not any(ch.isalnum() for ch in text):
            raise InputError(f"the query {text!r} has no words to search for")
        # 繁体 questions search the simplified index (see index.traditional); callers show the
        # user's own wording, this is only what is matched.
        return to_simplified(text)

    def analyse(self, query: str) -> SearchQuery:
        """The query validated and its named regions found: all that search needs of it."""
        text = self.validate(query)
        return SearchQuery(text, tuple(self.region_names.mentioned(text)))
