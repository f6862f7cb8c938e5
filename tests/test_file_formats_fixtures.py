"""Fixture files for the file-format tests, made here rather than stored or fetched.

PDFs are drawn with reportlab in its built-in Adobe CJK font (STSong-Light: a text layer whose
characters map back to Unicode, as a Word export's does); the scanned page is text drawn onto an
image with a Noto CJK font from Debian's fonts-noto-cjk and placed in a PDF without a text layer.
Pages are A4 in points; ``top`` values below count from the top of the page, as pdfplumber does.
"""

from __future__ import annotations

import glob
import io
from collections.abc import Iterable
from pathlib import Path

import pytest

FONT = "STSong-Light"
PAGE_WIDTH, PAGE_HEIGHT = 595.0, 842.0
MARGIN = 72.0
SIZE = 11.0
LEADING = 18.0


def cjk_font_file() -> str:
    """A Noto CJK font file (.ttc/.otf) from /usr/share/fonts; skips the test without one."""
    found = sorted(glob.glob("/usr/share/fonts/**/NotoSansCJK*Regular*.tt[cf]", recursive=True))
    found += sorted(glob.glob("/usr/share/fonts/**/Noto*CJK*.[ot]t[cf]", recursive=True))
    if not found:
        pytest.skip("no Noto CJK font (apt-get install fonts-noto-cjk)")
    return found[0]


def _canvas(target: Path | io.BytesIO, title: str = "", author: str = ""):
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    pdf = canvas.Canvas(str(target) if isinstance(target, Path) else target)
    pdf.setPageSize((PAGE_WIDTH, PAGE_HEIGHT))
    if title:
        pdf.setTitle(title)
    if author:
        pdf.setAuthor(author)
    return pdf


def wrap(text: str, width: float, size: float = SIZE) -> list[str]:
    """``text`` broken into lines no wider than ``width`` points, character by character."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, line = [], ""
    for char in text:
        if line and stringWidth(line + char, FONT, size) > width:
            lines.append(line)
            line = ""
        line += char
    return [*lines, line]


def draw_lines(pdf, lines: Iterable[str], x: float, top: float, size: float = SIZE) -> float:
    """Draw ``lines`` from ``top`` down; the ``top`` after the last line."""
    pdf.setFont(FONT, size)
    for line in lines:
        pdf.drawString(x, PAGE_HEIGHT - top - size, line)
        top += LEADING
    return top


def furniture(pdf, page: int, header: str) -> None:
    """A running header and a 「- n -」 page number, as government PDFs have them."""
    pdf.setFont(FONT, 9)
    pdf.drawCentredString(PAGE_WIDTH / 2, PAGE_HEIGHT - 40, header)
    pdf.drawCentredString(PAGE_WIDTH / 2, 30, f"- {page} -")


def text_pdf(
    path: Path,
    lines: list[str],
    *,
    header: str = "",
    title: str = "",
    author: str = "",
    width: float = PAGE_WIDTH - 2 * MARGIN,
) -> int:
    """A one-column PDF: each item of ``lines`` a paragraph wrapped to ``width`` (an empty one a
    blank line), pages filled top to bottom, with a header and page number when ``header``.
    Returns the number of pages."""
    pdf = _canvas(path, title, author)
    bottom = PAGE_HEIGHT - MARGIN
    page, top = 1, MARGIN
    for paragraph in lines:
        for line in wrap(paragraph, width) if paragraph else [""]:
            if top + LEADING > bottom:
                if header:
                    furniture(pdf, page, header)
                pdf.showPage()
                page, top = page + 1, MARGIN
            top = draw_lines(pdf, [line], MARGIN, top)
    if header:
        furniture(pdf, page, header)
    pdf.showPage()
    pdf.save()
    return page


def two_column_pdf(path: Path, title: str, left: list[str], right: list[str]) -> None:
    """A title across the page over two columns of paragraphs (left read before right)."""
    pdf = _canvas(path)
    pdf.setFont(FONT, 16)
    pdf.drawCentredString(PAGE_WIDTH / 2, PAGE_HEIGHT - MARGIN - 16, title)
    column = (PAGE_WIDTH - 2 * MARGIN - 30) / 2
    for x, paragraphs in ((MARGIN, left), (MARGIN + column + 30, right)):
        top = MARGIN + 40
        for paragraph in paragraphs:
            top = draw_lines(pdf, wrap(paragraph, column), x, top) + LEADING
    pdf.showPage()
    pdf.save()


def table_pdf(path: Path, before: str, rows: list[list[str]], after: str) -> None:
    """A paragraph, a ruled table (first row its header), a paragraph."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Table, TableStyle

    pdf = _canvas(path)
    top = draw_lines(pdf, wrap(before, PAGE_WIDTH - 2 * MARGIN), MARGIN, MARGIN) + LEADING
    table = Table(rows, colWidths=None, rowHeights=8 * mm)
    table.setStyle(
        TableStyle(
            [("FONT", (0, 0), (-1, -1), FONT, 10), ("GRID", (0, 0), (-1, -1), 0.5, (0, 0, 0))]
        )
    )
    _, height = table.wrapOn(pdf, PAGE_WIDTH - 2 * MARGIN, PAGE_HEIGHT)
    table.drawOn(pdf, MARGIN, PAGE_HEIGHT - top - height)
    top += height + LEADING
    draw_lines(pdf, wrap(after, PAGE_WIDTH - 2 * MARGIN), MARGIN, top)
    pdf.showPage()
    pdf.save()


def scan_image(lines: list[str], *, size: int = 40, width: int = 1654, height: int = 2339):
    """An A4 page at 200 dpi (PIL image) with ``lines`` drawn in a Noto CJK font, as a scanner
    would give a printed page: the text exists only as pixels."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(cjk_font_file(), size)
    top = 200
    for line in lines:
        draw.text((200, top), line, font=font, fill="black")
        top += int(size * 1.8)
    return image


def scanned_pdf(path: Path, pages: list[list[str]], text_page: list[str] | None = None) -> None:
    """A PDF of scanned pages (images only), optionally followed by one page with text."""
    from reportlab.lib.utils import ImageReader

    pdf = _canvas(path)
    for lines in pages:
        buffer = io.BytesIO()
        scan_image(lines).save(buffer, format="PNG")
        buffer.seek(0)
        pdf.drawImage(ImageReader(buffer), 0, 0, PAGE_WIDTH, PAGE_HEIGHT)
        pdf.showPage()
    if text_page:
        draw_lines(pdf, text_page, MARGIN, MARGIN)
        pdf.showPage()
    pdf.save()
