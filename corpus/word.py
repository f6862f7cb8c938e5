"""Word files: .docx paragraphs and tables in document order; .doc converted or refused clearly.

python-docx's ``Document.paragraphs`` skips every table, so a plan's 主要指标 table vanished from
a .docx. The body's children are walked in order instead: a paragraph gives its text, a table
its header and row lines (corpus/tables.py ``table_lines``, as PDFs and web pages do). The core
properties (title, author, created) become file hints for the metadata inference.

A .doc (binary Word 97-2003) is not a zip and python-docx cannot read it. When LibreOffice is
installed (``soffice``/``libreoffice`` on PATH) it is converted to .docx in a temporary folder
within the file's time limit; otherwise the file is refused with the converter to install.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planqa.corpus.errors import DocumentError
from planqa.corpus.extracted import Extracted, FileHints
from planqa.corpus.guards import Deadline, TextBudget, check_zip
from planqa.corpus.tables import table_lines

if TYPE_CHECKING:
    from planqa.corpus.settings import Settings

_CONVERTERS = ("soffice", "libreoffice")


def read_docx(
    data: bytes, source: str, settings: Settings, deadline: Deadline, budget: TextBudget
) -> Extracted:
    """Paragraphs and tables of a .docx in document order, with its core properties."""
    check_zip(data, source, settings)
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        deadline.check()
        parts: list[str] = []
        for item in _body_items(document):
            budget.add(len(item) + bool(parts))  # the joining newline
            parts.append(item)
            deadline.check()
        hints = _hints(document.core_properties)
    except DocumentError:
        raise
    except Exception as exc:  # python-docx raises many types for damaged files
        raise DocumentError(f"{source}: cannot extract text from this .docx file ({exc})") from exc
    text = "\n".join(parts)
    if not text.strip():
        raise DocumentError(f"{source}: no extractable text in this .docx file")
    return Extracted(text, "docx", hints=hints)


def _body_items(document: Any) -> Iterator[str]:
    """Each paragraph's text and each table's lines, in the order the body holds them."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            yield Paragraph(child, document).text
        elif tag == "tbl":
            yield from table_lines(_rows(Table(child, document)))


def _rows(table: Any) -> list[list[str]]:
    """The table's rows as cell texts; a cell merged across columns is given once."""
    rows = []
    for row in table.rows:
        cells: list[str] = []
        seen: list[Any] = []
        for cell in row.cells:
            if any(cell._tc is other for other in seen):  # merged: python-docx repeats it
                continue
            seen.append(cell._tc)
            cells.append(cell.text)
        rows.append(cells)
    return rows


def _hints(properties: Any) -> FileHints:
    created = properties.created
    return FileHints(
        title=" ".join((properties.title or "").split()),
        date=created.date().isoformat() if created else "",
        author=" ".join((properties.author or "").split()),
    )


def read_doc(
    data: bytes, source: str, settings: Settings, deadline: Deadline, budget: TextBudget
) -> Extracted:
    """A Word 97-2003 .doc, converted to .docx by LibreOffice when it is installed."""
    converter = next((path for name in _CONVERTERS if (path := shutil.which(name))), None)
    if converter is None:
        raise DocumentError(
            f"{source}: a Word 97-2003 .doc file, which planqa reads only through LibreOffice "
            "(not installed: apt-get install libreoffice-writer-nogui, or save it as .docx)"
        )
    remaining = max(1.0, deadline.end - _now())
    with tempfile.TemporaryDirectory(prefix="planqa-doc-") as folder:
        original = Path(folder) / "input.doc"
        original.write_bytes(data)
        try:
            subprocess.run(
                [
                    converter,
                    "--headless",
                    "--convert-to",
                    "docx",
                    "--outdir",
                    folder,
                    str(original),
                ],
                check=True,
                capture_output=True,
                timeout=remaining,
            )
        except subprocess.TimeoutExpired as exc:
            raise deadline.error() from exc
        except (OSError, subprocess.CalledProcessError) as exc:
            raise DocumentError(
                f"{source}: LibreOffice could not convert this .doc ({exc})"
            ) from exc
        converted = Path(folder) / "input.docx"
        if not converted.is_file():
            raise DocumentError(f"{source}: LibreOffice wrote no .docx for this .doc")
        extracted = read_docx(converted.read_bytes(), source, settings, deadline, budget)
    return Extracted(extracted.text, "doc", hints=extracted.hints)


def _now() -> float:
    import time

    return time.monotonic()
