"""What an adversarial probe of the web server found (issue 16, items 8 and 9), each refused now:
UI handlers called over raw HTTP, run folders outside the runs folder, server paths in messages,
unlimited uploads, unthrottled logins, markup in toasts, and an index rebuilt under a running
server. Real servers on 127.0.0.1 over the hash-embedder index; no browser.
"""

from __future__ import annotations

import html
import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import pytest
from ports import free_port, serving

from planqa.corpus.errors import InputError
from planqa.corpus.settings import BUNDLED_CORPUS_DIR, Settings
from planqa.eval.gold import BUNDLED_DEV_GOLD
from planqa.eval.review import run_for_gold
from planqa.eval.rundir import REPORT_FILE
from planqa.rag.pipeline import Pipeline
from planqa.ui.app import WebHandlers
from planqa.ui.shared import user_facing as _user_facing
from planqa.ui.tab_review import ReviewHandlers
from planqa.ui.web import serve

pytestmark = [
    # gradio's queue trips pandas 3 deprecations in its own code; nothing planqa can change.
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
]

UPLOAD_CAP = 64 * 1024
QUESTION = "哪个区规划了集成电路测试产业园？"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def capped_settings(hash_index_settings: Settings) -> Settings:
    return hash_index_settings.model_copy(update={"max_upload_bytes": UPLOAD_CAP})


@pytest.fixture(scope="module")
def server(
    capped_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, gr.Blocks]]:
    with serving(
        capped_settings,
        pipeline=Pipeline.open(capped_settings),
        runs_dir=tmp_path_factory.mktemp("served") / "runs",
    ) as served:
        yield served


@contextmanager
def page_client(url: str) -> Iterator[httpx.Client]:
    """A client that has loaded the page, as a browser has (and so holds its cookie)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert any(name.startswith("planqa-page-") for name in client.cookies)
        yield client


def call_from_page(client: httpx.Client, fn_index: int, data: list[Any]) -> list[Any]:
    """One event the way the page sends it: join the queue, read the session's stream."""
    session = uuid.uuid4().hex
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None}
    joined = client.post("/gradio_api/queue/join", json=body)
    assert joined.status_code == 200, joined.text
    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as sse:
        for line in sse.iter_lines():
            if line.startswith("data: "):
                message = json.loads(line[len("data: ") :])
                if message.get("msg") == "process_completed":
                    assert message["success"], message
                    return message["output"]["data"]
    raise AssertionError("the event stream ended without a result")


def fn_named(app: gr.Blocks, name: str) -> int:
    return next(i for i, fn in app.fns.items() if getattr(fn.fn, "__name__", "") == name)


# --------------------------------------------------------------------------- private handlers


