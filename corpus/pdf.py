"""PDF files: text in reading order, tables as rows under their header, pages kept, scans OCR'd.

pypdf gave a PDF as its raw text stream: columns interleaved, tables as loose numbers, running
headers and page numbers inside the body, and no way to say which page a passage is on. Here
pdfplumber (on pdfminer.six, MIT licensed; no AGPL library such as PyMuPDF) gives each
character with its position; corpus/pdf_layout.py orders them. Ruled tables are found by
pdfplumber's line detection, their characters taken out of the text flow, and each is written
at its place as a header line and row lines (corpus/tables.py ``table_lines``), the shape the
indicator-table code reads back. Pages without a text layer but with an image go through OCR
(corpus/ocr.py). The offset where each page starts is kept, so a citation can name its page.

A file pdfminer cannot parse at all (a damaged cross-reference table) is tried with pypdf,
which is more lenient, before it is refused; its text then has pages but no layout.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

from planqa.corpus.errors import DocumentError
from planqa.corpus.extracted import Extracted, FileHints, PagePiece, iso_date, join_pages
from planqa.corpus.guards import Deadline, TextBudget
from planqa.corpus.pdf_layout import (
    Line,
    chars_to_lines,
    drop_furniture,
    furniture_keys,
    paragraphs,
    split_columns,
    usual_margin,
)
from planqa.corpus.tables import table_lines

if TYPE_CHECKING:
    from planqa.corpus.settings import Settings

log = logging.getLogger(__name__)

#: A page with fewer visible characters than this and an image on it is taken for a scan.
SCAN_MAX_CHARS = 10
#: Tables need at least this many rows and columns; a frame drawn round a page is no table.
_MIN_TABLE_ROWS = 2
_MIN_TABLE_COLUMNS = 2


class _TableLine(Line):
    """A table standing in the flow of lines, so it is ordered with them by its position."""


def read_pdf(
    data: bytes, source: str, settings: Settings, deadline: Deadline, budget: TextBudget
) -> Extracted:
    """The text of a PDF with its page starts, OCR pages and info-dictionary metadata."""
    import pdfplumber

    try:
        pdf = pdfplumber.open(io.BytesIO(data))
        pages_iter = pdf.pages
    except DocumentError:
        raise
    except Exception as exc:  # pdfminer raises many types for damaged files
        log.info("%s: pdfminer cannot parse it (%s); trying pypdf", source, exc)
        return _read_with_pypdf(data, source, deadline, budget, first_error=exc)
    with pdf:
        hints = _hints(pdf.metadata or {})
        laid_out: list[tuple[float, float, list[Line]]] = []
        scans: list[int] = []
        for index, page in enumerate(pages_iter):
            deadline.check()
            try:
                lines, scanned = _page_lines(page)
            except Exception as exc:
                raise DocumentError(f"{source}: cannot read page {index + 1} ({exc})") from exc
            finally:
                page.close()  # pdfplumber caches every page's objects otherwise
            budget.add(sum(len(line.text) + 1 for line in lines))
            if scanned:
                scans.append(index)
            laid_out.append((float(page.width), float(page.height), lines))
    ocr_confidence: dict[int, float] = {}
    if scans and settings.ocr:
        from planqa.corpus.ocr import ocr_pages

        for index, result in ocr_pages(
            data, scans, source, settings.ocr_page_seconds, deadline
        ).items():
            budget.add(sum(len(line.text) + 1 for line in result.lines))
            laid_out[index] = (result.width, result.height, result.lines)
            ocr_confidence[index] = result.confidence
    keys = furniture_keys([(height, lines) for _, height, lines in laid_out])
    bodies = [drop_furniture(lines, height, keys) for _, height, lines in laid_out]
    margin = usual_margin([b for i, b in enumerate(bodies) if i not in ocr_confidence])
    pieces = [
        _page_piece(width, body, 0.0 if index in ocr_confidence else margin)
        for index, ((width, _, _), body) in enumerate(zip(laid_out, bodies, strict=True))
    ]
    text, starts = join_pages(pieces)
    if not text.strip():
        hint = " (turn on OCR: ocr = true)" if scans else ""
        raise DocumentError(f"{source}: no extractable text in this PDF{hint}")
    ocr = tuple(sorted(ocr_confidence))
    return Extracted(
        text,
        "pdf",
        page_starts=starts,
        ocr_pages=tuple(i + 1 for i in ocr),
        ocr_confidence=tuple(round(ocr_confidence[i], 3) for i in ocr),
        hints=hints,
    )


def _page_lines(page: Any) -> tuple[list[Line], bool]:
    """The page's text lines and tables (as :class:`_TableLine`), sorted top to bottom, and
    whether it is a scan (next to no characters but an image)."""
    chars = [c for c in page.chars if c.get("upright", True)]
    visible = sum(1 for c in chars if not c["text"].isspace())
    if visible < SCAN_MAX_CHARS and page.images:
        return [], True
    tables = []
    for table in page.find_tables():
        rows = table.extract()
        if len(rows) >= _MIN_TABLE_ROWS and max(len(r) for r in rows) >= _MIN_TABLE_COLUMNS:
            tables.append((table.bbox, rows))
    if tables:
        chars = [c for c in chars if not any(_inside(c, bbox) for bbox, _ in tables)]
    lines = chars_to_lines(chars)
    for (x0, top, x1, bottom), rows in tables:
        rendered = "\n".join(table_lines(rows))
        if rendered:
            lines.append(_TableLine(rendered, x0, x1, top, bottom, 10.0))
    lines.sort(key=lambda line: line.top)
    return lines, False


def _inside(char: dict, bbox: tuple[float, float, float, float]) -> bool:
    x0, top, x1, bottom = bbox
    middle_x, middle_y = (char["x0"] + char["x1"]) / 2, (char["top"] + char["bottom"]) / 2
    return x0 <= middle_x <= x1 and top <= middle_y <= bottom


def _page_piece(width: float, lines: list[Line], margin: float) -> PagePiece:
    """One page's text: each column run rejoined into paragraphs, tables on lines of their own,
    a paragraph running from one column (or run) into the next rejoined too."""
    pieces: list[PagePiece] = []
    for run, run_margin in split_columns(lines, width, margin):
        stretch: list[Line] = []
        for line in [*run, None]:
            if line is None or isinstance(line, _TableLine):
                if stretch:
                    pieces.append(PagePiece(*paragraphs(stretch, run_margin)))
                    stretch = []
                if line is not None:
                    pieces.append(PagePiece(line.text))
            else:
                stretch.append(line)
    text, _ = join_pages(pieces)
    if not pieces:
        return PagePiece("")
    return PagePiece(text, pieces[0].opens, pieces[-1].runs_on)


def _hints(info: dict) -> FileHints:
    """Title, date and author from the PDF info dictionary (values may be bytes or objects)."""

    def value(key: str) -> str:
        item = info.get(key)
        if isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        return " ".join(str(item).split()) if item else ""

    title = value("Title")
    if title.lower() in ("untitled", "unspecified", "anonymous") or title.endswith(
        (".doc", ".docx", ".wps")
    ):
        title = ""  # what converters write when the author set none
    author = value("Author")
    if author.lower() in ("anonymous", "unspecified", "administrator", "user"):
        author = ""
    return FileHints(title, iso_date(value("CreationDate") or value("ModDate")), author)


def _read_with_pypdf(
    data: bytes, source: str, deadline: Deadline, budget: TextBudget, first_error: Exception
) -> Extracted:
    """The text stream pypdf gives, page by page: no layout, but the pages are kept."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        deadline.check()
        pieces: list[PagePiece] = []
        for page in reader.pages:
            text = page.extract_text() or ""
            budget.add(len(text) + 1)
            pieces.append(PagePiece(text))
            deadline.check()
        info = reader.metadata or {}
    except DocumentError:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files
        raise DocumentError(
            f"{source}: cannot extract text from this .pdf file ({first_error}; pypdf: {exc})"
        ) from exc
    text, starts = join_pages(pieces)
    if not text.strip():
        raise DocumentError(f"{source}: no extractable text (a scanned .pdf? run OCR first)")
    hints = _hints({k.lstrip("/"): v for k, v in dict(info).items()})
    return Extracted(text, "pdf", page_starts=starts, hints=hints)
