"""The page speaks Chinese whatever the browser's language: gradio's own strings included.

gradio translates its built-in strings ("Drop File Here", "Click to Upload", the queue line) by
``navigator.language``, read once when its app script starts. The page is Chinese for every
reader, so the browser must report zh-CN *before* that script runs. gradio's ``head`` option
cannot do it: gradio inserts that HTML from the app script itself, after reading the language
(an English browser still saw "Drop File Here"). A custom ``gr.I18n`` cannot either:
gradio merges its built-in English over custom English strings.

gradio's own zh-CN strings also lack a few that its English has (the screen-reader line that
announces a finished request reads "common.complete"); :data:`GRADIO_ZH_MISSING` supplies them
as custom translations (``launch(i18n=...)``, see ``ui.app.launch_style``).

So :class:`ChineseLocale`, an ASGI middleware, puts :data:`LOCALE_SCRIPT` first in the
``<head>`` of every HTML page the server sends, ahead of gradio's module script. It only reads
the HTML gradio produced and adds one fixed script; nothing from a request goes into it.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Reports zh-CN as the browser's language (a classic script: it runs before module scripts).
LOCALE_SCRIPT = (
    b"<script>(() => { try {"
    b" Object.defineProperty(navigator, 'language', {get: () => 'zh-CN'});"
    b" Object.defineProperty(navigator, 'languages', {get: () => ['zh-CN', 'zh']});"
    b" } catch (e) {} })();</script>"
)
#: gradio 6.31's English strings that its zh-CN file does not translate.
GRADIO_ZH_MISSING = {
    "common.cancel": "取消",
    "common.complete": "已完成",
    "common.copied_message": "已复制消息",
    "common.copy_message": "复制消息",
    "common.dislike": "不喜欢",
    "common.like": "喜欢",
    "common.retry": "重试",
}
_HEAD = re.compile(rb"<head(?:\s[^>]*)?>", re.IGNORECASE)
#: A page larger than this is not a gradio page; it is passed on untouched.
MAX_PAGE_BYTES = 4 * 1024 * 1024


def with_locale_script(html: bytes) -> bytes:
    """``html`` with :data:`LOCALE_SCRIPT` right after its ``<head>`` tag (unchanged if none)."""
    return _HEAD.sub(lambda match: match.group(0) + LOCALE_SCRIPT, html, count=1)


class ChineseLocale:
    """ASGI middleware: uncompressed ``text/html`` responses get :data:`LOCALE_SCRIPT`.

    gradio compresses responses in a middleware outside this one, so the HTML seen here is
    plain; a response that is already encoded, or is not HTML, passes through as it comes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = Headers(raw=message["headers"])
                html = headers.get("content-type", "").startswith("text/html")
                if html and "content-encoding" not in headers and scope["method"] == "GET":
                    held["start"] = message
                    return
            elif message["type"] == "http.response.body" and "start" in held:
                chunks.append(message.get("body", b""))
                if message.get("more_body") and sum(map(len, chunks)) <= MAX_PAGE_BYTES:
                    return
                body = b"".join(chunks)
                if not message.get("more_body"):
                    body = with_locale_script(body)
                start = held.pop("start")
                headers = MutableHeaders(raw=list(start["headers"]))
                if not message.get("more_body"):
                    headers["content-length"] = str(len(body))
                await send({**start, "headers": headers.raw})
                await send({**message, "body": body})
                return
            await send(message)

        await self.app(scope, receive, sending)
