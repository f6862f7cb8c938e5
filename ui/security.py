"""What the web server refuses before gradio sees a request: UI handlers called from outside the
page, oversized event bodies, and login attempts during a back-off.

**UI handlers are not an API.** gradio's ``api_visibility="private"`` only hides an event from
the API page and from ``gradio_client``: the browser reaches every handler through
``POST /gradio_api/queue/join`` with its ``fn_index``, and so could any script (an adversarial
probe called all 25 of planqa's that way, and by name through ``/gradio_api/call/<name>`` and
``/gradio_api/run/<name>``). The page this server sends therefore carries a cookie
(``planqa-page-<server id>``: random per server start, HttpOnly, SameSite=Strict), and
:class:`UIGuard` refuses (403) any call of a function that is not public, by index or by name
on any route, plus uploads and component-server calls, without it. The public functions (only
``/ask``, see ui/app.py) stay callable by anyone who can reach the server. This stops direct API
use of the UI's handlers and requests forged by other sites (the cookie is never sent
cross-site); a script that first loads the page is a user of the UI like a browser, which is why
the handlers themselves are confined too (the 评测 tab's folders: ui/paths.py).

**Login back-off.** gradio's ``/login`` accepted 60 wrong passwords in 1.1 s. :class:`LoginThrottle`
lets each client address (the connecting one: a proxy's ``X-Forwarded-For`` can be forged) fail
``free_failures`` times, then makes it wait ``first_delay`` seconds, doubling per failure up to
``max_delay``; attempts during the wait get 429 with ``Retry-After`` and are not checked. An
attempt counts as failed when it starts, so a burst of parallel guesses cannot all slip in
before the first is answered; a successful login clears the address's record.
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/gradio_api"
#: Routes that run an event function; the function is named by ``fn_index`` or by the path.
_EVENT_ROUTES = ("/queue/join", "/run/", "/api/", "/call/")
#: Routes only the page uses (files for the 评测 tab's upload, components' server functions).
_PAGE_ROUTES = ("/upload", "/component_server")
#: The largest event request read here (a question is at most max_query_chars; the UI's biggest
#: events are a few KB). A larger body is refused before it is buffered.
MAX_EVENT_BODY_BYTES = 4 * 2**20
NOT_FROM_PAGE = "这个操作只能在 planqa 的网页中使用（公开的 API 只有 /ask）；请刷新页面后重试。"


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    """Per-client exponential back-off after failed logins (see the module docstring).

    ``clock`` is injectable so the back-off is tested without sleeping.
    """

    def __init__(
        self,
        *,
        free_failures: int = 5,
        first_delay: float = 1.0,
        max_delay: float = 60.0,
        forget_after: float = 900.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_clients = max_clients
        self.clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def delay_after(self, failures: int) -> float:
        """Seconds a client must wait after ``failures`` failed attempts in a row."""
        if failures < self.free_failures:
            return 0.0
        return min(self.first_delay * 2 ** (failures - self.free_failures), self.max_delay)

    def attempt(self, client: str) -> float:
        """Start an attempt: 0 if allowed (it counts as failed until :meth:`succeeded`), else the
        seconds to wait, and the attempt is refused without being counted."""
        with self._lock:
            now = self.clock()
            record = self._record(client)
            if record is not None:
                wait = record.last + self.delay_after(record.count) - now
                if wait > 0:
                    return wait
                record.count += 1
                record.last = now
                self._failures.move_to_end(client)
            else:
                self._failures[client] = _Failures(1, now)
                while len(self._failures) > self.max_clients:
                    self._failures.popitem(last=False)  # the longest quiet client goes first
            return 0.0

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _record(self, client: str) -> _Failures | None:
        record = self._failures.get(client)
        if record is not None and self.clock() - record.last > self.forget_after:
            del self._failures[client]
            return None
        return record


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class UIGuard:
    """ASGI middleware in front of gradio's app (pass it in ``launch(app_kwargs=...)``, see
    :func:`guard_middleware`): the page cookie, the event-call check, the login back-off."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        blocks: Any,
        throttle: LoginThrottle,
        token: str,
        cookie: str,
        max_body: int = MAX_EVENT_BODY_BYTES,
    ) -> None:
        self.app = app
        self.blocks = blocks
        self.throttle = throttle
        self.token = token
        self.cookie = cookie
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        method = scope.get("method", "GET")
        if method == "POST" and path.rstrip("/") == "/login":
            await self._login(scope, receive, send)
        elif method == "POST" and path.startswith(API_PREFIX + "/"):
            await self._api(path[len(API_PREFIX) :], scope, receive, send)
        elif method in ("GET", "HEAD") and path in ("", "/"):
            await self.app(scope, receive, self._with_page_cookie(send))
        else:
            await self.app(scope, receive, send)

    # ------------------------------------------------------------------ the page cookie

    def _with_page_cookie(self, send: Send) -> Send:
        """Give the page (``/``, an HTML response: not the API's JSON, not a served file) this
        server's cookie."""
        cookie = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    headers.append((b"set-cookie", cookie))
                    message["headers"] = headers
            await send(message)

        return sending

    def from_page(self, scope: Scope) -> bool:
        value = HTTPConnection(scope).cookies.get(self.cookie, "")
        return hmac.compare_digest(value.encode(), self.token.encode())

    # ------------------------------------------------------------------ event calls

    async def _api(self, route: str, scope: Scope, receive: Receive, send: Send) -> None:
        if any(route.rstrip("/") == r for r in _PAGE_ROUTES):
            if not self.from_page(scope):
                await _refuse(scope, receive, send, 403, NOT_FROM_PAGE)
                return
            await self.app(scope, receive, send)
            return
        if not any(route.startswith(r) for r in _EVENT_ROUTES):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, self.max_body)
        if body is None:
            await _refuse(scope, receive, send, 413, "请求太大。")
            return
        if not self.from_page(scope) and not self._public_only(route, body):
            await _refuse(scope, receive, send, 403, NOT_FROM_PAGE)
            return
        await self.app(scope, _replay(body, receive), send)

    def _public_only(self, route: str, body: bytes) -> bool:
        """True if every function the request could name (by ``fn_index`` or by the route's
        name) is public; False for anything this cannot tell (bad JSON, a doubled key)."""
        parts = route.strip("/").split("/")
        names = [] if parts[0] == "queue" else [part for part in parts[1:] if part]
        fns = list(getattr(self.blocks, "fns", {}).values())
        named = [fn for fn in fns if getattr(fn, "api_name", None) in names]
        try:
            data = json.loads(body or b"{}", object_pairs_hook=_no_duplicates)
        except ValueError:
            return False
        index = data.get("fn_index") if isinstance(data, dict) else None
        if index is not None:
            number = _as_index(index)
            if number is None:
                return False
            named += [fn for fn in fns if getattr(fn, "_id", None) == number]
        return all(getattr(fn, "api_visibility", "private") == "public" for fn in named)

    # ------------------------------------------------------------------ login

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = client_address(scope)
        wait = self.throttle.attempt(client)
        if wait > 0:
            seconds = math.ceil(wait)
            await _refuse(
                scope,
                receive,
                send,
                429,
                f"登录失败次数过多，请 {seconds} 秒后再试。",
                headers={"Retry-After": str(seconds)},
            )
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 200:
                self.throttle.succeeded(client)
            await send(message)

        await self.app(scope, receive, sending)


def guard_middleware(blocks: Any, throttle: LoginThrottle | None = None) -> list[Any]:
    """``app_kwargs["middleware"]`` for ``Blocks.launch``: a :class:`UIGuard` with a fresh page
    token (a server restart asks open pages to reload, as gradio's own sessions do)."""
    from starlette.middleware import Middleware

    server_id = secrets.token_hex(4)
    return [
        Middleware(
            UIGuard,  # type: ignore[arg-type]
            blocks=blocks,
            throttle=throttle or LoginThrottle(),
            token=secrets.token_urlsafe(32),
            cookie=f"planqa-page-{server_id}",
        )
    ]


def _route_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", "") or "")
    return path[len(root) :] if root and path.startswith(root) else path


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("a key appears twice")
    return dict(pairs)


def _as_index(value: Any) -> int | None:
    """``fn_index`` as pydantic would read it (5, "5", 5.0), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it passes ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
) -> None:
    await JSONResponse({"detail": detail}, status_code=status, headers=headers)(
        scope, receive, send
    )
