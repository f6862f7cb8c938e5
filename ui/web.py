"""Entry points of the web UI (``planqa serve``): :func:`build_app` and :func:`serve`.

The page is assembled in :mod:`ui.app` from one module per tab (``ui/tab_*.py``). This module
decides *how* the UI is served, and keeps gradio and the model libraries out of its imports so
that a refused bind fails in a moment instead of after loading them.

* **Loopback by default.** The UI may be given documents that are not public, so binding any
  other address needs ``allow_remote``, and a remote bind without ``PLANQA_UI_USER`` /
  ``PLANQA_UI_PASSWORD`` (gradio's login) gets a warning on stderr.
* **Queued.** At most ``concurrency`` searches/answers run at once and ``max_queue`` wait, so
  many simultaneous users are served in turn rather than crashing the server.
* **An HTTP JSON API** under ``/api/v1`` (:mod:`ui.api`) on the same live index, bearer tokens
  when ``api_tokens_file`` is set, refused on a non-loopback address without them. Its write
  endpoints (uploads and removals, indexed by background jobs: ui/api_documents.py) change
  ``corpus_dir`` and the index unless ``read_only`` (``planqa serve --read-only``).
* **Guarded.** Only ``/ask`` is callable without the page, uploads are capped at
  ``Settings.max_upload_bytes`` and failed logins back off per client (:mod:`ui.security`).
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from planqa.corpus.errors import InputError
from planqa.corpus.settings import Settings

if TYPE_CHECKING:
    import gradio as gr

    from planqa.rag.pipeline import Pipeline
    from planqa.ui.corpus_writer import CorpusWriter
    from planqa.ui.index_watch import LiveIndex
    from planqa.ui.security import LoginThrottle

USER_ENV, PASSWORD_ENV = "PLANQA_UI_USER", "PLANQA_UI_PASSWORD"
ADMIN_USER_ENV, ADMIN_PASSWORD_ENV = "PLANQA_UI_ADMIN_USER", "PLANQA_UI_ADMIN_PASSWORD"


def build_app(
    pipeline: Pipeline | LiveIndex,
    *,
    concurrency: int = 4,
    max_queue: int = 64,
    runs_dir: Path | None = None,
    verdicts: Path | None = None,
    writer: CorpusWriter | None = None,
    writers: frozenset[str] | None = None,
) -> gr.Blocks:
    """The Blocks app over a loaded pipeline, queued (``concurrency`` at a time, ``max_queue``
    waiting). Launch it with ``ui.app.launch_style()`` options (gradio 6 takes the theme and
    CSS in ``launch``), or use :func:`serve`. ``runs_dir`` and ``verdicts`` are the 评测 tab's
    run folder and verdict store (defaults: ``./runs`` and ``./runs/verdicts.sqlite3``);
    ``writer`` gives the 文档 tab its 知识库 section, ``writers`` who may use it (see
    :func:`ui.app.build_blocks`)."""
    from planqa.ui.app import build_blocks

    return build_blocks(
        pipeline,
        concurrency=concurrency,
        max_queue=max_queue,
        runs_dir=runs_dir,
        verdicts=verdicts,
        writer=writer,
        writers=writers,
    )


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, "localhost")."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def login_from_env(
    user_env: str = USER_ENV, password_env: str = PASSWORD_ENV
) -> tuple[str, str] | None:
    """The optional login (``PLANQA_UI_USER`` / ``PLANQA_UI_PASSWORD``); both or neither."""
    user, password = os.environ.get(user_env, ""), os.environ.get(password_env, "")
    if bool(user) != bool(password):
        raise InputError(
            f"set both {user_env} and {password_env} to require a login, or neither for none"
        )
    return (user, password) if user else None


def logins_from_env() -> tuple[list[tuple[str, str]] | None, frozenset[str] | None]:
    """(gradio's logins, the users who may change the collection in the page).

    The admin login (``PLANQA_UI_ADMIN_USER`` / ``…_PASSWORD``) is the one that may upload,
    edit and delete; with it, the ordinary login only reads. Without it, whoever may open the
    page may write (None), as a single-user server always did."""
    login, admin = login_from_env(), login_from_env(ADMIN_USER_ENV, ADMIN_PASSWORD_ENV)
    if login and admin and login[0] == admin[0]:
        raise InputError(f"{USER_ENV} and {ADMIN_USER_ENV} must name different users")
    logins = [pair for pair in (login, admin) if pair]
    return logins or None, frozenset({admin[0]}) if admin else None


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback address unless the user asked for it explicitly."""
    if not is_loopback(host) and not allow_remote:
        raise InputError(
            f"refusing to bind {host}: the UI would be reachable from other machines. "
            "Use --host 127.0.0.1 (the default), or pass --allow-remote and set "
            f"{USER_ENV}/{PASSWORD_ENV} to require a login"
        )


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 7860,
    allow_remote: bool = False,
    *,
    block: bool = True,
    pipeline: Pipeline | None = None,
    runs_dir: Path | None = None,
    verdicts: Path | None = None,
    login_throttle: LoginThrottle | None = None,
    read_only: bool = False,
) -> gr.Blocks:
    """Start the UI on http://host:port. With ``block=False`` the server runs in a background
    thread and the running app is returned (call ``.close()`` to stop it). ``runs_dir`` and
    ``verdicts``: see :func:`build_app`; ``login_throttle``: the login back-off (default
    :class:`ui.security.LoginThrottle`'s 5 free failures, then 1 s doubling up to 60 s).
    ``read_only``: the API's upload and removal endpoints answer 403 and the page has no
    知识库 section."""
    check_bind(host, allow_remote)
    auth, writers = logins_from_env()
    if auth is None and not is_loopback(host):
        print(
            f"warning: serving on {host} without a login; anyone who can reach port {port} can "
            f"use planqa. Set {USER_ENV} and {PASSWORD_ENV} to require one.",
            file=sys.stderr,
        )
    from starlette.middleware import Middleware
    from starlette.routing import Mount

    from planqa.rag.pipeline import Pipeline
    from planqa.ui.api import API_PATH, build_api, read_token_digests
    from planqa.ui.app import launch_style
    from planqa.ui.corpus_writer import CorpusWriter
    from planqa.ui.index_watch import LiveIndex
    from planqa.ui.page_locale import ChineseLocale
    from planqa.ui.security import guard_middleware

    # Before the models load: a bad tokens file is reported at once.
    digests = read_token_digests(settings.api_tokens_file) if settings.api_tokens_file else None
    live = LiveIndex(pipeline or Pipeline.open(settings))
    # One writer (and one job runner) for the API and the page's 知识库 section alike.
    writer = None if read_only else CorpusWriter(settings, live)
    if writer is not None:
        writer.start_upgrade()  # an index built fast first: upgraded while it answers
    app = build_app(live, runs_dir=runs_dir, verdicts=verdicts, writer=writer, writers=writers)
    refuse = None
    if digests is None and not is_loopback(host):
        refuse = f"the HTTP API needs tokens when served on {host}: set PLANQA_API_TOKENS_FILE"
    api = build_api(live.current, token_digests=digests, refuse_all=refuse, writer=writer)
    try:
        app.launch(
            server_name=host,
            server_port=port,
            auth=auth,
            auth_message="planqa：请输入用户名和密码" if auth else None,
            share=False,
            ssr_mode=False,
            inbrowser=False,
            prevent_thread_lock=not block,
            quiet=not block,
            # No footer: its links ("Use via API", "Built with Gradio", "Settings") are
            # English; the API is documented in docs/api.md and ui/api.py.
            footer_links=[],
            mcp_server=False,
            max_file_size=settings.max_upload_bytes,
            app_kwargs={
                "middleware": [*guard_middleware(app, login_throttle), Middleware(ChineseLocale)],
                "routes": [Mount(API_PATH, app=api)],
            },
            **launch_style(),
        )
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc}); choose another --port") from exc
    return app
