"""Chapter-aware chunks whose text is always ``document.text[start:end]``.

Every chunk lies inside one section of :func:`corpus.structure.parse_structure`, so its
``chapter`` (the heading path) is exact and no chunk mixes two chapters or holds a TOC line. A
section that fits in ``max_chars`` is one chunk however small it is: merging a tiny section into
its neighbour would give the neighbour's text the wrong chapter.

Longer sections are packed greedily from whole sentences (ending at 。！？；!?; or a line break).
A piece that would close on the opening sentence(s) of a new paragraph ends at the paragraph
break instead, when that still leaves it at least half of ``max_chars``. Each next piece starts
with the trailing sentences of the previous one that fit in ``overlap_chars``; when the last
sentence alone is longer than that there is no overlap.

Oversize sentences: a sentence longer than ``max_chars`` is cut after its last comma (，,) that
keeps the piece within ``max_chars``; a stretch of more than ``max_chars`` characters without a
comma is hard-cut at ``max_chars``. So every chunk is at most ``max_chars`` long, and a chunk ends
at a sentence end or a section end, except where it ends inside such an oversize sentence.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from planqa.corpus.documents import Document
from planqa.corpus.errors import InputError
from planqa.corpus.structure import Section, parse_structure

#: Stored in index manifests: bump it whenever the same settings would produce different chunks.
CHUNKER_VERSION = "structure-2"

#: A sentence end: terminal punctuation with any closing quotes/brackets after it, or a line break.
SENTENCE_END_RE = re.compile(r"[。！？；!?;]+[”’」』）)】》\"']*|\r\n|\r|\n")
#: Where an oversize sentence may be cut: after a comma.
COMMA_RE = re.compile(r"[，,]")


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage. ``id`` hashes document, span and text: re-indexing is idempotent."""

    id: str
    doc: str
    region: str
    title: str
    chapter: str
    start: int
    end: int
    text: str


def chunk_id(doc: str, start: int, end: int, text: str) -> str:
    return hashlib.sha256(f"{doc}\0{start}\0{end}\0{text}".encode()).hexdigest()[:16]


def chunk_document(
    document: Document, *, max_chars: int = 500, overlap_chars: int = 80
) -> list[Chunk]:
    """All chunks of a document, in document order."""
    if max_chars < 1:
        raise InputError(
            f"max_chars={max_chars} must be at least 1; use e.g. --chunk-max-chars 500"
        )
    if overlap_chars < 0:
        raise InputError(f"overlap_chars={overlap_chars} must be 0 or more; use e.g. 80")
    text = document.text
    chunks: list[Chunk] = []
    for section in parse_structure(text).sections:
        for start, end in section_spans(text, section, max_chars, overlap_chars):
            chunks.append(_make_chunk(document, section, start, end))
    return chunks


def _make_chunk(document: Document, section: Section, start: int, end: int) -> Chunk:
    meta = document.meta
    piece = document.text[start:end]
    return Chunk(
        id=chunk_id(meta.file, start, end, piece),
        doc=meta.file,
        region=meta.region,
        title=meta.title,
        chapter=" > ".join(section.path),
        start=start,
        end=end,
        text=piece,
    )


def section_spans(
    text: str, section: Section, max_chars: int, overlap_chars: int
) -> list[tuple[int, int]]:
    """The chunk spans of one section (absolute offsets)."""
    if section.end - section.start <= max_chars:
        return [(section.start, section.end)]
    units: list[tuple[int, int]] = []
    paragraph_starts: set[int] = set()
    previous_end = section.start
    for span in split_sentences(text[section.start : section.end], section.start):
        if previous_end == section.start or "\n" in text[previous_end : span[0]]:
            paragraph_starts.add(len(units))
        units.extend(_fit(text, span, max_chars))
        previous_end = span[1]
    return _pack(units, paragraph_starts, max_chars, overlap_chars)


def split_sentences(text: str, start: int = 0) -> list[tuple[int, int]]:
    """Sentence spans of ``text`` as offsets ``+ start``, whitespace-trimmed, none empty.

    A sentence ends after 。！？；!?; (with any closing quotes or brackets) or at a line break, so
    a heading-less paragraph break is a boundary too.
    """
    spans: list[tuple[int, int]] = []
    cursor = 0
    for match in SENTENCE_END_RE.finditer(text):
        _append_trimmed(spans, text, cursor, match.end(), start)
        cursor = match.end()
    _append_trimmed(spans, text, cursor, len(text), start)
    return spans


def _append_trimmed(
    spans: list[tuple[int, int]], text: str, begin: int, end: int, offset: int
) -> None:
    while begin < end and text[begin].isspace():
        begin += 1
    while end > begin and text[end - 1].isspace():
        end -= 1
    if end > begin:
        spans.append((begin + offset, end + offset))


def _fit(text: str, span: tuple[int, int], max_chars: int) -> list[tuple[int, int]]:
    """A sentence in pieces of at most ``max_chars``: whole, else cut after a comma, else cut."""
    start, end = span
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        window = text[start : start + max_chars]
        commas = [m.end() for m in COMMA_RE.finditer(window)]
        cut = start + (commas[-1] if commas else max_chars)
        piece_end = cut
        while text[piece_end - 1].isspace():
            piece_end -= 1
        pieces.append((start, piece_end))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append((start, end))
    return pieces


def _pack(
    units: list[tuple[int, int]], paragraph_starts: set[int], max_chars: int, overlap_chars: int
) -> list[tuple[int, int]]:
    """Greedy packing of consecutive units (each ≤ max_chars) with a sentence-level overlap."""
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(units):
        last = first
        while last + 1 < len(units) and units[last + 1][1] - units[first][0] <= max_chars:
            last += 1
        if last + 1 < len(units):
            last = _paragraph_end(units, paragraph_starts, first, last, max_chars)
        spans.append((units[first][0], units[last][1]))
        if last + 1 == len(units):
            break
        first = _overlap_start(units, first, last, max_chars, overlap_chars)
    return spans


def _paragraph_end(
    units: list[tuple[int, int]], paragraph_starts: set[int], first: int, last: int, max_chars: int
) -> int:
    """Pull a piece's end back to a paragraph end when that still leaves it at least half full,
    so a piece does not close on the opening sentence of the next paragraph."""
    if last + 1 in paragraph_starts:
        return last
    for start in range(last, first, -1):
        if start in paragraph_starts:
            if units[start - 1][1] - units[first][0] >= max_chars // 2:
                return start - 1
            break
    return last


def _overlap_start(
    units: list[tuple[int, int]], first: int, last: int, max_chars: int, overlap_chars: int
) -> int:
    """The first unit of the next piece: as far back as the overlap allows, but always forward
    of ``first`` (progress) and never so far back that the next unit no longer fits."""
    start = last + 1
    following_end = units[last + 1][1]
    while (
        start - 1 > first
        and units[last][1] - units[start - 1][0] <= overlap_chars
        and following_end - units[start - 1][0] <= max_chars
    ):
        start -= 1
    return start
