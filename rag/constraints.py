"""The hard constraints of a question — the years and the place it asks about — and whether a
candidate answer sentence keeps to them.

Retrieval ranks by similarity, and in planning prose the sentence most similar to a question
about 2030 is often the one about 2025, and to a question about 浙江省 广东省's. Such a near
miss, quoted as the answer, is the worst thing planqa can say: a confident answer about the wrong
year or region. So a sentence is checked before it is quoted:

* **Years.** The years a question asks (2025年, "十三五"期间, 今年 → the document's own year) must
  meet the years the sentence speaks of: the ones it states, else those of its paragraph's
  opening, else those of its chapter heading, else its document's (a 十四五 plan speaks of its
  baseline 2020 and its target 2025; a 2026 report of 2025 and 2026). A year nobody states is no
  constraint.
  A question about a whole period (「“十五五”期间累计…」) is not answered by a sentence about one
  year inside it (this year's target of a report).
* **Place.** Only the documents of the regions a question names answer it; a question that names
  a real place (looked up in the gazetteer) covered by no document is answered by none.
* **Document.** A question that names a document by its title (「乡村振兴战略意见提出…」) is
  answered by that document only.

(The indicator a "how many" question asks for is checked by the extractive answerer, which knows
the corpus's word frequencies: rag.indicators.number_beside.)

A sentence that fails is not quoted as the answer; when nothing else answers, the refusal names
what was asked and shows the nearest sentence as what the documents do say, cited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from planqa.corpus.chunking import Chunk, split_sentences
from planqa.corpus.documents import DocumentMeta
from planqa.corpus.gazetteer import ZONE_SUFFIXES, Division, Gazetteer, gazetteer

#: 2025年, 2025 年, 2025年底; a four-digit number without 年 is a figure, not a year.
YEAR = re.compile(r"(?<![\d.])((?:19|20)\d{2})(?=\s*年)")
#: A year range written out, 2016—2020年 / 2021-2025年.
_YEAR_RANGE = re.compile(r"(?<![\d.])((?:19|20)\d{2})\s*[—–\-～~至到]\s*((?:19|20)\d{2})")
#: "十三五", 十四五时期: the n-th five-year plan.
_FIVE_YEAR_PLAN = re.compile(r"十([一二三四五六七八九])五")
_ORDINAL = "一二三四五六七八九"
_THIS_YEAR = re.compile(r"今年|本年度|本年|当年")
#: (Not 上年: 「比上年增长」 compares with last year inside a sentence about this one.)
_LAST_YEAR = re.compile(r"去年|过去一年")
#: A report's look back on the five years before it (2026 → 2021..2025).
_PAST_FIVE_YEARS = re.compile(r"过去五年|这五年|五年来|五年间")
#: What may come before the place a question is about: 「2026年浙江省…」, 「请问今年浙江省…」.
_SUBJECT_PREFIX = re.compile(r"(?:请问|在|(?:19|20)\d{2}\s*年|今年|明年|[\s，,])*")
#: A question about a period as a whole: 「“十五五”期间累计」, 「五年共新增」.
_WHOLE_PERIOD = re.compile(r"期间|时期|累计|总计|五年")
#: A title's bracketed tail (「（2016—2020年）」, 「（2022年更新）」) is not its kind word.
_TITLE_TAIL = re.compile(r"[（(][^）)]*[）)]\s*$")
_HAN = re.compile(r"[\u4e00-\u9fff]")
#: A run of a title with this many Han characters names the document when no other title has it.
MIN_TITLE_RUN_CHARS = 4


@dataclass(frozen=True)
class Constraints:
    """What an answer must keep to; empty fields constrain nothing."""

    #: Years asked for explicitly (2025年, or every year of a period asked: 十三五 → 2016..2020).
    years: frozenset[int] = frozenset()
    #: The question says 今年/去年: the year is the document's own (or the one before).
    relative_years: frozenset[int] = frozenset()
    #: How the question wrote its years, for the refusal (「2030年」, 「“十三五”期间」).
    year_words: tuple[str, ...] = ()
    #: Regions of indexed documents the question names (only their documents answer).
    regions: tuple[str, ...] = ()
    #: Real places the question is about that no indexed document covers (浙江省).
    missing_places: tuple[str, ...] = ()
    #: Files of the documents the question names by title (only they answer), and the titles.
    documents: tuple[str, ...] = ()
    document_titles: tuple[str, ...] = ()
    #: The years are a period asked about as a whole (「“十五五”期间累计」), not one of its years.
    whole_period: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.years
            or self.relative_years
            or self.regions
            or self.missing_places
            or self.documents
        )

    def to_dict(self) -> dict[str, list]:
        return {
            "years": sorted(self.years),
            "relative_years": sorted(self.relative_years),
            "regions": list(self.regions),
            "missing_places": list(self.missing_places),
            "documents": list(self.documents),
        }


def five_year_plan_years(ordinal: int) -> range:
    """The n-th 五年规划's years: the 11th is 2006—2010 (the 1963—65 gap shifts the count)."""
    start = 1966 + 5 * (ordinal - 3)
    return range(start, start + 5)


