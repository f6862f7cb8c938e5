"""The write half of the HTTP API: documents in, documents out, and the jobs doing it.

::

    GET    /api/v1/documents               → the indexed documents (id = file name)
    GET    /api/v1/documents/{id}          → one document's metadata and indexing record
    GET    /api/v1/documents/{id}/file     → its original file, as an attachment
    POST   /api/v1/documents[?replace=true] multipart, one or more files (and optional metadata
                                            fields for them) → 202 + a job per file
    PATCH  /api/v1/documents/{id}          JSON metadata edit → 202 + the re-indexing job
    DELETE /api/v1/documents/{id}          → 202 + the removal's job (404 for an unknown id)
    GET    /api/v1/jobs/{id}               → queued / running (stage, done/total) / indexed / failed

Indexing runs in the background (ui/jobs.py, one job at a time); the corpus folder and index
are changed by ui/corpus_writer.py. A server started with ``planqa serve --read-only`` (or an
API built without a writer) lists documents and jobs but refuses uploads and removals with 403.

The body of an upload is counted while it is read: more than :func:`body_limit` bytes (a declared
``Content-Length`` or the bytes actually received, whichever shows it first) is refused with
413 before the rest is read, so a client cannot fill the disk; each file must then be at most
``max_upload_bytes``. Starlette's multipart parser does the parsing (file parts are spooled to
temporary files, at most :data:`MAX_FILES` of them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from planqa.corpus.errors import DocumentError, InputError
from planqa.corpus.manifest_edits import EDITABLE_FIELDS, checked_edit
from planqa.ui.corpus_writer import (
    ApiError,
    CorpusWriter,
    original_file,
    require_indexed,
    safe_file_name,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from planqa.corpus.settings import Settings
    from planqa.rag.pipeline import Pipeline
    from planqa.ui.jobs import JobRunner

#: Files one upload request may carry.
MAX_FILES = 16
#: The most bytes of JSON a metadata edit may have (its fields are short).
MAX_EDIT_BYTES = 1 << 16
#: Room for the multipart boundaries and headers around the files.
MULTIPART_OVERHEAD = 1 << 20
READ_ONLY = (
    "this server is read-only (planqa serve --read-only): documents cannot be uploaded, "
    "edited or removed through it; use planqa index, or a server started without --read-only"
)
_METADATA_FIELDS = {
    name: {"type": "string", "description": f"metadata for every file of the upload: {name}"}
    for name in (*EDITABLE_FIELDS, "aliases")
}

_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": ".txt/.md/.docx/.pdf/.html files, one field each",
                        },
                        **_METADATA_FIELDS,
                    },
                    "required": ["file"],
                }
            }
        },
    }
}
_EDIT_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        **{name: {"type": "string"} for name in EDITABLE_FIELDS},
                        "aliases": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "example": {"region": "连云港市海州区", "aliases": ["海州区", "海州"]},
            }
        },
    }
}


def body_limit(settings: Settings) -> int:
    """The most bytes an upload request may have: every file at its limit, plus overhead."""
    return settings.max_upload_bytes * MAX_FILES + MULTIPART_OVERHEAD


def documents_router(current: Callable[[], Pipeline], writer: CorpusWriter | None) -> APIRouter:
    """The routes above, over ``current`` (the pipeline a request starting now uses) and
    ``writer`` (None: read-only)."""
    router = APIRouter()

    def writable() -> CorpusWriter:
        if writer is None:
            raise ApiError(403, READ_ONLY)
        return writer

    def runner() -> JobRunner | None:
        return writer.runner if writer is not None else None

    @router.get("/documents", summary="The indexed documents")
    def list_documents() -> dict[str, Any]:
        contents = current().searcher.contents
        catalogue = contents.manifest.catalogue()
        return {
            "index_version": contents.directory.name,
            "index_created": contents.manifest.created,
            "documents": [
                document_record(contents, name, catalogue) for name in contents.documents
            ],
        }

    @router.get("/documents/{doc_id}", summary="One document's metadata and indexing record")
    def get_document(doc_id: str) -> dict[str, Any]:
        contents = current().searcher.contents
        require_indexed(contents.documents, doc_id)
        return document_record(contents, doc_id, contents.manifest.catalogue())

    @router.get(
        "/documents/{doc_id}/file",
        summary="The document's original file (always an attachment, never rendered)",
        response_class=FileResponse,
    )
    def download(doc_id: str) -> FileResponse:
        pipeline = current()
        require_indexed(pipeline.searcher.documents, doc_id)
        path = original_file(pipeline.settings.corpus_dir, doc_id)
        return FileResponse(
            path,
            filename=doc_id,
            media_type="application/octet-stream",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    @router.patch(
        "/documents/{doc_id}",
        status_code=202,
        summary="Edit a document's metadata; a background job re-indexes it",
        openapi_extra=_EDIT_SCHEMA,
        response_model=None,
    )
    async def edit(doc_id: str, request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_EDIT_BYTES:
            raise ApiError(413, f"a metadata edit is at most {MAX_EDIT_BYTES:,} bytes of JSON")
        try:
            fields = await request.json()
        except ValueError as exc:
            raise InputError(f"the body is not JSON ({exc}); send a JSON object of fields") from exc
        target = writable()
        job = await run_in_threadpool(target.submit_edit, doc_id, checked_edit(fields))
        body = {"jobs": [job.to_dict(target.runner.position(job))]}
        return JSONResponse(body, status_code=202, headers={"Location": f"../jobs/{job.id}"})

    @router.post(
        "/documents",
        status_code=202,
        summary="Upload documents; each is indexed by a background job",
        openapi_extra=_UPLOAD_SCHEMA,
        response_model=None,
    )
    async def upload(
        request: Request,
        replace: bool = Query(default=False, description="Replace a document of the same name."),
    ) -> JSONResponse:
        target = writable()
        settings = target.settings
        limit = body_limit(settings)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        form = await _read_form(request, limit)
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        try:
            fields = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
            edit = checked_edit(fields) if fields else None
            if not files:
                raise InputError("no files in the upload: send multipart/form-data with file=@…")
            for upload_file in files:
                if (upload_file.size or 0) > settings.max_upload_bytes:
                    raise ApiError(
                        413,
                        f"{upload_file.filename!r} is larger than the "
                        f"{settings.max_upload_bytes:,}-byte limit (max_upload_bytes)",
                    )
            staged = await run_in_threadpool(_stage_all, target, files, replace)
        finally:
            await form.close()
        jobs = [target.submit_add(name, path, edit) for name, path in staged]
        body = {"jobs": [job.to_dict(target.runner.position(job)) for job in jobs]}
        return JSONResponse(body, status_code=202, headers={"Location": f"jobs/{jobs[0].id}"})

    @router.delete(
        "/documents/{doc_id}", status_code=202, summary="Remove a document from the corpus"
    )
    def delete(doc_id: str) -> JSONResponse:
        target = writable()
        job = target.submit_delete(doc_id)
        body = {"jobs": [job.to_dict(target.runner.position(job))]}
        return JSONResponse(body, status_code=202, headers={"Location": f"../jobs/{job.id}"})

    @router.get("/jobs/{job_id}", summary="A job's state, progress and error")
    def job_status(job_id: str) -> dict[str, Any]:
        jobs = runner()
        job = jobs.get(job_id) if jobs is not None else None
        if job is None or jobs is None:
            raise DocumentError(f"no job {job_id[:40]!r} (jobs are kept in memory until restart)")
        return job.to_dict(jobs.position(job))

    return router


async def _read_form(request: Request, limit: int) -> Any:
    """The parsed multipart form, counting the body as it arrives (413 past ``limit``)."""
    received = 0
    source = request.receive

    async def counted() -> Any:
        nonlocal received
        message = await source()
        if message.get("type") == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
        return message

    try:
        return await Request(request.scope, counted).form(max_files=MAX_FILES, max_fields=50)
    except HTTPException as exc:  # the parser's refusal (too many files, a broken body)
        raise InputError(f"not a valid multipart upload: {exc.detail}") from exc


def _stage_all(
    writer: CorpusWriter, files: list[UploadFile], replace: bool
) -> list[tuple[str, Path]]:
    """Stage every file or none (a refused one removes those staged before it)."""
    names = [safe_file_name(upload_file.filename) for upload_file in files]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"{', '.join(twice)}: more than one file of that name in the upload")
    staged: list[tuple[str, Path]] = []
    try:
        for upload_file in files:
            staged.append(writer.stage(upload_file.filename, upload_file.file, replace))
    except BaseException:
        for name, path in staged:
            writer.discard(name, path)
        raise
    return staged


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the upload is larger than {limit:,} bytes; send fewer or smaller files")


def document_record(contents: Any, name: str, catalogue: dict[str, Any]) -> dict[str, Any]:
    """What the API says of one indexed document: its metadata (and which fields inference
    left uncertain), and from what text and when it was indexed (``catalogue``, the index
    manifest's entries by file name)."""
    meta = contents.documents[name].meta
    entry = catalogue.get(name, {})
    return {
        "id": name,
        "file": name,
        **{field: getattr(meta, field) for field in EDITABLE_FIELDS},
        "aliases": list(meta.aliases),
        "inferred": meta.inferred,
        "uncertain": list(meta.uncertain),
        "chunks": entry.get("chunks"),
        "sha256": entry.get("sha256"),
        "indexed_at": entry.get("indexed_at"),
    }
