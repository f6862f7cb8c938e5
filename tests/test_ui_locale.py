"""ui/page_locale.py: every HTML page starts with the script that reports zh-CN, before gradio's
own script reads the browser's language (the browser half is in test_browser.py)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from planqa.ui.page_locale import LOCALE_SCRIPT, ChineseLocale, with_locale_script

PAGE = '<!doctype html><html><head lang="x"><script type="module" src="a.js"></script></head>'


def client() -> TestClient:
    routes = [
        Route("/", lambda request: HTMLResponse(PAGE)),
        Route("/config", lambda request: JSONResponse({"head": "<head>"})),
        Route(
            "/zipped",
            lambda request: Response(
                b"<head>", media_type="text/html", headers={"content-encoding": "x-test"}
            ),
        ),
    ]
    return TestClient(Starlette(routes=routes, middleware=[Middleware(ChineseLocale)]))


def test_the_script_goes_first_in_the_head() -> None:
    page = with_locale_script(PAGE.encode()).decode()
    assert page.index(LOCALE_SCRIPT.decode()) < page.index('type="module"')
    assert page.startswith('<!doctype html><html><head lang="x"><script>')
    assert with_locale_script(b"<p>no head</p>") == b"<p>no head</p>"
    assert with_locale_script(b"<head><head>").count(LOCALE_SCRIPT) == 1


def test_only_plain_html_pages_are_changed() -> None:
    with client() as http:
        page = http.get("/")
        assert LOCALE_SCRIPT.decode() in page.text
        assert int(page.headers["content-length"]) == len(page.content)
        assert http.get("/config").json() == {"head": "<head>"}  # JSON is data: untouched
        assert http.get("/zipped").content == b"<head>"  # already encoded: untouched
        assert http.post("/").status_code == 405  # other methods pass straight through
