"""Reading a corpus folder: each supported file becomes a Document, each failure a problem.

One unreadable file must not stop the rest of the corpus from loading, so failures are collected
and reported, not raised. Duplicate texts under different names are kept once (the first by name).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from corpus.decoding import decode_bytes
from corpus.documents import Document
from corpus.errors import DocumentError
from corpus.inference import infer_meta
from corpus.metadata import MANIFEST_NAME, load_manifest

TEXT_SUFFIXES = (".txt", ".md")
RICH_SUFFIXES = (".docx", ".pdf")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + RICH_SUFFIXES
#: Larger files are almost certainly not one planning document; refuse rather than stall indexing.
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class LoadProblem:
    path: str
    reason: str


@dataclass
class CorpusLoad:
    documents: list[Document] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)


def find_document_files(paths: list[Path]) -> list[Path]:
    """Expand folders into their supported files, sorted so that builds are reproducible."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in SUPPORTED_SUFFIXES
                and p.name != MANIFEST_NAME
            )
        elif path.exists():
            files.append(path)
        else:
            raise DocumentError(f"{path}: no such file or folder")
    return files


def read_document(path: Path, manifest: dict | None = None) -> Document:
    """Decode one file and attach its metadata (manifest entry by file name, else inferred)."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(
            f"{path}: unsupported file type {suffix!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DocumentError(
                f"{path}: {size / 2**20:.0f} MiB is over the {MAX_FILE_BYTES // 2**20} MiB limit; "
                "split the file"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if suffix in TEXT_SUFFIXES:
        text, encoding = decode_bytes(data, str(path))
    else:
        text, encoding = _extract_rich_text(data, suffix, path), suffix.lstrip(".")
    manifest = manifest if manifest is not None else load_manifest(path.parent)
    meta = manifest.get(path.name) or infer_meta(path.name, text)
    return Document(meta=meta, text=text, encoding=encoding)


def _extract_rich_text(data: bytes, suffix: str, path: Path) -> str:
    """Word and PDF files go through python-docx and pypdf; their text then behaves like a .txt."""
    try:
        if suffix == ".docx":
            import docx

            paragraphs = docx.Document(io.BytesIO(data)).paragraphs
            text = "\n".join(paragraph.text for paragraph in paragraphs)
        else:
            import pypdf

            pages = pypdf.PdfReader(io.BytesIO(data)).pages
            text = "\n".join(page.extract_text() or "" for page in pages)
    except Exception as exc:  # the parsers raise many types for damaged files
        raise DocumentError(f"{path}: cannot extract text from this {suffix} file ({exc})") from exc
    if not text.strip():
        raise DocumentError(f"{path}: no extractable text (a scanned {suffix}? run OCR first)")
    return text


def load_corpus(paths: list[Path]) -> CorpusLoad:
    """Load every supported file below ``paths``; unreadable and duplicate files become problems."""
    result = CorpusLoad()
    manifests: dict[Path, dict] = {}
    seen_hashes: dict[str, str] = {}
    seen_names: set[str] = set()
    for path in find_document_files(paths):
        try:
            manifest = manifests.setdefault(path.parent, load_manifest(path.parent))
            document = read_document(path, manifest)
        except DocumentError as exc:
            result.problems.append(LoadProblem(str(path), str(exc)))
            continue
        if document.name in seen_names:
            result.problems.append(
                LoadProblem(str(path), f"another file is already named {document.name}; skipped")
            )
            continue
        if document.sha256 in seen_hashes:
            result.problems.append(
                LoadProblem(str(path), f"same text as {seen_hashes[document.sha256]}; skipped")
            )
            continue
        seen_hashes[document.sha256] = document.name
        seen_names.add(document.name)
        result.documents.append(document)
    return result