def _plan_years(match: re.Match[str]) -> range:
    """十三五 (a match of _FIVE_YEAR_PLAN) → 2016..2020."""
    return five_year_plan_years(11 + _ORDINAL.index(match.group(1)))


def stated_years(text: str) -> set[int]:
    """The years ``text`` speaks of: 2025年, ranges (2016—2020年) and 十X五 periods."""
    years = {int(match.group(1)) for match in YEAR.finditer(text)}
    for match in _YEAR_RANGE.finditer(text):
        first, last = int(match.group(1)), int(match.group(2))
        if 0 < last - first <= 15:
            years.update(range(first, last + 1))
    for match in _FIVE_YEAR_PLAN.finditer(text):
        years.update(_plan_years(match))
    return years


def document_years(meta: DocumentMeta) -> set[int]:
    """The years a document speaks of where a sentence does not say: a plan's baseline and target
    (2021—2025 → 2020, 2025), a yearly report's year and the year it looks back on."""
    found = [int(year) for year in re.findall(r"(?:19|20)\d{2}", meta.period or "")]
    if not found and meta.kind in ("政府工作报告", "年度工作计划"):
        found = [int(year) for year in re.findall(r"(?:19|20)\d{2}", meta.date or "")[:1]]
    if not found:
        return set()
    return {min(found) - 1, max(found)}


def document_year(meta: DocumentMeta) -> int | None:
    """The year 今年 means in a document: a yearly report's or plan's own year."""
    years = re.findall(r"(?:19|20)\d{2}", meta.period or "")
    if len(years) == 1:
        return int(years[0])
    return None


class CorpusNames:
    """What question analysis reads off the documents, made once per index version: each title
    (without a closing parenthesis) filed under its kind word, and the divisions the regions
    name. A question then costs time in its own length, not the corpus's: read off the whole
    document list per question, 47K documents took a second."""

    def __init__(self, documents: Sequence[DocumentMeta]) -> None:
        self.documents = list(documents)
        self.titles = {meta.file: _TITLE_TAIL.sub("", meta.title).strip() for meta in documents}
        self.by_kind: dict[str, list[DocumentMeta]] = {}
        for meta in self.documents:
            title = self.titles[meta.file]
            if len(title) >= MIN_TITLE_RUN_CHARS + 2:
                self.by_kind.setdefault(title[-2:], []).append(meta)
        self._covered: tuple[Division, ...] | None = None

    def covered(self, places: Gazetteer) -> tuple[Division, ...]:
        """Every division a document's region names mention."""
        if self._covered is None:
            names = dict.fromkeys(meta.region_names for meta in self.documents)
            found = [d for region in names for d in _divisions_of(region, places)]
            self._covered = tuple(dict.fromkeys(found))
        return self._covered


def question_constraints(
    text: str,
    named_regions: tuple[str, ...],
    documents: Sequence[DocumentMeta] | CorpusNames,
) -> Constraints:
    """Read the years and places off a question (already normalised by the searcher);
    ``documents`` made into :class:`CorpusNames` once by a caller asking many questions."""
    names = documents if isinstance(documents, CorpusNames) else CorpusNames(documents)
    years = set(int(match.group(1)) for match in YEAR.finditer(text))
    words = [f"{match.group(1)}年" for match in YEAR.finditer(text)]
    whole_period = not years and bool(_WHOLE_PERIOD.search(text))
    periods = list(_FIVE_YEAR_PLAN.finditer(text))
    for match in periods:
        years.update(_plan_years(match))
        words.append(f"“{match.group(0)}”")
    relative = set()
    if _THIS_YEAR.search(text):
        relative.add(0)
    if _LAST_YEAR.search(text):
        relative.add(-1)
    missing = () if named_regions else missing_places(text, names, gazetteer())
    named = documents_named(text, names)
    return Constraints(
        frozenset(years),
        frozenset(relative),
        tuple(words),
        named_regions,
        missing,
        tuple(meta.file for meta in named),
        tuple(meta.title for meta in named),
        whole_period=whole_period and len(periods) == 1 and not relative,
    )


