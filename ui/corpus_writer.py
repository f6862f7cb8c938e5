"""What the API's write endpoints do to the corpus folder and the index (ui/api_documents.py).

Names from a client are never used as paths: :func:`safe_file_name` keeps the last part of the
name only (no ``../``, no absolute path, no drive), drops control and format characters, and
requires a suffix the loader reads; the result is then checked to resolve inside the corpus
folder. An upload is first written beside the corpus documents under a name the loader never
reads (``.planqa-upload-<job>.part``, same filesystem, so moving it in is one ``os.replace``);
its job moves it to its safe name and indexes it with the builder's update path
(:func:`index.builder.build_from_documents` with ``add``, what ``add_documents`` runs, split so
the job can say ``parsing`` and then ``embedding n/N``). If indexing fails, the file is taken
out again (and a replaced file put back), so the corpus folder and the index agree.

A metadata edit (region, aliases, title…; corpus/manifest_edits.py) is written to the corpus
folder's ``manifest.json``, so it survives a restart and a later ``planqa index``, and the one
document is re-indexed with it (its region words change its BM25 tokens and embedding context;
the others keep their rows); if that fails, the manifest is put back. An upload may carry the
same edit, applied before its first indexing.

A removal rebuilds the index from the current version's documents minus the one removed: the
builder keeps every other document's rows, vectors and BM25 entries and only drops that one's,
then the file and its ``manifest.json`` entry leave the corpus folder (a later upload of that
name starts from inference again).
"""

from __future__ import annotations

import os
import shutil
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, TYPE_CHECKING, Any

from planqa.corpus.documents import Document
from planqa.corpus.errors import DocumentError, InputError, PlanqaError
from planqa.corpus.loader import SUPPORTED_SUFFIXES, load_corpus
from planqa.corpus.manifest_edits import (
    edited_meta,
    manifest_entry,
    remove_entry,
    restore,
    write_entry,
)
from planqa.corpus.metadata import MANIFEST_NAME
from planqa.corpus.settings import Settings
from planqa.index.builder import build_from_documents, chunk_documents
from planqa.index.store import IndexStore
from planqa.index.upgrade import pending_upgrade, upgrade_index
from planqa.ui.jobs import CountingEmbedder, Job, JobRunner

if TYPE_CHECKING:
    from planqa.ui.index_watch import LiveIndex

#: Longest file name kept, in characters (ext4 allows 255 bytes; a CJK character is 3).
MAX_NAME_CHARS = 80
STAGED_PREFIX = ".planqa-upload-"


