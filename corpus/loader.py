"""Reading a corpus folder: each supported file becomes a Document, each failure a problem.

One unreadable file must not stop the rest of the corpus from loading, so failures are collected
and reported, not raised. Duplicate texts under different names are kept once (the first by name).

The bytes, not the name, choose the reader (corpus/formats.py): PDFs (layout, tables, pages and
OCR of scans: corpus/pdf.py), .docx/.doc (corpus/word.py), saved web pages (corpus/web.py) and
text. Metadata the format itself carries (PDF info, docx core properties, <title>/<meta>) backs
the inference where the text is silent, and a PDF's page starts go into the metadata so that
citations can name their page.

Hostile files are among the failures: what a file inflates to, the text it yields and the time it
takes are capped (corpus/guards.py, limits in Settings); a link out of the corpus folder is not
followed (it would index and show a file its owner never put in the corpus); a file that is only
a table of contents or headings is refused like an empty one. Every reported problem is one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from planqa.corpus.documents import Document
from planqa.corpus.errors import DocumentError
from planqa.corpus.formats import RICH_SUFFIXES, TEXT_SUFFIXES, extract, import_reader, sniff
from planqa.corpus.furniture import TOC_HEADER_RE
from planqa.corpus.guards import shown, within_time
from planqa.corpus.heading_forms import SENTENCE_END_CHARS
from planqa.corpus.inference import infer_meta
from planqa.corpus.metadata import MANIFEST_NAME, load_manifest
from planqa.corpus.settings import Settings
from planqa.corpus.structure import MAX_COVER_CHARS, parse_structure

SUPPORTED_SUFFIXES = TEXT_SUFFIXES + RICH_SUFFIXES
#: Larger files are almost certainly not one planning document; refuse rather than stall indexing.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Texts up to this long are checked for body text: a table of contents or a list of headings
#: is far shorter, and parsing every long text twice (here and when chunking) would cost seconds.
BODY_CHECK_MAX_CHARS = 100_000


@dataclass(frozen=True)
class LoadProblem:
    """A file that was not loaded, as a user is shown it: ``path`` and ``reason`` are one line
    each, with control characters in names escaped (:func:`corpus.guards.shown`), so that
    ``f"skipped {path}: {reason}"`` is one line whatever the file is called."""

    path: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", shown(self.path))
        object.__setattr__(self, "reason", shown(self.reason))


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
            raise DocumentError(f"{shown(path)}: no such file or folder")
    return files


def read_document(
    path: Path, manifest: dict | None = None, settings: Settings | None = None
) -> Document:
    """Decode one file and attach its metadata (manifest entry by file name, else inferred).

    ``settings`` supplies the limits on hostile files (default: ``Settings()``, i.e. the
    environment and the configuration file)."""
    settings = settings or Settings()
    source = shown(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(
            f"{source}: unsupported file type {suffix!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DocumentError(
                f"{source}: {size / 2**20:.0f} MiB is over the {MAX_FILE_BYTES // 2**20} MiB "
                "limit; split the file"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{source}: cannot read ({exc.strerror or exc})") from exc
    kind = sniff(data, suffix)
    import_reader(kind, source)  # before the clock starts: an alarm must not cut an import
    extracted, encoding = within_time(
        source, settings, lambda deadline: extract(data, kind, source, settings, deadline)
    )
    text = extracted.text
    _require_body(text, source)
    manifest = manifest if manifest is not None else load_manifest(path.parent)
    meta = manifest.get(path.name) or infer_meta(path.name, text, extracted.hints)
    if extracted.page_starts:
        meta = replace(
            meta,
            page_starts=extracted.page_starts,
            ocr_pages=extracted.ocr_pages,
            ocr_confidence=extracted.ocr_confidence,
        )
    return Document(meta=meta, text=text, encoding=encoding)


def _require_body(text: str, source: str) -> None:
    """Refuse a text with nothing to retrieve, as an empty file is refused.

    A file holding only a table of contents became one chunk 「目  录」 (its entries are dropped
    as TOC lines, the 目录 line stayed) under a region guessed from the file name; a file of
    only headings, or of a title page and a TOC, is no better. Such a file is a stub or a
    failed export, and the user should hear so rather than search it.
    """
    if len(text) > BODY_CHECK_MAX_CHARS:
        return
    structure = parse_structure(text)
    had_toc = any(reason == "toc" for *_, reason in structure.dropped)
    bodies: list[tuple[tuple[str, ...], str]] = []
    for section in structure.sections:
        lines = [line.strip() for line in text[section.start : section.end].splitlines()]
        kept = [line for line in lines if line and not TOC_HEADER_RE.match(line)]
        had_toc = had_toc or len(kept) < len([line for line in lines if line])
        if kept:
            bodies.append((section.path, "\n".join(kept)))
    title_only = had_toc and all(
        not path and len(body) <= MAX_COVER_CHARS and not any(c in SENTENCE_END_CHARS for c in body)
        for path, body in bodies
    )
    if not bodies or title_only:
        raise DocumentError(
            f"{source}: no body text, only a table of contents, headings or a title; add the "
            "document's text or remove it from the corpus"
        )


def load_corpus(paths: list[Path], settings: Settings | None = None) -> CorpusLoad:
    """Load every supported file below ``paths``; unreadable and duplicate files become problems.

    ``settings`` supplies the limits on hostile files and ``follow_external_symlinks``
    (default: ``Settings()``, i.e. the environment and the configuration file)."""
    settings = settings or Settings()
    result = CorpusLoad()
    manifests: dict[Path, dict] = {}
    seen_hashes: dict[str, str] = {}
    seen_names: set[str] = set()
    files = find_document_files(paths)
    skipped_links = _skipped_links(paths, files, settings)
    for path in files:
        if path in skipped_links:
            result.problems.append(LoadProblem(str(path), skipped_links[path]))
            continue
        try:
            manifest = manifests.setdefault(path.parent, load_manifest(path.parent))
            document = read_document(path, manifest, settings)
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


def _skipped_links(paths: list[Path], files: list[Path], settings: Settings) -> dict[Path, str]:
    """Why each skipped symbolic link among ``files`` is skipped.

    A link found in a corpus folder whose target lies outside that folder is not followed
    unless ``follow_external_symlinks``: it indexed, and showed to anyone searching, a file its
    owner never put in the corpus. (A file named on the command line is read wherever it
    points: the user chose it.) A link to a file that is also read under its own name, or
    through an earlier link, is skipped so that no file is indexed twice.
    """
    roots = [path for path in paths if path.is_dir()]
    real = {file.resolve(): file for file in files if not file.is_symlink()}
    linked: dict[Path, Path] = {}
    reasons: dict[Path, str] = {}
    for file in files:
        if not file.is_symlink():
            continue
        try:
            target = file.resolve(strict=True)
        except (OSError, RuntimeError) as exc:  # a loop, or deleted since the listing
            reasons[file] = f"a link that cannot be resolved ({exc}); skipped"
            continue
        root = next((root for root in roots if file.is_relative_to(root)), None)
        if (
            root is not None
            and not target.is_relative_to(root.resolve())
            and not settings.follow_external_symlinks
        ):
            reasons[file] = (
                f"a link to {shown(target)}, outside the corpus folder {shown(root)}; not "
                "followed (set follow_external_symlinks = true, or PLANQA_FOLLOW_EXTERNAL_"
                "SYMLINKS=1, to index links that leave the folder)"
            )
        elif target in real:
            reasons[file] = f"a link to {shown(real[target])}, read under its own name; skipped"
        elif target in linked:
            reasons[file] = f"a link to the same file as {shown(linked[target])}; skipped"
        else:
            linked[target] = file
    return reasons
