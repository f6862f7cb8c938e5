"""The heading tree of a Chinese planning document, with exact offsets into its decoded text.

Planning documents (五年规划纲要, 年度工作计划, 党代会报告) number their headings by convention,
so the tree is read from the numbering, not from layout (which text extraction has destroyed):

====== ======================================================================================
level  heading forms
====== ======================================================================================
0      ``第X章``; ``序言``/``前言``/``引言``/``结语``/``后记`` (see "unnumbered headings" below)
1      ``第X节``, ``一、``
2      ``（一）``, ``(一)``
3      ``1、``, ``1.``, ``1．``
4      ``（1）``, ``(1)``
box    ``专栏``, ``专栏N``, ``专栏 N``, ``专栏：…`` — one level below the heading it sits in
====== ======================================================================================

When a document has both ``第X节`` and ``一、`` headings, ``一、`` and every form below it move one
level deeper (一、 is then a subdivision of the 节, not its sibling).

Judgement calls (each one is forced by a real document in ``corpus/documents``):

* **Unnumbered headings** (序言, 前言, 结语…) take the document's *top* numbered level, not level 0:
  in a plan with only ``一、`` headings the 前言 is their sibling, not their parent.
* **Boxes** (专栏) hold numbered items: ``1.``/``（1）`` headings inside a box nest under it,
  while any structural heading (章/节/一、/（一）) or another box closes it. A box has no end
  marker, so body text after a box and before the next structural heading is attributed to it.
  A box title glued to the end of a paragraph line (``…园区。专栏:服务业重点工程``) is a heading
  that starts mid-line; the paragraph before it stays in the enclosing section.
* **Run-in headings**: ``（一）综合实力稳步提升。坚持把…`` opens a paragraph with a short numbered
  title. The title becomes a heading (its ``text`` without the 。) but stays *inside* its section's
  body, because it is the first sentence of the paragraph a reader is shown. Titles with commas,
  colons or 、 are list items (``1. 生活性服务业提质工程:德邦、…``), not headings.
* **Standalone headings** are short lines (≤ 40 characters). They may end in one 。 when structural
  (``一、 突出创新引领,在加快转型升级上持续发力。``) but not as ``1.``/``（1）``, where a short
  sentence line is a list item (``5. 工业企业绩效评价体系建设。``). ``一是…`` is never a marker.
* **Numbering sanity**: a numbered heading must continue its siblings (``三、`` after ``二、``) or,
  as the first child of a heading, be number 1; at the root any number may start (an excerpt).
  Out-of-sequence candidates, and candidates followed by a table row (the ``一、总量与结构`` row
  groups of an indicator table), are body text.
* **Dropped spans** (never inside a section; found by corpus.furniture): ``toc`` (a 目录
  block up to where its first entry repeats or its page-numbered lines end, and any heading
  line ending in ``-12-``/``…… 5``),
  ``front_matter`` (web breadcrumbs, 来源/发布时间 lines, 政府信息公开 metadata near the top),
  ``boilerplate`` (收藏/打印/关闭 page chrome), ``page_number`` (``- 12 -`` lines) and ``byline``
  (``本报记者 …``, ``… 陆冰摄`` photo credits). A drop inside a body splits it into two sections
  with the same path, so that no section (and no chunk) contains dropped text.
* **No headings at all** (a news article): short unpunctuated lines between two paragraphs become
  level-1 title headings; everything else is one root section (path ``()``), split only by drops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from planqa.corpus.furniture import dropped_lines, merge_drops
from planqa.corpus.heading_forms import (
    BOX_RE,
    MAX_HEADING_CHARS,
    NUMBERED_KINDS,
    SENTENCE_END_CHARS,
    TRAILING_BOX_RE,
    UNNUMBERED_RE,
    Line,
    cn_number,
    content_lines,
    is_space,
    is_table_row,
)

#: Run-in titles (``（一）发展定位。…``) longer than this are ordinary first sentences.
MAX_RUN_IN_TITLE_CHARS = 32
#: Heading kinds that number list items: they nest inside a 专栏 and may not end in 。.
LIST_KINDS = frozenset({"arabic", "paren_arabic"})
#: Kinds pushed one level deeper when a document has both 第X节 and 一、 headings.
BELOW_SECTION_KINDS = frozenset({"cn_enum", "paren_cn", "arabic", "paren_arabic"})
#: Title lines of a heading-less article are at most this long.
MAX_TITLE_LINE_CHARS = 30
#: Unpunctuated text outside chapters longer than this is kept: it may be a list or a table.
MAX_COVER_CHARS = 200
#: Characters after which a line cannot be a standalone heading (clause or list punctuation).
BAD_HEADING_ENDINGS = "，,；;！!？?、"
#: Characters a run-in title may not contain: they make it a clause of a list item.
RUN_IN_FORBIDDEN = "，,；;：:、！!？?"
#: Punctuation that makes a short line a sentence fragment rather than an article's subtitle.
TITLE_FORBIDDEN_RE = re.compile(r"[，,。.;；:：!！?？、“”\"‘’'（）()《》【】\[\]—…·•]")
#: A line ending a sentence: the previous neighbour of a subtitle, and its following paragraph.
SENTENCE_CLOSED_RE = re.compile(r"[。！？!?；;…][”’」』)）]?$")


@dataclass(frozen=True)
class Heading:
    """A recognised heading; ``start``/``end`` span its text (with the 。 of a run-in title)."""

    level: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Section:
    """The body under one heading path, whitespace-trimmed; run-in titles are part of the body."""

    path: tuple[str, ...]
    start: int
    end: int

    @property
    def chapter(self) -> str:
        return " > ".join(self.path)


@dataclass(frozen=True)
class DocumentStructure:
    headings: tuple[Heading, ...]
    sections: tuple[Section, ...]
    dropped: tuple[tuple[int, int, str], ...]


@dataclass(frozen=True)
class _Candidate:
    """A line that looks like a heading before the numbering has been checked."""

    kind: str
    level: int
    number: int | None
    text: str
    start: int
    end: int
    run_in: bool = False


@dataclass(frozen=True)
class _Placed:
    """An accepted heading with its kind and number, as kept on the tree-building stack."""

    heading: Heading
    kind: str
    number: int | None
    run_in: bool
    path: tuple[str, ...]


def parse_structure(text: str) -> DocumentStructure:
    """Split a document into its heading tree, body sections and dropped (non-content) spans."""
    lines = content_lines(text)
    furniture = dropped_lines(lines)
    kept = [line for i, line in enumerate(lines) if i not in furniture]
    placed = _place_headings(_candidates(kept))
    if not placed:
        placed = _place_titles(kept)
    dropped = merge_drops(text, lines, furniture)
    sections = _sections(text, placed, dropped)
    covers = [s for s in sections if _is_cover(s, text)]
    if len(covers) < len(sections):
        sections = [s for s in sections if s not in covers]
        dropped = sorted([*dropped, *((s.start, s.end, "cover") for s in covers)])
    return DocumentStructure(
        headings=tuple(p.heading for p in placed),
        sections=tuple(sections),
        dropped=tuple(dropped),
    )


def _is_cover(section: Section, text: str) -> bool:
    """Title pages and banners: text outside any chapter without a single finished sentence.

    A cover repeats the title every chunk already carries, so indexing it only adds a passage
    that matches every question naming the region and answers none of them. A document made of
    nothing else keeps it (see parse_structure).
    """
    body = text[section.start : section.end]
    return (
        not section.path
        and len(body) <= MAX_COVER_CHARS
        and not any(ch in SENTENCE_END_CHARS for ch in body)
    )


def _candidates(lines: list[Line]) -> list[_Candidate]:
    """Heading-shaped lines in order; one followed by a table row is a row-group label, not a
    heading (``一、总量与结构`` above ``1 地区生产总值(GDP) 亿元 461.22 …``)."""
    found: list[_Candidate] = []
    for i, line in enumerate(lines):
        following = lines[i + 1].text if i + 1 < len(lines) else ""
        candidate = _candidate(line) or _trailing_box(line)
        if candidate and (candidate.run_in or not is_table_row(following)):
            found.append(candidate)
    return found


def _trailing_box(line: Line) -> _Candidate | None:
    """A box title at the end of a paragraph line: the heading starts mid-line, after the 。."""
    match = TRAILING_BOX_RE.search(line.text)
    if not match:
        return None
    return _Candidate("box", 0, None, match.group(), line.start + match.start(), line.end)


def _candidate(line: Line) -> _Candidate | None:
    """A line as a standalone heading, else as a paragraph opening with a run-in title."""
    text = line.text
    if UNNUMBERED_RE.match(text):
        return _Candidate("unnumbered", 0, None, text, line.start, line.end)
    if BOX_RE.match(text) and _standalone_ok(text, is_list=True, marker_end=0):
        return _Candidate("box", 0, None, text, line.start, line.end)
    for kind in NUMBERED_KINDS:
        match = kind.pattern.match(text)
        if not match:
            continue
        number = cn_number(match["num"])
        if _standalone_ok(text, is_list=kind.name in LIST_KINDS, marker_end=match.end()):
            return _Candidate(kind.name, kind.level, number, text, line.start, line.end)
        title_end = _run_in_title_end(text, match.end())
        if title_end is not None:
            end = line.start + title_end
            title = text[:title_end].rstrip()
            return _Candidate(
                kind.name, kind.level, number, title, line.start, end + 1, run_in=True
            )
        return None
    return None


def _standalone_ok(text: str, *, is_list: bool, marker_end: int) -> bool:
    """A whole line as a heading: short, a title after the marker, no sentence inside it."""
    if len(text) > MAX_HEADING_CHARS or not text[marker_end:].strip(" \t\xa0\u3000:："):
        return False
    if any(c in SENTENCE_END_CHARS for c in text[:-1]) or text[-1] in BAD_HEADING_ENDINGS:
        return False
    return text[-1] != "。" or not is_list


def _run_in_title_end(text: str, marker_end: int) -> int | None:
    """Offset of the 。 closing a run-in title, if the line opens with one and goes on after it."""
    stop = text.find("。", marker_end)
    if stop < 0:
        return None
    title = text[marker_end:stop].strip()
    if not 2 <= len(title) <= MAX_RUN_IN_TITLE_CHARS or any(c in RUN_IN_FORBIDDEN for c in title):
        return None
    return stop if text[stop + 1 :].strip() else None




def _place_headings(candidates: list[_Candidate]) -> list[_Placed]:
    """Build the tree with a stack, dropping candidates whose numbering does not fit their place."""
    levels = _levels_by_kind({c.kind for c in candidates})
    numbered = [levels[c.kind] for c in candidates if c.number is not None]
    top_level = min(numbered, default=0)
    stack: list[_Placed] = []
    placed: list[_Placed] = []
    for candidate in candidates:
        if candidate.kind == "box":
            parents = _pop_for_box(stack)
            level = parents[-1].heading.level + 1 if parents else 0
        else:
            level = top_level if candidate.kind == "unnumbered" else levels[candidate.kind]
            parents, previous = _pop_for_heading(stack, level, candidate.kind)
            if not _in_sequence(candidate, previous, at_root=not parents):
                continue
        heading = Heading(level, candidate.text, candidate.start, candidate.end)
        path = (*parents[-1].path, candidate.text) if parents else (candidate.text,)
        entry = _Placed(heading, candidate.kind, candidate.number, candidate.run_in, path)
        stack = [*parents, entry]
        placed.append(entry)
    return placed


def _levels_by_kind(kinds: set[str]) -> dict[str, int]:
    """Nominal levels, except that 一、 and below go under 第X节 when a document has both."""
    shift = int("section" in kinds and "cn_enum" in kinds)
    return {
        kind.name: kind.level + (shift if kind.name in BELOW_SECTION_KINDS else 0)
        for kind in NUMBERED_KINDS
    }


def _pop_for_box(stack: list[_Placed]) -> list[_Placed]:
    """A box sits in the nearest structural heading: list items and an earlier box are closed."""
    parents = list(stack)
    while parents and parents[-1].kind in LIST_KINDS | {"box"}:
        parents.pop()
    return parents


def _pop_for_heading(
    stack: list[_Placed], level: int, kind: str
) -> tuple[list[_Placed], _Placed | None]:
    """The parents a heading attaches to, and its previous sibling if any. An open box is closed
    by any structural heading but holds list items."""
    parents = list(stack)
    previous: _Placed | None = None
    while parents:
        top = parents[-1]
        if top.kind == "box":
            if kind in LIST_KINDS:
                break
        elif top.heading.level < level:
            break
        parents.pop()
        if top.heading.level == level and top.kind != "box":
            previous = top
    return parents, previous


def _in_sequence(candidate: _Candidate, previous: _Placed | None, *, at_root: bool) -> bool:
    """Numbers continue their siblings; a first child starts at 1 (any number at the root)."""
    if candidate.number is None:
        return True
    if previous is None or previous.kind != candidate.kind or previous.number is None:
        return at_root or candidate.number == 1
    return candidate.number == previous.number + 1


def _place_titles(lines: list[Line]) -> list[_Placed]:
    """Subtitles of a heading-less article: a short unpunctuated line between two paragraphs.

    Conservative on purpose: the previous line must close a sentence (so a paragraph broken
    mid-word, ``良好生态环境是人民对美好生`` / ``活的向往。…``, is not a title) and the next line
    must be a longer paragraph that closes one.
    """
    placed: list[_Placed] = []
    for i in range(1, len(lines) - 1):
        line, before, after = lines[i], lines[i - 1].text, _paragraph_after(lines, i)
        if not 4 <= len(line.text) <= MAX_TITLE_LINE_CHARS or TITLE_FORBIDDEN_RE.search(line.text):
            continue
        if not SENTENCE_CLOSED_RE.search(before) or not SENTENCE_CLOSED_RE.search(after):
            continue
        if len(after) < 2 * len(line.text):
            continue
        heading = Heading(1, line.text, line.start, line.end)
        placed.append(_Placed(heading, "title", None, False, (line.text,)))
    return placed


def _paragraph_after(lines: list[Line], index: int, max_lines: int = 3) -> str:
    """The paragraph after a line, re-joining a paragraph the extraction broke across lines."""
    parts: list[str] = []
    for line in lines[index + 1 : index + 1 + max_lines]:
        parts.append(line.text)
        if SENTENCE_CLOSED_RE.search(line.text):
            break
    return "".join(parts)




def _sections(
    text: str, placed: list[_Placed], dropped: list[tuple[int, int, str]]
) -> list[Section]:
    """Body between consecutive headings, cut around dropped spans and trimmed of whitespace."""
    regions: list[tuple[tuple[str, ...], int, int]] = []
    body_start, path = 0, ()
    for entry in placed:
        regions.append((path, body_start, entry.heading.start))
        body_start = entry.heading.start if entry.run_in else entry.heading.end
        path = entry.path
    regions.append((path, body_start, len(text)))
    sections: list[Section] = []
    for region_path, start, end in regions:
        for piece_start, piece_end in _subtract(start, end, dropped):
            trimmed = _trim(text, piece_start, piece_end)
            if trimmed:
                sections.append(Section(region_path, *trimmed))
    return sections


def _subtract(start: int, end: int, dropped: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    pieces: list[tuple[int, int]] = []
    cursor = start
    for drop_start, drop_end, _reason in dropped:
        if drop_end <= cursor or drop_start >= end:
            continue
        if drop_start > cursor:
            pieces.append((cursor, drop_start))
        cursor = max(cursor, drop_end)
    if cursor < end:
        pieces.append((cursor, end))
    return pieces


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and is_space(text[start]):
        start += 1
    while end > start and is_space(text[end - 1]):
        end -= 1
    return (start, end) if end > start else None
