"""What a reader of one file format hands the loader: the text, its pages, and file metadata.

Every reader (PDF, web page, Word) returns an :class:`Extracted`, so the loader has one shape to
turn into a Document: the text (which every offset will index), where each page starts in it,
which pages are OCR text, and the metadata the file format itself carries (:class:`FileHints`:
a PDF's info dictionary, a .docx's core properties, a web page's <title> and <meta>), which the
metadata inference uses where the text does not state a field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: A page or column ending in one of these ends its paragraph, wherever its last line ends.
SENTENCE_ENDS = tuple("。！？；：!?;:")
_DATE = re.compile(r"((?:19|20)\d{2})[-/.年]?(\d{1,2})[-/.月]?(\d{1,2})")


@dataclass(frozen=True)
class FileHints:
    """Metadata stated by the file format rather than the text; empty strings when absent."""

    title: str = ""
    #: ISO date ``YYYY-MM-DD`` (or ``YYYY``) of publication or creation.
    date: str = ""
    author: str = ""


@dataclass(frozen=True)
class Extracted:
    """A file's text as read, with the page starts (0-based offsets; empty without pages)."""

    text: str
    format: str
    page_starts: tuple[int, ...] = ()
    ocr_pages: tuple[int, ...] = ()
    ocr_confidence: tuple[float, ...] = ()
    hints: FileHints = field(default_factory=FileHints)


@dataclass
class PagePiece:
    """One page's text with how it meets its neighbours: ``opens`` when its first line may
    continue the previous page's paragraph, ``runs_on`` when its last line reaches the margin."""

    text: str
    opens: bool = False
    runs_on: bool = False
    ocr_confidence: float | None = None


def join_pages(pieces: list[PagePiece]) -> tuple[str, tuple[int, ...]]:
    """The pages' texts as one text, and the offset each page starts at.

    A paragraph broken by a page break (the last line runs on and ends mid-sentence, the next
    page's first line is not indented) is rejoined without a line break, as the .txt of the
    document has it; other pages are separated by one line break. An empty page starts where
    the next page starts.
    """
    parts: list[str] = []
    starts: list[int] = []
    length = 0
    pending = 0  # empty pages waiting for the next page's start
    previous: PagePiece | None = None
    for piece in pieces:
        if not piece.text:
            pending += 1
            continue
        if previous is not None:
            runs_on = previous.runs_on and not previous.text.endswith(SENTENCE_ENDS)
            separator = "" if runs_on and piece.opens else "\n"
            parts.append(separator)
            length += len(separator)
        starts.extend([length] * (pending + 1))
        pending = 0
        parts.append(piece.text)
        length += len(piece.text)
        previous = piece
    starts.extend([length] * pending)
    return "".join(parts), tuple(starts)


def iso_date(value: str) -> str:
    """``YYYY-MM-DD`` from a date as formats write it (``D:20210302…``, ``2021-03-02``,
    ``2021年3月2日``); "" when it holds none."""
    match = _DATE.search(value or "")
    if not match:
        return ""
    year, month, day = match.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        return year
    return f"{year}-{int(month):02d}-{int(day):02d}"
