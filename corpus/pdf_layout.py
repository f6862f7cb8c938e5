"""Reading order of a PDF page from the position of its characters.

A PDF holds glyphs at coordinates, not paragraphs: pypdf's text stream gave the two columns of a
page interleaved line by line, every wrapped line as a line of its own (so a sentence broken at
the margin split into two "sentences" for chunking), and the running header, footer and page
number in the middle of the text. This module turns one page's characters into lines, finds a
column gutter, reads each column top to bottom, and rejoins wrapped lines into the paragraphs a
.txt of the same document has, so a PDF chunks like its .txt (tests/test_file_formats_pdf.py).

Everything here is plain geometry on dicts shaped like pdfplumber's ``page.chars``
(``text``, ``x0``, ``x1``, ``top``, ``bottom``, ``size``), which keeps it testable without a PDF.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from statistics import median

#: A running page number: 「3」, 「- 3 -」, 「—3—」, 「第3页」, 「第 3 页 共 10 页」, 「3/10」.
PAGE_NUMBER_RE = re.compile(
    r"^[\s\-—–－·•]*(?:第\s*)?\d{1,4}(?:\s*页)?(?:\s*[/／]\s*\d{1,4}|\s*[，,]?\s*共\s*\d{1,4}\s*页)?"
    r"[\s\-—–－·•]*$"
)
#: Lines within this share of the page height from its top or bottom may be furniture.
FURNITURE_BAND = 0.1
_ASCII_WORD = re.compile(r"[A-Za-z0-9]")


@dataclass
class Line:
    """One line of text on a page, with its box (PDF points, top-down as pdfplumber gives)."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    #: The line's characters, for splitting it at a column gutter.
    chars: list[dict] = field(default_factory=list, repr=False)

    @property
    def segments(self) -> list[tuple[float, float]]:
        """The x-extents of the line's runs of text, split at gaps wider than 1.5 font sizes
        (two columns' lines on one baseline are two segments)."""
        spans: list[list[float]] = []
        for char in self.chars:
            if char["text"].isspace():
                continue
            if spans and char["x0"] - spans[-1][1] <= 1.5 * self.size:
                spans[-1][1] = max(spans[-1][1], char["x1"])
            else:
                spans.append([char["x0"], char["x1"]])
        return [(a, b) for a, b in spans] or [(self.x0, self.x1)]

    @property
    def furniture_key(self) -> str:
        """The line with digits and spaces normalised: the same header on every page, whatever
        the page number in it, has the same key."""
        return re.sub(r"\d+", "#", re.sub(r"\s+", "", self.text))


@dataclass
class Block:
    """Text or a table at a vertical position, to be put in reading order."""

    top: float
    lines: list[Line] = field(default_factory=list)
    #: A rendered table (header line + row lines); empty for text blocks.
    table: str = ""


def chars_to_lines(chars: list[dict]) -> list[Line]:
    """Group characters into lines by their baseline, each line's characters left to right.

    Spaces the PDF draws are kept as drawn; a gap wider than a fifth of the font size where the
    PDF drew none becomes one space, so table cells and ``2025 年`` stay apart.
    """
    rows: list[list[dict]] = []
    for char in sorted(chars, key=lambda c: (round(c["bottom"], 1), c["x0"])):
        if rows and abs(rows[-1][0]["bottom"] - char["bottom"]) <= 0.3 * max(char["size"], 1):
            rows[-1].append(char)
        else:
            rows.append([char])
    return [line for row in rows if (line := _line(row)) is not None]


def _line(row: list[dict]) -> Line | None:
    row.sort(key=lambda c: c["x0"])
    parts: list[str] = []
    previous: dict | None = None
    for char in row:
        if (
            previous is not None
            and not char["text"].isspace()
            and not parts[-1].isspace()
            and char["x0"] - previous["x1"] > 0.2 * max(char["size"], previous["size"])
        ):
            parts.append(" ")
        parts.append(char["text"])
        previous = char
    text = "".join(parts).rstrip()
    if not text.strip():
        return None
    shown = [c for c in row if not c["text"].isspace()]
    return Line(
        text=text,
        x0=shown[0]["x0"],
        x1=max(c["x1"] for c in shown),
        top=min(c["top"] for c in shown),
        bottom=max(c["bottom"] for c in shown),
        size=median(c["size"] for c in shown),
        chars=row,
    )


def split_columns(
    lines: list[Line], width: float, usual_margin: float = 0.0
) -> list[tuple[list[Line], float]]:
    """The page's lines in reading order, as runs of lines that each read top to bottom, each
    with the right margin its lines wrap at.

    A gutter is an empty vertical strip near the middle of the page that most lines leave
    clear; lines crossing it (a title over both columns) cut the page into bands, and each band
    is read left column first. Without a gutter the page is one run. A column's margin is the
    rightmost end of any line in that column on the page, so a short run (a column's last two
    lines) is not taken for a narrow paragraph; a page's margin is at least ``usual_margin``
    (the document's usual one), so that on a page of short lines (a table of contents) the
    longest line is not taken to reach the margin and joined to the next.
    """
    if not lines:
        return []
    page_margin = max(usual_margin, *(line.x1 for line in lines))
    gutter = find_gutter(lines, width)
    if gutter is None:
        return [(lines, page_margin)]
    left_edge, right_edge = gutter
    runs: list[tuple[str, list[Line]]] = []
    left: list[Line] = []
    right: list[Line] = []

    def flush() -> None:
        runs.extend((side, run[:]) for side, run in (("left", left), ("right", right)) if run)
        left.clear()
        right.clear()

    for line in lines:
        if line.x1 <= right_edge and line.x0 < left_edge:
            left.append(line)
        elif line.x0 >= left_edge and line.x1 > right_edge:
            right.append(line)
        elif not any(left_edge < (c["x0"] + c["x1"]) / 2 < right_edge for c in line.chars):
            # two columns' lines on one baseline: split at the gutter
            halves = (
                [c for c in line.chars if c["x1"] <= right_edge],
                [c for c in line.chars if c["x1"] > right_edge],
            )
            for half, column in zip(halves, (left, right), strict=True):
                part = _line(half) if half else None
                if part is not None:
                    column.append(part)
        else:  # crosses the gutter: a line over both columns
            flush()
            runs.append(("across", [line]))
    flush()
    margins = {"across": page_margin}
    for side in ("left", "right"):
        ends = [line.x1 for run_side, run in runs if run_side == side for line in run]
        margins[side] = max(ends, default=page_margin)
    margins["right"] = max(margins["right"], usual_margin)
    return [(run, margins[side]) for side, run in runs]


