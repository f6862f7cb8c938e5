"""Which reader a file needs, told by its bytes rather than its name.

A PDF saved as ``.txt`` decoded as mojibake; a page saved as ``报告.doc`` by a website (a common
export trick: HTML served as Word) failed as a broken Word file. So the first bytes decide:
``%PDF`` is a PDF, a zip with ``word/document.xml`` a .docx, the OLE2 signature a Word 97 file,
MIME headers with multipart/related a .mhtml, markup an HTML page. Only bytes that match no
format fall back to the name: a ``.pdf`` of garbage still goes to the PDF reader, whose error
says what is wrong, and everything else is read as text.
"""

from __future__ import annotations

import importlib
import io
import zipfile
from typing import TYPE_CHECKING

from planqa.corpus.decoding import decode_bytes
from planqa.corpus.errors import DocumentError
from planqa.corpus.extracted import Extracted
from planqa.corpus.guards import Deadline, TextBudget
from planqa.corpus.web import looks_like_html, looks_like_mhtml

if TYPE_CHECKING:
    from planqa.corpus.settings import Settings

TEXT_SUFFIXES = (".txt", ".md")
RICH_SUFFIXES = (".docx", ".pdf", ".doc", ".html", ".htm", ".mhtml", ".mht")
#: The formats by name, and what a file with that suffix is taken for when its bytes say nothing.
_BY_SUFFIX = {".pdf": "pdf", ".docx": "docx", ".doc": "doc"}
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: The libraries each format needs, imported before the parse clock starts (an alarm must not
#: cut an import in half) so that a missing one is a clear per-file error.
_LIBRARIES = {
    "pdf": ("pdfplumber", "pypdf"),
    "docx": ("docx",),
    "doc": ("docx",),
    "html": ("trafilatura", "lxml.html"),
    "mhtml": ("trafilatura", "lxml.html"),
}


def sniff(data: bytes, suffix: str) -> str:
    """The format of a file's bytes: pdf, docx, doc, mhtml, html or text."""
    head = data[:4096]
    if head.startswith(b"%PDF") or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "docx" if _is_docx(data) else _BY_SUFFIX.get(suffix, "zip")
    if head.startswith(_OLE2):
        return "doc"
    if looks_like_mhtml(head):
        return "mhtml"
    if looks_like_html(head):
        return "html"
    return _BY_SUFFIX.get(suffix, "text")


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def import_reader(kind: str, source: str) -> None:
    """Import what reading ``kind`` needs, or say which package is missing."""
    for module in _LIBRARIES.get(kind, ()):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise DocumentError(f"{source}: cannot read {kind} files ({exc})") from exc


def extract(
    data: bytes, kind: str, source: str, settings: Settings, deadline: Deadline
) -> tuple[Extracted, str]:
    """``(extracted, encoding)`` of a file's bytes as format ``kind``, within the limits.

    ``encoding`` is the text encoding for plain text files and the format name otherwise, as
    ``Document.encoding`` records it.
    """
    budget = TextBudget(source, settings)
    if kind == "text":
        text, encoding = decode_bytes(data, source)
        budget.add(len(text))
        return Extracted(text, "text"), encoding
    if kind == "zip":
        raise DocumentError(f"{source}: a zip archive that is not a Word .docx; not read")
    if kind == "pdf":
        from planqa.corpus.pdf import read_pdf

        extracted = read_pdf(data, source, settings, deadline, budget)
    elif kind == "docx":
        from planqa.corpus.word import read_docx

        extracted = read_docx(data, source, settings, deadline, budget)
    elif kind == "doc":
        from planqa.corpus.word import read_doc

        extracted = read_doc(data, source, settings, deadline, budget)
    elif kind == "mhtml":
        from planqa.corpus.web import read_mhtml

        extracted = read_mhtml(data, source, deadline, budget)
    else:
        from planqa.corpus.web import read_html

        extracted = read_html(data, source, deadline, budget)
    return extracted, extracted.format
