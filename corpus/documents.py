"""What a document is: its metadata and its text exactly as decoded.

Every offset planqa reports (chunk ``start``/``end``, citations) indexes ``Document.text``. The text
is therefore never rewritten after decoding: cleaning (NBSP, stray spaces) happens on the *views*
built for tokenisation and embedding, not on the stored text, so ``text[start:end]`` is always the
passage a user is shown.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass, field, fields
from pathlib import Path


@dataclass(frozen=True)
class DocumentMeta:
    """Per-document metadata: from the corpus manifest, or inferred from the first lines."""

    file: str
    region: str
    title: str
    aliases: tuple[str, ...] = ()
    kind: str = ""
    period: str = ""
    date: str = ""
    issuer: str = ""
    inferred: bool = False
    #: national / province / prefecture / county / zone; empty when unknown.
    scope: str = ""
    #: Inferred fields the text did not settle (region, kind, period, title): shown for checking.
    uncertain: tuple[str, ...] = ()
    #: Where each page of a paged file (PDF) begins in ``Document.text``: page ``i + 1`` starts
    #: at ``page_starts[i]``. Empty for files without pages (.txt, .docx, web pages).
    page_starts: tuple[int, ...] = ()
    #: The pages (1-based) whose text came from OCR of a scanned image, not from a text layer,
    #: and the recogniser's mean confidence (0..1) on each: such text may hold misreadings, so
    #: a citation into it says 「扫描件识别」.
    ocr_pages: tuple[int, ...] = ()
    ocr_confidence: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        # An index stores the metadata as JSON and rebuilds it with DocumentMeta(**fields):
        # its lists become tuples again, so a metadata read back equals the one written.
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, list):
                object.__setattr__(self, spec.name, tuple(value))

    def page_at(self, offset: int) -> int | None:
        """The page (1-based) holding ``Document.text[offset]``; None for files without pages."""
        if not self.page_starts:
            return None
        return max(1, bisect_right(self.page_starts, offset))

    def is_ocr_page(self, page: int | None) -> bool:
        return page is not None and page in self.ocr_pages

    @property
    def region_names(self) -> tuple[str, ...]:
        """The full region name first, then its aliases, without duplicates."""
        names = [self.region, *self.aliases]
        return tuple(dict.fromkeys(name for name in names if name))


@dataclass(frozen=True)
class Document:
    """A decoded document; ``sha256`` hashes the text, so re-encoding a file changes nothing."""

    meta: DocumentMeta
    text: str
    encoding: str = "utf-8"
    sha256: str = field(default="")

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", text_sha256(self.text))

    @property
    def name(self) -> str:
        return self.meta.file


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    """Streams the file, so hashing a 500 MB model or index file never loads it whole."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