def usual_margin(pages: list[list[Line]]) -> float:
    """The right margin most pages' text reaches: the median of the pages' rightmost line
    ends (0 without pages)."""
    ends = sorted(max(line.x1 for line in lines) for lines in pages if lines)
    return ends[len(ends) // 2] if ends else 0.0


def find_gutter(lines: list[Line], width: float) -> tuple[float, float] | None:
    """``(left, right)`` of the column gutter, or None for a one-column page.

    Characters of a line are split at wide gaps into segments; a point is covered when a segment
    spans it. The gutter is the widest strip between 30% and 70% of the page width that at most
    a tenth of the lines cover, at least a font size wide, with text on both sides of it.
    """
    if len(lines) < 6 or width <= 0:
        return None
    step = 2.0
    bins = int(width / step) + 1
    cover = [0] * bins
    for line in lines:
        for x0, x1 in line.segments:
            for start in range(int(x0 / step), min(bins, int(x1 / step) + 1)):
                cover[start] += 1
    limit = max(1, len(lines) // 10)
    size = median(line.size for line in lines)
    best: tuple[float, float] | None = None
    run_start: int | None = None
    for i in range(int(0.3 * bins), int(0.7 * bins) + 1):
        clear = i < bins and cover[i] <= limit
        if clear and run_start is None:
            run_start = i
        if (not clear or i == int(0.7 * bins)) and run_start is not None:
            left, right = run_start * step, i * step
            if right - left >= size and (best is None or right - left > best[1] - best[0]):
                best = (left, right)
            run_start = None
    if best is None:
        return None
    on_left = sum(1 for line in lines if line.x0 <= best[0])
    on_right = sum(1 for line in lines if line.x1 >= best[1])
    return best if min(on_left, on_right) >= 0.3 * len(lines) else None


def paragraphs(lines: list[Line], margin: float | None = None) -> tuple[str, bool, bool]:
    """One run of lines as text: wrapped lines rejoined, paragraphs on lines of their own.

    A line continues onto the next when it reaches the run's right margin and the next line is
    not indented (a first-line indent starts a paragraph) and no wider gap than a line's
    separates them; a gap of a blank line's height keeps a blank line, as the .txt has.
    Returns ``(text, opens, closes_open)``: whether the first line could continue a paragraph
    from the previous page, and whether the last line runs on to the next page.
    """
    if not lines:
        return "", False, False
    left = min(line.x0 for line in lines)
    margin = max(line.x1 for line in lines) if margin is None else margin
    pitches = [b.top - a.top for a, b in pairwise(lines) if b.top > a.top]
    pitch = median(pitches) if pitches else lines[0].size * 1.5
    out = [lines[0].text]
    for before, after in pairwise(lines):
        gap = after.top - before.top
        if _runs_on(before, margin) and not _indented(after, left) and gap <= 1.3 * pitch:
            out.append(_joiner(before.text, after.text) + after.text)
            continue
        blank = min(2, max(0, round(gap / pitch) - 1)) if pitch > 0 else 0
        out.append("\n" * (1 + blank) + after.text)
    opens = not _indented(lines[0], left)
    return "".join(out), opens, _runs_on(lines[-1], margin)


def _runs_on(line: Line, margin: float) -> bool:
    """A line filled to the margin, so its paragraph may go on on the next line."""
    return line.x1 >= margin - 1.5 * line.size


def _indented(line: Line, left: float) -> bool:
    return line.x0 > left + 1.2 * line.size


def _joiner(before: str, after: str) -> str:
    """What rejoins a wrapped line: nothing in Chinese, a space between two Latin words."""
    if before.endswith(" ") or after.startswith(" "):
        return ""
    if _ASCII_WORD.match(before[-1:]) and _ASCII_WORD.match(after[:1]):
        return " "
    return ""


def furniture_keys(pages: list[tuple[float, list[Line]]]) -> set[str]:
    """Keys of running headers and footers: lines in the top or bottom band of a page whose
    normalised text recurs on at least half the pages (and on three or more)."""
    counts: Counter[str] = Counter()
    for height, lines in pages:
        keys = {line.furniture_key for line in lines if in_band(line, height)}
        counts.update(keys)
    needed = max(3, len(pages) // 2)
    return {key for key, count in counts.items() if count >= needed and key}


def in_band(line: Line, height: float) -> bool:
    return line.top < FURNITURE_BAND * height or line.bottom > (1 - FURNITURE_BAND) * height


def drop_furniture(lines: list[Line], height: float, keys: set[str]) -> list[Line]:
    """The page's lines without its running header, footer and page number."""
    return [
        line
        for line in lines
        if not (
            in_band(line, height)
            and (line.furniture_key in keys or PAGE_NUMBER_RE.match(line.text))
        )
    ]