class ApiError(PlanqaError):
    """A refusal with its own HTTP status (409 conflict, 413 too large, 403 read-only)."""

    def __init__(self, status: int, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.http_status = status
        self.exit_code = exit_code


def safe_file_name(raw: str | None) -> str:
    """The name an uploaded file is stored and indexed under, or InputError.

    Only the final component of either path syntax survives (``../../etc/x.txt`` → ``x.txt``,
    ``C:\\a\\b.docx`` → ``b.docx``); control/format characters (category C: NUL, newlines,
    bidi overrides) are removed; leading dots and spaces go (no hidden files, no ``..``)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = PureWindowsPath(PurePosixPath(name.replace("\\", "/")).name).name
    name = "".join(c for c in name if not unicodedata.category(c).startswith("C"))
    name = name.strip().lstrip(". ").strip()
    stem, suffix = os.path.splitext(name)
    suffix = suffix.lower()
    if not stem or suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"cannot store an upload named {shown_name(raw)}: give a file name ending in one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}"
        )
    if name == MANIFEST_NAME:
        raise InputError(f"{MANIFEST_NAME} is the corpus manifest, not a document")
    return stem[: MAX_NAME_CHARS - len(suffix)].rstrip() + suffix


def require_indexed(documents: Mapping[str, object], name: str) -> None:
    """DocumentError (404 in the API) unless ``name`` is one of the index's ``documents``."""
    if name not in documents:
        raise DocumentError(f"no document named {name!r} in the index")


def inside(corpus_dir: Path, name: str) -> Path:
    """``corpus_dir / name``, refused unless it resolves directly inside the corpus folder
    (a symbolic link of that name pointing out is refused too)."""
    root = Path(corpus_dir).resolve()
    path = root / name
    if path.resolve().parent != root:
        raise InputError(f"cannot store {shown_name(name)} in the corpus folder")
    return path


def original_file(corpus_dir: Path, name: str) -> Path:
    """The file an indexed document ``name`` was read from, if it is in ``corpus_dir``: what a
    download serves (never a path a client chose: ``name`` must be an indexed document's)."""
    try:
        path = inside(corpus_dir, name)
    except InputError:
        path = None
    if path is None or not path.is_file():
        raise DocumentError(
            f"the original file of {name!r} is not in the server's corpus folder "
            "(it was indexed from elsewhere)"
        )
    return path


def shown_name(raw: str | None) -> str:
    """A client's name, quoted and shortened for a message (never a path of this server)."""
    text = "".join(c if c.isprintable() else "?" for c in (raw or ""))
    return repr(text[:60])


class CorpusWriter:
    """The corpus folder, the index and the job runner behind the write endpoints."""

    def __init__(self, settings: Settings, live: LiveIndex, runner: JobRunner | None = None):
        self.settings = settings
        self.live = live
        self.runner = runner or JobRunner()
        self.corpus_dir = Path(settings.corpus_dir)
        #: Names staged by a request whose job is not submitted yet (two requests racing for
        #: one name: the second gets 409, as it would once the first job is queued).
        self._claimed: set[str] = set()
        self._claims = threading.Lock()
        #: The vector upgrade of an index built fast first, once started (``start_upgrade``).
        self.upgrade_job: Job | None = None
        self._drop_stale_uploads()

    def start_upgrade(self) -> Job | None:
        """Upgrade an index built fast first to the configured model, beside the job queue
        (index/upgrade.py): uploads go on meanwhile, and the page shows its progress."""
        if pending_upgrade(self.settings):
            self.upgrade_job = self.runner.run_alongside("upgrade", [], self._upgrade)
        return self.upgrade_job

    def _upgrade(self, job: Job) -> dict[str, Any]:
        def step(done: int, total: int) -> None:
            job.progress("embedding", done, total)

        return upgrade_index(self.settings, progress=False, on_progress=step).to_dict()

    def _drop_stale_uploads(self) -> None:
        """Remove uploads a previous server staged and never moved in (it stopped mid-request
        or mid-job): no job of this one can own them, and the loader never reads them."""
        for stale in self.corpus_dir.glob(f"{STAGED_PREFIX}*.part"):
            stale.unlink(missing_ok=True)

    # ----------------------------------------------------------------- uploads
    def stage(self, raw_name: str | None, source: IO[bytes], replace: bool) -> tuple[str, Path]:
        """Copy an upload beside the corpus under a staging name; its safe name and that path."""
        name = safe_file_name(raw_name)
        target = self._inside(name)
        indexed = name in self.live.current().searcher.documents
        with self._claims:
            self._refuse_busy(name)
            if not replace and (target.exists() or indexed):
                raise ApiError(
                    409, f"a document named {name} already exists (?replace=true replaces it)"
                )
            self._claimed.add(name)
        staged = self.corpus_dir / f"{STAGED_PREFIX}{os.urandom(8).hex()}.part"
        try:
            self.corpus_dir.mkdir(parents=True, exist_ok=True)
            with staged.open("xb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
        except BaseException as exc:
            self.discard(name, staged)
            if isinstance(exc, OSError):  # the client is not shown this server's paths
                raise ApiError(
                    503,
                    f"cannot write to the corpus folder ({exc.strerror or exc}); give the server "
                    "a writable corpus_dir, or serve --read-only",
                    exit_code=4,
                ) from exc
            raise
        return name, staged

    def submit_add(self, name: str, staged: Path, edit: dict[str, Any] | None = None) -> Job:
        """Queue the staged upload's job; ``edit`` (checked by ``checked_edit``) is metadata
        the uploader settled, applied instead of inference's values."""
        job = self.runner.submit("add", [name], lambda job: self._add(job, name, staged, edit))
        with self._claims:
            self._claimed.discard(name)
        return job

    def discard(self, name: str, staged: Path) -> None:
        """Forget a staged upload whose request was refused after staging it."""
        staged.unlink(missing_ok=True)
        with self._claims:
            self._claimed.discard(name)

    def _add(
        self, job: Job, name: str, staged: Path, edit: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Move the staged file in and index it, under the index lock for the whole job (a
        ``planqa index`` of the folder meanwhile waits rather than reading a file whose job may
        yet fail); on failure the folder is put back as it was."""
        job.progress("parsing")
        try:
            with self._store().writer_lock(purpose=f"planqa serve: adding {name}"):
                return self._add_locked(job, name, staged, edit)
        finally:
            staged.unlink(missing_ok=True)  # moved in, or left by a failure before the move

    def _add_locked(
        self, job: Job, name: str, staged: Path, edit: dict[str, Any] | None
    ) -> dict[str, Any]:
        target = self._inside(name)
        backup = staged.with_suffix(".old")
        if target.exists():
            os.replace(target, backup)
        os.replace(staged, target)
        manifest_before: bytes | bool | None = False  # False: the manifest was not touched
        try:
            loaded = load_corpus([target], settings=self.settings)
            if not loaded.documents:
                reasons = "; ".join(p.reason for p in loaded.problems) or "not a document"
                raise DocumentError(f"{name}: {reasons.replace(str(target), name)}")
            documents = loaded.documents
            if edit:
                document = _with_meta(documents[0], edit)
                manifest_before = write_entry(self.corpus_dir, manifest_entry(document.meta))
                documents = [document]
            report = self._index(job, documents, problems=loaded.problems)
        except BaseException:
            target.unlink(missing_ok=True)
            if backup.exists():
                os.replace(backup, target)
            if manifest_before is not False:
                restore(self.corpus_dir, manifest_before)
            raise
        backup.unlink(missing_ok=True)
        return self._finished(job, report)

    # ----------------------------------------------------------------- metadata
    def submit_edit(self, name: str, edit: dict[str, Any]) -> Job:
        """Queue a metadata edit (already ``checked_edit``-ed) of the indexed document ``name``."""
        require_indexed(self.live.current().searcher.documents, name)
        with self._claims:
            self._refuse_busy(name)
            return self.runner.submit("edit", [name], lambda job: self._edit(job, name, edit))

    def _edit(self, job: Job, name: str, edit: dict[str, Any]) -> dict[str, Any]:
        """Under the index lock: the manifest entry first, then the document re-indexed with
        it; a failed re-index puts the manifest back."""
        job.progress("parsing")
        store = self._store()
        with store.writer_lock(purpose=f"planqa serve: editing {name}"):
            documents = store.load(mmap=True, settings=self.settings).documents
            require_indexed(documents, name)
            document = documents[name]
            if not self._inside(name).is_file():
                raise ApiError(
                    409,
                    f"{name} was indexed from another folder than this server's corpus_dir; "
                    "edit the manifest.json beside it and run planqa index there",
                )
            edited = _with_meta(document, edit)
            before = write_entry(self.corpus_dir, manifest_entry(edited.meta))
            try:
                report = self._index(job, [edited])
            except BaseException:
                restore(self.corpus_dir, before)
                raise
        return self._finished(job, report)

    def _index(
        self, job: Job, documents: list[Document], problems: list[Any] | None = None
    ) -> dict[str, Any]:
        """Add or replace ``documents`` in the index, counting embedded chunks on ``job``."""
        job.progress("embedding", 0, len(chunk_documents(documents, self.settings)))
        return build_from_documents(
            self.settings,
            documents,
            embedder=CountingEmbedder(self.live.pipeline.searcher.embedder, job),
            add=True,
            progress=False,
            problems=problems or [],
        ).to_dict()

    # ----------------------------------------------------------------- removal
    def submit_delete(self, name: str) -> Job:
        require_indexed(self.live.current().searcher.documents, name)
        with self._claims:
            self._refuse_busy(name)
            return self.runner.submit("delete", [name], lambda job: self._delete(job, name))

    def _delete(self, job: Job, name: str) -> dict[str, Any]:
        """Under the index lock from reading the current documents to publishing the version
        without ``name``: a writer in between would otherwise have its document dropped."""
        job.progress("removing")
        store = self._store()
        with store.writer_lock(purpose=f"planqa serve: removing {name}"):
            return self._delete_locked(job, name, store)

    def _delete_locked(self, job: Job, name: str, store: IndexStore) -> dict[str, Any]:
        documents = store.load(mmap=True, settings=self.settings).documents
        require_indexed(documents, name)
        remaining = [doc for doc_name, doc in documents.items() if doc_name != name]
        if not remaining:
            raise ApiError(409, f"{name} is the index's only document; an index needs one")
        report = build_from_documents(
            self.settings,
            remaining,
            embedder=CountingEmbedder(self.live.pipeline.searcher.embedder, job),
            progress=False,
        )
        try:
            path = self._inside(name)
        except InputError:
            path = None  # indexed from elsewhere under a name no upload could have
        if path is not None:
            path.unlink(missing_ok=True)
            remove_entry(self.corpus_dir, name)
        return self._finished(job, report.to_dict())

    # ----------------------------------------------------------------- shared
    def _store(self) -> IndexStore:
        return IndexStore(
            self.settings.resolved_index_dir, lock_timeout=self.settings.index_lock_timeout
        )

    def _refuse_busy(self, name: str) -> None:
        """409 while a request or job is already changing ``name`` (call under ``_claims``)."""
        busy = self._claimed | {n for job in self.runner.pending() for n in job.documents}
        if name in busy:
            raise ApiError(409, f"{name} is already being indexed or removed; wait for that job")

    def _finished(self, job: Job, report: dict[str, Any]) -> dict[str, Any]:
        """Switch the server to the new version now (the next request needs no check) and
        keep the report's counts for the client."""
        pipeline = self.live.current()
        from planqa.ui.index_watch import version_of

        job.progress("done", job.total, job.total)
        keys = ("documents", "chunks", "embedded", "reused", "added", "changed", "removed")
        return {"index_version": version_of(pipeline), **{k: report[k] for k in keys}}

    def _inside(self, name: str) -> Path:
        return inside(self.corpus_dir, name)


def _with_meta(document: Document, edit: dict[str, Any]) -> Document:
    return replace(document, meta=edited_meta(document.meta, edit))
