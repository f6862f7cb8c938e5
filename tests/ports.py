"""A free loopback port, for the tests that start a real server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from planqa.corpus.settings import Settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(settings: Settings, **options: Any) -> Iterator[tuple[str, Any]]:
    """``planqa serve`` on a free loopback port in the background: its URL (ending in /) and the
    running app, stopped on leaving. ``options`` go to :func:`planqa.ui.web.serve`."""
    from planqa.ui.web import serve

    port = free_port()
    app = serve(settings, host="127.0.0.1", port=port, block=False, **options)
    try:
        yield f"http://127.0.0.1:{port}/", app
    finally:
        app.close()