def test_private_handlers_are_refused_over_raw_http(server: tuple[str, gr.Blocks]) -> None:
    url, app = server
    private = [fn for fn in app.fns.values() if fn.fn is not None and fn.api_visibility != "public"]
    assert len(private) >= 25  # every UI event; /ask is the one public function
    for fn in private:
        join = {"data": [], "fn_index": fn._id, "session_hash": "probe"}
        assert httpx.post(f"{url}gradio_api/queue/join", json=join).status_code == 403, fn.api_name
        for route in ("call", "run", "call/v2"):
            refused = httpx.post(f"{url}gradio_api/{route}/{fn.api_name}", json={"data": []})
            assert refused.status_code == 403, (route, fn.api_name)
        assert "/ask" in refused.json()["detail"]
    load = fn_named(app, "load")
    # The index spelled another way pydantic also reads, or twice, is no way round.
    for body in (
        f'{{"data": [], "fn_index": "{load}", "session_hash": "p"}}',
        f'{{"data": [], "fn_index": 0, "fn_index": {load}, "session_hash": "p"}}',
    ):
        sent = httpx.post(
            f"{url}gradio_api/queue/join",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert sent.status_code == 403
    # The public API needs no page, and the page itself still works.
    ask = httpx.post(f"{url}gradio_api/call/ask", json={"data": [QUESTION, "", "extractive"]})
    assert ask.status_code == 200 and ask.json()["event_id"]
    with page_client(url) as client:
        upload, run_row = call_from_page(client, fn_named(app, "source_changed"), ["run"])
        assert upload["visible"] is False and run_row["visible"] is True


def test_an_upload_over_the_cap_is_refused(server: tuple[str, gr.Blocks]) -> None:
    url, _ = server
    assert Settings().max_upload_bytes == 50 * 2**20
    big = {"files": ("gold.jsonl", b"{}\n" * (UPLOAD_CAP // 3 + 100))}
    small = {"files": ("gold.jsonl", b'{"id": "q1"}\n')}
    assert httpx.post(f"{url}gradio_api/upload", files=small).status_code == 403  # not the page
    with page_client(url) as client:
        refused = client.post("/gradio_api/upload", files=big)
        assert refused.status_code == 413 and "maximum allowed size" in refused.text
        accepted = client.post("/gradio_api/upload", files=small)
        assert accepted.status_code == 200 and len(accepted.json()) == 1


# --------------------------------------------------------------------------- paths


def small_gold(path: Path) -> Path:
    lines = [line for line in BUNDLED_DEV_GOLD.read_text(encoding="utf-8").splitlines() if line]
    path.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    return path


def test_a_run_folder_outside_the_runs_folder_is_refused_without_its_path(
    hash_index_settings: Settings, tmp_path: Path
) -> None:
    pipeline = Pipeline.open(hash_index_settings)
    runs = tmp_path / "runs"
    elsewhere = run_for_gold(small_gold(tmp_path / "g.jsonl"), pipeline, tmp_path / "elsewhere")
    report = (elsewhere / REPORT_FILE).read_bytes()
    runs.mkdir()
    (runs / "link").symlink_to(elsewhere, target_is_directory=True)
    (runs / "broken").mkdir()
    review = ReviewHandlers(pipeline, runs, runs / "v.sqlite3", lambda kind: tmp_path / "x.csv")
    load = _user_facing(review.load)

    messages = []
    for typed in (
        str(elsewhere),  # a real run, elsewhere
        f"../elsewhere/{elsewhere.name}",
        "link",  # a link out of the runs folder
        str(tmp_path / "no-such-folder"),  # the same answer whether or not it exists
        "/etc",
    ):
        with pytest.raises(gr.Error) as refused:
            load("run", None, None, typed, "张")
        message = refused.value.message
        # Changed for issue 19: the refusal is shown in Chinese.
        assert "不是评测运行：只能打开运行文件夹中的运行" in message, typed
        assert str(tmp_path) not in message and "/etc" not in message
        messages.append(message.replace(Path(typed).name, "NAME"))
    assert len(set(messages)) == 1
    assert review.run_choices() == []  # the link is not offered either
    assert (elsewhere / REPORT_FILE).read_bytes() == report

    # Inside the runs folder, what is wrong is named relative to it.
    with pytest.raises(InputError) as inside:
        review.open_source("run", None, None, str(runs / "broken"))
    assert "broken is not an evaluation run" in str(inside.value)
    assert str(tmp_path) not in str(inside.value)
    from planqa.ui.messages import scrub_paths

    assert scrub_paths(f"{runs}/a/report.md: denied", runs) == "a/report.md: denied"
    assert scrub_paths("see /srv/secret/x.txt.") == "see x.txt."


# --------------------------------------------------------------------------- login


@pytest.fixture
def login_server(
    hash_index_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, FakeClock]]:
    from planqa.ui.security import LoginThrottle

    monkeypatch.setenv("PLANQA_UI_USER", "planner")
    monkeypatch.setenv("PLANQA_UI_PASSWORD", "s3cret")
    clock = FakeClock()
    with serving(
        hash_index_settings,
        pipeline=Pipeline.open(hash_index_settings),
        login_throttle=LoginThrottle(clock=clock),
    ) as (url, _):
        yield url, clock


def test_login_backs_off_after_five_failures(login_server: tuple[str, FakeClock]) -> None:
    url, clock = login_server

    def login(password: str) -> httpx.Response:
        return httpx.post(f"{url}login", data={"username": "planner", "password": password})

    assert [login("wrong").status_code for _ in range(5)] == [400] * 5
    refused = login("wrong")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert "秒后再试" in refused.json()["detail"]
    clock.now += 1.0
    assert login("wrong").status_code == 400  # the sixth failure: now 2 s
    assert login("s3cret").status_code == 429  # refused during the wait, even when right
    clock.now += 1.0
    assert login("s3cret").status_code == 429
    clock.now += 1.0
    assert login("s3cret").status_code == 200
    assert login("wrong").status_code == 400  # a success clears the record


def test_login_throttle_is_per_client_and_capped() -> None:
    from planqa.ui.security import LoginThrottle

    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    assert [throttle.attempt("a") for _ in range(5)] == [0.0] * 5
    assert throttle.attempt("a") == 1.0 and throttle.attempt("b") == 0.0
    assert [throttle.delay_after(n) for n in (4, 5, 6, 7, 11, 40)] == [0, 1, 2, 4, 60, 60]
    clock.now += 901  # a quiet quarter of an hour forgets the failures
    assert throttle.attempt("a") == 0.0


# --------------------------------------------------------------------------- toasts


def test_a_toast_shows_markup_as_text(hash_index_settings: Settings, tmp_path: Path) -> None:
    def failing() -> None:
        raise InputError(f"<b>粗体</b> & <img src=x> in {tmp_path}/secret/file.txt")

    with pytest.raises(gr.Error) as error:
        _user_facing(failing)()
    message = error.value.message
    assert "<b>" not in message and "<img" not in message
    assert html.unescape(message) == "<b>粗体</b> & <img src=x> in file.txt"

    handlers = WebHandlers(Pipeline.open(hash_index_settings), export_dir=tmp_path)
    with pytest.raises(gr.Error) as error:
        handlers.search("集成电路", 5, "<b>火星</b>", "", "", "hybrid")
    assert "&lt;b&gt;火星&lt;/b&gt;" in error.value.message


# --------------------------------------------------------------------------- a rebuild


def test_a_rebuild_while_serving_is_picked_up_with_a_line(tmp_path: Path) -> None:
    from gradio_client import Client

    from planqa.index.builder import build_index

    settings = Settings(embedding_model="hash", index_dir=tmp_path / "index")
    first = sorted(BUNDLED_CORPUS_DIR.glob("*.txt"))[:2]
    small = tmp_path / "small"
    small.mkdir()
    for path in first:
        shutil.copy(path, small / path.name)
    build_index(settings, [small], progress=False)
    pipeline = Pipeline.open(settings)
    port = free_port()
    app = serve(settings, port=port, block=False, pipeline=pipeline, runs_dir=tmp_path / "runs")
    url = f"http://127.0.0.1:{port}/"
    try:
        client = Client(url, verbose=False)
        poll = fn_named(app, "poll")
        with page_client(url) as page:
            # (The first output is the page's gr.State: kept on the server, sent as null.)
            _, line, *_ = call_from_page(page, poll, [0])
            assert line == {"__type__": "update"}

            build_index(settings, [BUNDLED_CORPUS_DIR], rebuild=True, progress=False)
            _, data = client.predict(QUESTION, api_name="/ask")  # switches before answering
            assert {hit["doc"] for hit in data["retrieved"]} - {p.name for p in first}
            _, line, title, *_ = call_from_page(page, poll, [0])
            assert "索引已更新为新版本" in line and "5 份规划文件" in title
            # A page that has shown the line is not sent it again on its next poll.
            assert app.fns[poll].fn(1)[1] == {"__type__": "update"}

            # A version that does not open is reported, and the server keeps answering.
            pointer = settings.resolved_index_dir / "CURRENT"
            pointer.write_text('{"version": "v-broken", "manifest_sha256": "0"}', "utf-8")
            text, _ = client.predict(QUESTION, api_name="/ask")
            assert "南通" in text
            _, line, *_ = call_from_page(page, poll, [0])
            assert "v-broken" in line and "无法打开" in line
            assert str(tmp_path) not in line
    finally:
        app.close()
