"""The HTTP JSON API under ``/api/v1`` of ``planqa serve``, for systems that are not a browser.

An OA system or a portal asks and searches the way the CLI's ``--json`` does, on the same server
and the same live index as the web UI (:class:`ui.index_watch.LiveIndex`)::

    POST /api/v1/ask      {"question": "…", "region": "…", "mode": "extractive"}  → an answer
    GET  /api/v1/search?q=…&k=10&region=…&doc=…&mode=hybrid                      → passages
    GET  /api/v1/health                                                          → index version
    GET  /api/v1/docs                                                            → OpenAPI docs

and, unless served with ``--read-only``, changes the corpus (ui/api_documents.py: documents
uploaded and removed by background jobs, ``GET /api/v1/jobs/{id}`` to follow them). An
OpenAI-compatible ``POST /api/v1/chat/completions`` answers the last user message
(ui/api_chat.py).

The answer and passage objects are those of ``planqa ask --json`` and ``planqa search --json``.
Errors are JSON ``{"error": {"type", "message", "exit_code"}}`` with the CLI's messages: 400 for
input (422 for a body of the wrong shape), 404 for an unknown document or job, 409 for a name
already taken or busy, 413 for an upload over the limits, 403 for a write to a read-only
server, 503 for an index or model that cannot serve. With ``api_tokens_file`` set, every call needs
``Authorization: Bearer <token>``; the file holds SHA-256 hex digests, one per line, never the
tokens. Bound to a non-loopback address without tokens, the API refuses every call: an API is
what scripts reach first.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from planqa.corpus.errors import (
    DocumentError,
    IndexStoreError,
    InputError,
    ModelError,
    PlanqaError,
)

if TYPE_CHECKING:
    from planqa.rag.pipeline import Pipeline
    from planqa.ui.corpus_writer import CorpusWriter

API_PATH = "/api/v1"
_STATUS = {InputError: 400, DocumentError: 404, IndexStoreError: 503, ModelError: 503}


class AskRequest(BaseModel):
    question: str = Field(description="The question, in Chinese or English.")
    region: str | None = Field(default=None, description="Only this region (name or alias).")
    mode: str = Field(default="extractive", description="extractive or llm.")


def read_token_digests(path: Path) -> frozenset[str]:
    """The SHA-256 hex digests in a tokens file (blank lines and ``#`` comments skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the API tokens file {path} ({exc.strerror})") from exc
    digests = {line.strip().lower() for line in lines if line.strip() and line[0] != "#"}
    bad = [d for d in digests if len(d) != 64 or any(c not in "0123456789abcdef" for c in d)]
    if bad:
        raise InputError(
            f"{path}: every line must be a token's SHA-256 hex digest (64 hex digits); "
            "make one with: printf %s TOKEN | sha256sum"
        )
    return frozenset(digests)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def error_response(exc: PlanqaError) -> JSONResponse:
    status = getattr(exc, "http_status", None) or next(
        (code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500
    )
    body = {"type": type(exc).__name__, "message": str(exc), "exit_code": exc.exit_code}
    return JSONResponse({"error": body}, status_code=status)


def _refusal(status: int, message: str) -> JSONResponse:
    body = {"type": "AuthError", "message": message, "exit_code": 2}
    return JSONResponse({"error": body}, status_code=status)


def build_api(
    current: Callable[[], Pipeline],
    *,
    token_digests: frozenset[str] | None = None,
    refuse_all: str | None = None,
    concurrency: int = 4,
    writer: CorpusWriter | None = None,
) -> FastAPI:
    """The API app over ``current`` (the pipeline a request starting now should use). At most
    ``concurrency`` questions are answered at once; others wait for a turn, like the UI's
    queue. ``refuse_all`` (a message) refuses every call. ``writer`` changes the corpus and
    index for the write endpoints; without one the API is read-only (403 on writes)."""
    from planqa.ui.api_chat import chat_router
    from planqa.ui.api_documents import documents_router
    from planqa.ui.corpus_writer import require_indexed

    api = FastAPI(
        title="planqa API",
        summary="Cited answers and passage search over Chinese planning documents",
        version="1",
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    turns = threading.BoundedSemaphore(max(1, concurrency))

    @api.middleware("http")
    async def authorise(request: Request, call_next: Callable[..., Any]) -> Any:
        if refuse_all:
            return _refusal(403, refuse_all)
        if token_digests and request.url.path not in ("/docs", "/openapi.json"):
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            digest = token_digest(token.strip()) if scheme.lower() == "bearer" else ""
            if not any(hmac.compare_digest(digest, known) for known in token_digests):
                return _refusal(401, "missing or unknown API token (Authorization: Bearer …)")
        return await call_next(request)

    @api.exception_handler(PlanqaError)
    async def planqa_error(_: Request, exc: PlanqaError) -> JSONResponse:
        return error_response(exc)

    @api.post("/ask", summary="Answer a question with citations (as `planqa ask --json`)")
    def ask(request: AskRequest) -> dict[str, Any]:
        with turns:
            answer = current().ask(request.question, mode=request.mode, region=request.region)
        return answer.to_dict()

    @api.get("/search", summary="Rank passages (as `planqa search --json`)")
    def search(
        q: str = Query(description="Question or keywords."),
        k: int = Query(default=10, ge=1, le=100),
        region: str | None = None,
        doc: str | None = None,
        mode: str = "hybrid",
    ) -> dict[str, Any]:
        pipeline = current()
        if doc is not None:
            require_indexed(pipeline.searcher.documents, doc)
        with turns:
            hits = pipeline.searcher.search(q, k, region=region, doc=doc, mode=mode)
        return {"query": q, "hits": [hit.to_dict() for hit in hits]}

    @api.get("/health", summary="Index version and size")
    def health() -> dict[str, Any]:
        from planqa.ui.index_watch import version_of

        pipeline = current()
        searcher = pipeline.searcher
        upgrade = writer.upgrade_job if writer is not None else None
        return {
            "status": "ok",
            "index_version": version_of(pipeline),
            "documents": len(searcher.documents),
            "chunks": len(searcher.contents.chunks),
            "read_only": writer is None,
            "jobs": writer.runner.counts() if writer is not None else {},
            # An index built fast first: the model it answers with, and its upgrade job.
            "embedding_model": (searcher.contents.manifest.embedding or {}).get("model"),
            "upgrade": upgrade.to_dict() if upgrade is not None else None,
        }

    api.include_router(documents_router(current, writer))
    api.include_router(chat_router(current, turns))
    return api
