"""The real server on 127.0.0.1, called the way other programs will: through gradio_client.

Checks the one public endpoint (/ask), that it answers with citations, that twenty callers at
once are queued rather than refused, and that a bad request is an error for that caller only.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client
from ports import serving

from planqa.corpus.settings import Settings
from planqa.rag.pipeline import Pipeline

pytestmark = [
    # gradio's queue trips pandas 3 deprecations in its own code; nothing planqa can change.
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
]


@pytest.fixture(scope="module")
def server_url(hash_index_settings: Settings) -> Iterator[str]:
    with serving(hash_index_settings, pipeline=Pipeline.open(hash_index_settings)) as (url, _):
        yield url


@pytest.fixture(scope="module")
def client(server_url: str) -> Client:
    return Client(server_url, verbose=False)


def test_only_ask_is_public(client: Client) -> None:
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(endpoints) == ["/ask"]


def test_ask_answers_with_citations(client: Client) -> None:
    text, data = client.predict(
        question="哪个区规划了集成电路测试产业园？", region="", mode="extractive", api_name="/ask"
    )
    assert "南通" in text
    citations = data["citations"]
    assert citations and citations[0]["n"] == 1
    assert any("南通" in c["region"] for c in citations)
    assert all(c["start"] <= c["quote_start"] < c["quote_end"] <= c["end"] for c in citations)


def test_ask_defaults_and_region_filter(client: Client) -> None:
    text, data = client.predict("集成电路测试产业园在哪里？", api_name="/ask")
    assert data["mode"] == "extractive" and text == data["answer"]
    _, data = client.predict(
        "集成电路测试产业园在哪里？", "港闸经济开发区", "extractive", api_name="/ask"
    )
    assert all(c["region"] == "港闸经济开发区" for c in data["citations"])


def test_a_bad_request_fails_alone(client: Client) -> None:
    with pytest.raises(Exception, match="unknown region"):
        client.predict("集成电路", "火星", "extractive", api_name="/ask")
    text, _ = client.predict("哪个区规划了集成电路测试产业园？", api_name="/ask")
    assert "南通" in text


def test_twenty_simultaneous_callers_are_queued(client: Client) -> None:
    questions = ["哪个区规划了集成电路测试产业园？", "海州区2020年人均地区生产总值是多少？"] * 10
    jobs = [client.submit(q, "", "extractive", api_name="/ask") for q in questions]
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda job: job.result(timeout=120), jobs))
    assert len(results) == 20
    assert all(isinstance(text, str) and text for text, _ in results)
    assert all("南通" in text for text, _ in results[::2])
