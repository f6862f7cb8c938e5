"""Which candidate answer sentences keep to what the question fixes.

A sentence may be quoted only when it keeps to the question's years, places and named document
(rag.constraints) and, for a "how many/much" question, states a number in the asked unit beside
the indicator asked (rag.indicators). The rest are near misses, kept with the constraints they
break, for a refusal that says what the documents hold instead. The extractive answerer quotes
the kept sentences; the LLM answerer reads only passages that hold one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from planqa.corpus.documents import Document, DocumentMeta
from planqa.corpus.tables import header_of_row
from planqa.index.search import Hit, HybridSearcher
from planqa.rag.constraints import SentenceContext, failed_constraints, stated_years
from planqa.rag.indicators import indicator_words, initialisms, number_beside, unseen_words
from planqa.rag.question import QuestionAnalysis


@dataclass(frozen=True)
class ScoredSentence:
    score: float
    coverage: float
    hit_rank: int
    start: int
    end: int
    covered: frozenset[str]
    #: States a number in the unit the question asks for (几位 → 5名).
    typed: bool = False
    #: The answer model's probability that it answers the question (rag.judging); None unjudged.
    judged: float | None = None


class ConstraintKeeper:
    """Knows the corpus a check needs: its word frequencies and each document's years."""

    def __init__(self, searcher: HybridSearcher) -> None:
        self.searcher = searcher
        self._years_by_document: dict[str, frozenset[int]] = {}

    def indicator(self, question: QuestionAnalysis) -> tuple[str, ...]:
        """The words naming the question's indicator, with their initialisms (高企)."""
        words = indicator_words(
            question.keywords, self.searcher.contents.bm25.idf, question.answer_units
        )
        return words + initialisms(question.text, question.keywords, words)

    def split(
        self,
        question: QuestionAnalysis,
        hits: list[Hit],
        sentences: list[ScoredSentence],
        indicator: tuple[str, ...] = (),
    ) -> tuple[list[ScoredSentence], list[tuple[ScoredSentence, tuple[str, ...]]]]:
        """Split candidates into those that keep to the question's years, places and indicator
        and the near misses (with the constraints each breaks: region, year, indicator), both
        best first. The indicator check applies to "how many/much" questions: the number must
        stand in a clause with one of the ``indicator`` words (:meth:`indicator`; none given:
        no check — an LLM, which reads rewordings, judges the indicator itself)."""
        # A which-region question wants a region, not a figure, whatever number words it holds.
        asks_figure = question.asks_number and not (question.asks_region or question.asks_year)
        specific = indicator if asks_figure else ()
        constraints = question.constraints
        kept, near_misses = [], []
        idf = self.searcher.contents.bm25.idf
        unseen = unseen_words(question.keywords, idf) if specific else ()
        for sentence in sentences:
            if specific:
                chunk = hits[sentence.hit_rank].chunk
                text = chunk.text[sentence.start - chunk.start : sentence.end - chunk.start]
                if not number_beside(text, specific, question.answer_units, unseen):
                    near_misses.append((sentence, ("indicator",)))
                    continue
            if constraints.empty:
                kept.append(sentence)
                continue
            chunk = hits[sentence.hit_rank].chunk
            document = self.searcher.documents.get(chunk.doc)
            meta = document.meta if document else DocumentMeta(chunk.doc, chunk.region, chunk.title)
            context = SentenceContext.of(
                chunk, sentence.start, sentence.end, meta, self._document_years(document)
            )
            header = header_of_row(document.text, sentence.start) if document else None
            if header is not None:  # a table row's figures are for its header's years
                context = replace(context, paragraph_lead=header.line)
            failed = failed_constraints(constraints, context)
            if failed:
                near_misses.append((sentence, failed))
            else:
                kept.append(sentence)
        return kept, near_misses

    def _document_years(self, document: Document | None) -> frozenset[int] | None:
        """The years a document speaks of anywhere, computed once per document."""
        if document is None:
            return None
        if document.name not in self._years_by_document:
            self._years_by_document[document.name] = frozenset(stated_years(document.text))
        return self._years_by_document[document.name]