def documents_named(text: str, names: CorpusNames) -> list[DocumentMeta]:
    """The documents ``text`` names by title: a run of the title with at least four Han
    characters, no other title's, right before the title's kind word (「乡村振兴战略意见」,
    「关于实施乡村振兴战略的意见」 → the 意见). Runs every title shares (政府工作, 五年规划) name
    no document in particular; a place is left to the region constraint."""
    titles = names.titles
    kinds = dict.fromkeys(text[i : i + 2] for i in range(len(text) - 1))
    named = []
    for kind in kinds:
        for meta in names.by_kind.get(kind, ()):
            title = titles[meta.file]
            for match in re.finditer(re.escape(kind), text):
                before = text[: match.start()].removesuffix("的")
                run = _longest_suffix_in(before, title[:-2])
                # The place in a title is the region constraint's business (「江阴高新区规划」).
                bare = _region_names_pattern(meta.region_names).sub("", run)
                named_by_words = len(_HAN.findall(bare)) >= MIN_TITLE_RUN_CHARS  # not by a year
                if named_by_words and not any(
                    run in other for file, other in titles.items() if file != meta.file
                ):
                    named.append(meta)
                    break
    return sorted(named, key=names.documents.index)


@lru_cache(maxsize=4096)
def _region_names_pattern(region_names: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, region_names)) or "^$")


def _longest_suffix_in(text: str, title: str) -> str:
    """The longest end of ``text`` that occurs in ``title``."""
    length = 0
    while length < len(text) and text[len(text) - length - 1 :] in title:
        length += 1
    return text[len(text) - length :]


def missing_places(text: str, names: CorpusNames, places: Gazetteer) -> tuple[str, ...]:
    """The place a question is about — named first, as its subject — when no document covers it.

    Only the opening counts: 「浙江省今年…」 asks about 浙江省, while 「哪个省提出深化与香港合作」
    merely mentions 香港 (and 「…合作区」 would otherwise read as 合作市).

    A place is covered when a document's region lies within it (江苏省 covers 海州区's plan) or it
    lies within a document's region (成都市 is 四川省's business). A national document covers no
    place in particular: it answers questions about the country, not about 浙江省.
    """
    opening = _SUBJECT_PREFIX.match(text).end()
    named = [mention for mention in places.mentions(text) if mention[0] == opening]
    subject = named + _zone_at(text, opening, places)
    if not subject:
        return ()
    covered = names.covered(places)
    missing = []
    for _, written, candidates in subject:
        if any(c.is_within(d) or d.is_within(c) for c in candidates for d in covered):
            continue
        if written.endswith(ZONE_SUFFIXES) or len(candidates) > 1:
            missing.append(written)
        else:
            missing.append(candidates[0].name)
    return tuple(dict.fromkeys(missing))


def _zone_at(text: str, offset: int, places: Gazetteer) -> list[tuple[int, str, list[Division]]]:
    """「苏州工业园区」, 「宁波高新区」 at ``offset``: a zone named by its city's short name, which
    the gazetteer's mentions do not see (they know 苏州市, not 苏州工…)."""
    match = _zone_pattern().match(text, offset)
    candidates = places.cities_and_counties(match.group(1)) if match else []
    return [(offset, match.group(0), candidates)] if match and candidates else []


@lru_cache(maxsize=1)
def _zone_pattern() -> re.Pattern[str]:
    suffixes = "|".join(map(re.escape, ZONE_SUFFIXES))
    return re.compile(f"([\u4e00-\u9fff]{{2,3}}?)(?:{suffixes})")


@lru_cache(maxsize=1024)
def _divisions_of(names: tuple[str, ...], places: Gazetteer) -> tuple[Division, ...]:
    """The divisions a document's region names mention (南通市经济技术开发区 → 南通市)."""
    found: list[Division] = []
    for name in names:
        for _, _, candidates in places.mentions(name):
            found.extend(candidates)
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class SentenceContext:
    """Where a candidate sentence sits: the text around it that can carry its year."""

    sentence: str
    paragraph_lead: str
    chapter: str
    meta: DocumentMeta
    #: Every year the whole document speaks of (see :func:`stated_years`); None when unknown.
    document_text_years: frozenset[int] | None = None

    @classmethod
    def of(
        cls,
        chunk: Chunk,
        start: int,
        end: int,
        meta: DocumentMeta,
        document_text_years: frozenset[int] | None = None,
    ) -> SentenceContext:
        """The context of chunk's sentence at document offsets ``start``..``end``."""
        before = chunk.text[: start - chunk.start]
        return cls(
            sentence=chunk.text[start - chunk.start : end - chunk.start],
            paragraph_lead=last_year_sentence(inherited_lead(before)),
            chapter=chunk.chapter,
            meta=meta,
            document_text_years=document_text_years,
        )


