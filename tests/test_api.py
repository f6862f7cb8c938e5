"""The HTTP JSON API (/api/v1): the CLI's answer and passage objects, JSON errors with the right
status, bearer tokens hashed at rest, and the real server serving it beside the UI."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ports import serving

from planqa.corpus.errors import InputError
from planqa.corpus.settings import Settings
from planqa.rag.pipeline import Pipeline
from planqa.ui.api import build_api, read_token_digests, token_digest

QUESTION = "哪个区规划了集成电路测试产业园？"


@pytest.fixture(scope="module")
def api(pipeline: Pipeline) -> TestClient:
    return TestClient(build_api(lambda: pipeline))


def test_ask_returns_the_cli_answer_object(api: TestClient, pipeline: Pipeline) -> None:
    response = api.post("/ask", json={"question": QUESTION})
    assert response.status_code == 200
    body = response.json()
    expected = pipeline.ask(QUESTION).to_dict()
    assert set(body) == set(expected)
    assert body["answer"] == expected["answer"] and body["citations"] == expected["citations"]


def test_search_and_health(api: TestClient, pipeline: Pipeline) -> None:
    hits = api.get("/search", params={"q": "集成电路测试产业园", "k": 3}).json()["hits"]
    assert len(hits) == 3 and {"doc", "start", "end", "text", "score"} <= set(hits[0])
    doc = hits[0]["doc"]
    only = api.get("/search", params={"q": "产业园", "doc": doc}).json()["hits"]
    assert only and {hit["doc"] for hit in only} == {doc}
    health = api.get("/health").json()
    assert health["status"] == "ok"
    assert health["documents"] == len(pipeline.searcher.documents) and health["chunks"] > 0


@pytest.mark.parametrize(
    ("call", "status", "kind"),
    [
        (lambda c: c.post("/ask", json={"question": "   "}), 400, "InputError"),
        (lambda c: c.post("/ask", json={"question": "问" * 5000}), 400, "InputError"),
        (lambda c: c.post("/ask", json={"question": QUESTION, "mode": "nope"}), 400, "InputError"),
        (lambda c: c.get("/search", params={"q": "产业", "doc": "nope.txt"}), 404, "DocumentError"),
    ],
)
def test_bad_input_is_a_json_error_with_the_cli_message(
    api: TestClient, call, status: int, kind: str
) -> None:
    response = call(api)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == kind and error["message"] and error["exit_code"] in (2, 3)


def test_a_body_of_the_wrong_shape_is_refused_by_the_schema(api: TestClient) -> None:
    assert api.post("/ask", json={"question": 3}).status_code == 422
    assert api.post("/ask", content=b"not json").status_code == 422
    assert api.get("/search", params={"q": "x", "k": 1000}).status_code == 422


def test_tokens_are_checked_against_their_digests(tmp_path: Path, pipeline: Pipeline) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# staff portal\n{token_digest('s3cret')}\n", encoding="utf-8")
    digests = read_token_digests(tokens)
    assert "s3cret" not in tokens.read_text(encoding="utf-8")
    client = TestClient(build_api(lambda: pipeline, token_digests=digests))
    assert client.get("/health").status_code == 401
    assert client.get("/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/docs").status_code == 200  # the documentation stays readable
    tokens.write_text("s3cret\n", encoding="utf-8")  # a plain token is refused, not trusted
    with pytest.raises(InputError, match="SHA-256"):
        read_token_digests(tokens)


def test_refused_everywhere_when_told(pipeline: Pipeline) -> None:
    client = TestClient(build_api(lambda: pipeline, refuse_all="tokens needed"))
    response = client.post("/ask", json={"question": QUESTION})
    assert response.status_code == 403 and response.json()["error"]["message"] == "tokens needed"


@pytest.fixture(scope="module")
def server_url(hash_index_settings: Settings, pipeline: Pipeline) -> Iterator[str]:
    with serving(hash_index_settings, pipeline=pipeline) as (url, _):
        yield url.rstrip("/")


def post_json(url: str, body: dict) -> tuple[int, dict]:
    data = json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_real_server_serves_the_api_beside_the_ui(server_url: str) -> None:
    with urllib.request.urlopen(f"{server_url}/api/v1/openapi.json", timeout=30) as response:
        paths = json.load(response)["paths"]
    assert {"/ask", "/search", "/health"} <= set(paths)
    status, body = post_json(f"{server_url}/api/v1/ask", {"question": QUESTION})
    assert status == 200 and body["citations"]
    status, body = post_json(f"{server_url}/api/v1/ask", {"question": ""})
    assert status == 400 and body["error"]["type"] == "InputError"
    with urllib.request.urlopen(f"{server_url}/", timeout=30) as response:
        assert response.status == 200  # the page is still there


def test_concurrent_api_clients_are_all_answered(server_url: str) -> None:
    url = f"{server_url}/api/v1/ask"
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: post_json(url, {"question": QUESTION}), range(16)))
    assert all(status == 200 and body["answer"] for status, body in results)


def test_openai_compatible_chat_completions(api: TestClient, pipeline: Pipeline) -> None:
    messages = [
        {"role": "system", "content": "你是助手"},
        {"role": "user", "content": "无关的早先问题"},
        {"role": "assistant", "content": "……"},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ]
    response = api.post("/chat/completions", json={"model": "planqa", "messages": messages})
    assert response.status_code == 200
    body = response.json()
    expected = pipeline.ask(QUESTION).to_dict()
    message = body["choices"][0]["message"]
    assert body["object"] == "chat.completion" and message["role"] == "assistant"
    assert message["content"].startswith(expected["answer"]) and "[1]" in message["content"]
    assert body["citations"] == expected["citations"]
    refused = api.post("/chat/completions", json={"messages": messages, "stream": True})
    assert refused.status_code == 400 and refused.json()["error"]["type"] == "InputError"
    none = api.post("/chat/completions", json={"messages": [{"role": "system", "content": "x"}]})
    assert none.status_code == 400