def failed_constraints(constraints: Constraints, context: SentenceContext) -> tuple[str, ...]:
    """The constraints ``context``'s sentence breaks: "region", "document", "year" (empty when
    it keeps all)."""
    failed = []
    if constraints.missing_places or (
        constraints.regions and context.meta.region not in constraints.regions
    ):
        failed.append("region")
    if constraints.documents and context.meta.file not in constraints.documents:
        failed.append("document")
    asked = set(constraints.years)
    own_year = document_year(context.meta)
    if own_year is not None:
        asked.update(own_year + shift for shift in constraints.relative_years)
    if asked:
        spoken = _spoken_years(context, own_year)
        if spoken and not spoken & asked:
            failed.append("year")
        elif constraints.whole_period and _one_year_of(asked, spoken):
            # One year's figure (a report's target for this year) is not the period's total.
            failed.append("year")
        elif constraints.years and context.document_text_years is not None:
            # A year the document never speaks of (2030 in an opinion that sets goals for 2020,
            # 2035 and 2050) is answered by none of its sentences, whatever they leave unsaid.
            known = context.document_text_years | document_years(context.meta)
            if not constraints.years & known:
                failed.append("year")
    return tuple(failed)


def _one_year_of(period: set[int], spoken: set[int]) -> bool:
    """Whether a sentence speaking of ``spoken`` covers a single year of ``period`` other than
    its last (the period's target year speaks for the whole period: 「到2025年」)."""
    overlap = period & spoken
    return len(overlap) == 1 and max(period) not in overlap


def _spoken_years(context: SentenceContext, own_year: int | None) -> set[int]:
    for text in (context.sentence, context.paragraph_lead, context.chapter):
        years = stated_years(text)
        if own_year is not None:
            if _THIS_YEAR.search(text):
                years.add(own_year)
            if _LAST_YEAR.search(text):
                years.add(own_year - 1)
            if _PAST_FIVE_YEARS.search(text):
                years.update(range(own_year - 5, own_year))
        if years:
            return years
    return document_years(context.meta)


def refusal_subject(constraints: Constraints, failed: tuple[str, ...]) -> str:
    """「浙江省」, 「2030年」, 「四川省2030年」, 「《…意见》2030年」: what the documents lack, for
    the refusal line."""
    parts = []
    if "region" in failed or constraints.regions:
        parts.append("、".join(constraints.missing_places or constraints.regions))
    if "document" in failed or constraints.documents:
        parts.append("、".join(f"《{title}》" for title in constraints.document_titles))
    if "year" in failed and constraints.year_words:
        parts.append("、".join(constraints.year_words))
    elif "year" in failed and constraints.relative_years:
        parts.append("今年" if 0 in constraints.relative_years else "去年")
    return "".join(parts)


def last_year_sentence(lead: str) -> str:
    """The last sentence before a sentence that says when it speaks of: the one whose year a
    following sentence without its own inherits (「今年主要预期目标是：」 → 「增长5.5%」,
    「——这五年生态安全屏障进一步夯实。」 → 「森林覆盖率达到22%」)."""
    for start, end in reversed(split_sentences(lead)):
        sentence = lead[start:end]
        if stated_years(sentence) or any(
            marker.search(sentence) for marker in (_THIS_YEAR, _LAST_YEAR, _PAST_FIVE_YEARS)
        ):
            return sentence
    return ""


#: A line this short without closing punctuation is a heading (「2026年省十件民生实事」).
MAX_HEADING_LINE_CHARS = 30
_HEADING_DIGITS = re.compile(r"(?<!\d)(?!(?:19|20)\d{2}年)\d")


def is_heading_line(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is a whole short line with no sentence end and no figure but a
    year: a heading the structure parser did not mark (a table row keeps its figures)."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start : len(text) if line_end < 0 else line_end].strip()
    return (
        line == text[start:end].strip()
        and len(line) <= MAX_HEADING_LINE_CHARS
        and line[-1] not in "。；！？.;!?"
        and not _HEADING_DIGITS.search(line)
    )


def inherited_lead(before: str) -> str:
    """What a sentence inherits its year from: its paragraph so far, and the short heading-like
    lines above it in the passage (「——这五年生态安全屏障进一步夯实。」), never the long prose
    lines, whose 上年/去年 speak of their own comparisons."""
    paragraph_start = before.rfind("\n") + 1
    headings = [
        line
        for line in before[:paragraph_start].splitlines()
        if 0 < len(line.strip()) <= MAX_HEADING_LINE_CHARS
    ]
    return "\n".join([*headings, before[paragraph_start:]])
