"""The API's write half (/api/v1/documents, /api/v1/jobs): uploads indexed by background jobs,
removals, hostile names, size limits, read-only servers and tokens, on a real ``planqa serve``
over a small temporary corpus and hash-embedder index (two bundled plans, built in a second)."""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ports import serving
from writable_corpus import SMALL_PLANS, writable_corpus

from planqa.corpus.errors import DocumentError
from planqa.corpus.settings import Settings
from planqa.ui.api import token_digest
from planqa.ui.corpus_writer import safe_file_name
from planqa.ui.jobs import FAILED, INDEXED, QUEUED, RUNNING, JobRunner

UPLOAD_LIMIT = 64 * 1024
NEW_PLAN = (
    "星河湾区海洋经济发展规划\n\n"
    "第一章 总体要求\n\n"
    "星河湾区将建设蓝鲸智能海洋牧场示范区，发展深远海养殖装备和海洋生物医药产业。"
    "到2025年，示范区养殖水体达到五十万立方米，带动就业三千人。\n\n"
    "第二章 重点任务\n\n"
    "推进蓝鲸智能海洋牧场示范区的数字化监测平台建设，完善冷链物流和渔港设施。"
)


@pytest.fixture(scope="module")
def small_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("writable")
    return writable_corpus(root, max_upload_bytes=UPLOAD_LIMIT, index_lock_timeout=10)


@pytest.fixture(scope="module")
def server(small_settings: Settings) -> Iterator[str]:
    with serving(small_settings) as (url, _):
        yield url + "api/v1"


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body with one ``file`` field per (name, bytes), names as given."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        header = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(header.encode("utf-8") + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def call(
    method: str, url: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict]:
    request = urllib.request.Request(url, body, headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def upload(
    server: str, files: list[tuple[str, bytes]], query: str = "", headers: dict | None = None
) -> tuple[int, dict]:
    body, boundary = multipart(files)
    kinds = {"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})}
    return call("POST", f"{server}/documents{query}", body, kinds)


def finished(server: str, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, job = call("GET", f"{server}/jobs/{job_id}")
        assert status == 200
        if job["state"] in (INDEXED, FAILED):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def search(server: str, q: str, doc: str) -> tuple[int, dict]:
    query = urllib.parse.urlencode({"q": q, "doc": doc, "k": 3})
    return call("GET", f"{server}/search?{query}")


def listed(server: str) -> dict[str, dict]:
    status, body = call("GET", f"{server}/documents")
    assert status == 200
    return {row["id"]: row for row in body["documents"]}


def test_upload_is_indexed_searched_and_removed(server: str, small_settings: Settings) -> None:
    assert set(listed(server)) == set(SMALL_PLANS)
    status, body = upload(server, [("星河湾区海洋经济发展规划.txt", NEW_PLAN.encode())])
    assert status == 202, body
    job = finished(server, body["jobs"][0]["id"])
    assert job["state"] == INDEXED, job
    assert job["progress"]["done"] == job["progress"]["total"] > 0
    name = job["documents"][0]
    assert (small_settings.corpus_dir / name).is_file()
    row = listed(server)[name]
    assert row["chunks"] > 0 and row["indexed_at"] and row["region"]
    status, hits = search(server, "蓝鲸智能海洋牧场示范区", name)
    assert status == 200 and "蓝鲸智能海洋牧场" in hits["hits"][0]["text"]
    status, answer = call(
        "POST",
        f"{server}/ask",
        json.dumps({"question": "星河湾区建设什么示范区？"}).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200 and any(c["doc"] == name for c in answer["citations"])
    status, again = upload(server, [(name, NEW_PLAN.encode())])
    assert status == 409 and again["error"]["message"]

    status, body = call("DELETE", f"{server}/documents/{urllib.parse.quote(name)}")
    assert status == 202
    assert finished(server, body["jobs"][0]["id"])["state"] == INDEXED
    assert name not in listed(server) and set(listed(server)) == set(SMALL_PLANS)
    assert not (small_settings.corpus_dir / name).exists()
    status, error = search(server, "蓝鲸智能海洋牧场示范区", name)
    assert status == 404 and error["error"]["type"] == "DocumentError"


def test_a_docx_upload_is_indexed(server: str) -> None:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    for paragraph in NEW_PLAN.replace("星河湾", "月牙湾").split("\n\n"):
        document.add_paragraph(paragraph)
    data = io.BytesIO()
    document.save(data)
    status, body = upload(server, [("月牙湾规划.docx", data.getvalue())])
    assert status == 202
    job = finished(server, body["jobs"][0]["id"])
    assert job["state"] == INDEXED, job
    status, hits = search(server, "月牙湾区 蓝鲸智能海洋牧场", "月牙湾规划.docx")
    assert status == 200 and hits["hits"]


def test_a_file_that_fails_fails_only_its_job(server: str, small_settings: Settings) -> None:
    status, body = upload(server, [("空白.txt", b"   \n"), ("好的规划.md", NEW_PLAN.encode())])
    assert status == 202 and len(body["jobs"]) == 2
    bad, good = (finished(server, job["id"]) for job in body["jobs"])
    assert bad["state"] == FAILED and bad["error"]["message"]
    assert str(small_settings.corpus_dir) not in bad["error"]["message"]
    assert good["state"] == INDEXED
    assert not (small_settings.corpus_dir / "空白.txt").exists()
    assert "好的规划.md" in listed(server) and "空白.txt" not in listed(server)


def test_hostile_names_never_become_paths(server: str, small_settings: Settings) -> None:
    text = NEW_PLAN.replace("星河", "银河").encode()
    status, body = upload(server, [("../../../evil\x07名字.txt", text)])
    assert status == 202
    job = finished(server, body["jobs"][0]["id"])
    assert job["documents"] == ["evil名字.txt"] and job["state"] == INDEXED
    assert (small_settings.corpus_dir / "evil名字.txt").is_file()
    assert not (small_settings.corpus_dir.parent.parent / "evil名字.txt").exists()
    for name in ("..", "/etc/", "manifest.json", "run.sh"):
        status, body = upload(server, [(name, b"x")])
        assert status == 400 and body["error"]["type"] == "InputError", name
    assert not list(small_settings.corpus_dir.glob(".planqa-upload-*"))


def test_too_large_uploads_are_refused(server: str, small_settings: Settings) -> None:
    status, body = upload(server, [("大.txt", b"a" * (UPLOAD_LIMIT + 1))])
    assert status == 413 and "max_upload_bytes" in body["error"]["message"]
    host = urllib.parse.urlsplit(server)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    connection.putrequest("POST", "/api/v1/documents")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(10**10))
    connection.endheaders()  # no body is sent: the declared length is refused before reading
    response = connection.getresponse()
    assert response.status == 413 and json.load(response)["error"]["type"] == "ApiError"
    connection.close()
    assert not (small_settings.corpus_dir / "大.txt").exists()


def test_unknown_ids_are_404(server: str) -> None:
    status, body = call("DELETE", f"{server}/documents/nope.txt")
    assert status == 404 and body["error"]["type"] == "DocumentError"
    status, body = call("GET", f"{server}/jobs/{uuid.uuid4().hex}")
    assert status == 404
    status, body = upload(server, [])
    assert status == 400
    status, body = upload(server, [("同名.txt", b"a"), ("x/同名.txt", b"b")])
    assert status == 400 and "同名.txt" in body["error"]["message"]


def test_read_only_with_tokens(small_settings: Settings, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(token_digest("s3cret") + "\n", encoding="utf-8")
    settings = small_settings.model_copy(update={"api_tokens_file": tokens})
    with serving(settings, read_only=True) as (url, _):
        api = url + "api/v1"
        status, _ = upload(api, [("a.txt", NEW_PLAN.encode())])
        assert status == 401
        auth = {"Authorization": "Bearer s3cret"}
        status, body = upload(api, [("a.txt", NEW_PLAN.encode())], headers=auth)
        assert status == 403 and "read-only" in body["error"]["message"]
        request = urllib.request.Request(f"{api}/documents/{SMALL_PLANS[0]}", None, auth)
        request.method = "DELETE"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 403
        status, health = call("GET", f"{api}/health", headers=auth)
        assert status == 200 and health["read_only"] is True
        status, documents = call("GET", f"{api}/documents", headers=auth)
        assert status == 200 and len(documents["documents"]) >= 2


def test_jobs_wait_their_turn_and_fail_alone() -> None:
    runner = JobRunner()
    release = threading.Event()
    first = runner.submit("add", ["a.txt"], lambda job: {"ok": release.wait(10)})

    def bad(job: object) -> None:
        raise DocumentError("bad")

    second = runner.submit("add", ["b.txt"], bad)
    third = runner.submit("add", ["c.txt"], lambda job: None)
    deadline = time.monotonic() + 10
    while first.state == QUEUED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.state == RUNNING and runner.position(first) is None
    assert (second.state, runner.position(second), runner.position(third)) == (QUEUED, 1, 2)
    assert runner.counts() == {"queued": 2, "running": 1}
    release.set()
    for job in (first, second, third):
        runner.wait(job, 10)
    assert (first.state, second.state, third.state) == (INDEXED, FAILED, INDEXED)
    assert second.to_dict()["error"] == {"type": "DocumentError", "message": "bad"}
    runner.close()


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("plan.TXT", "plan.txt"),
        ("C:\\Users\\x\\规划.docx", "规划.docx"),
        ("a/b/../c.md", "c.md"),
        ("..\u202etxt.pdf", "txt.pdf"),
        ("x\n\ty.html", "xy.html"),
    ],
)
def test_safe_file_names(raw: str, safe: str) -> None:
    assert safe_file_name(raw) == safe


def test_replace_and_a_failed_replace_keeps_the_old_file(
    server: str, small_settings: Settings
) -> None:
    name = "替换规划.txt"
    first = NEW_PLAN.replace("星河湾", "金沙湾")
    status, body = upload(server, [(name, first.encode())])
    assert status == 202 and finished(server, body["jobs"][0]["id"])["state"] == INDEXED
    second = first.replace("蓝鲸智能海洋牧场", "白鹭生态湿地公园")
    status, body = upload(server, [(name, second.encode())], "?replace=true")
    assert status == 202 and finished(server, body["jobs"][0]["id"])["state"] == INDEXED
    status, hits = search(server, "白鹭生态湿地公园", name)
    assert status == 200 and "白鹭生态湿地公园" in hits["hits"][0]["text"]
    status, body = upload(server, [(name, b"\n\n")], "?replace=true")
    assert status == 202 and finished(server, body["jobs"][0]["id"])["state"] == FAILED
    assert (small_settings.corpus_dir / name).read_text(encoding="utf-8") == second
    assert name in listed(server)
    assert not list(small_settings.corpus_dir.glob(".planqa-upload-*"))


def test_twenty_clients_are_answered_while_an_upload_is_indexed(server: str) -> None:
    """The index update writes a new version beside the one being served: no ask fails,
    whether it lands before, during or after the switch."""
    plan = NEW_PLAN.replace("星河湾", "北斗湾") * 20  # enough chunks to be indexing a while
    status, body = upload(server, [("北斗湾规划.txt", plan.encode())])
    assert status == 202
    statuses: list[int] = []
    question = json.dumps({"question": "港闸经济开发区全年力争新增高企多少家？"}).encode()

    def ask_five_times() -> None:
        for _ in range(5):
            code, _ = call("POST", f"{server}/ask", question, {"Content-Type": "application/json"})
            statuses.append(code)

    clients = [threading.Thread(target=ask_five_times) for _ in range(20)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(120)
    assert finished(server, body["jobs"][0]["id"])["state"] == INDEXED
    assert statuses == [200] * 100


def test_a_restart_drops_uploads_left_staged(small_settings: Settings) -> None:
    """A server that stopped mid-upload leaves a ``.part`` file; the next one removes it."""
    from planqa.rag.pipeline import Pipeline
    from planqa.ui.corpus_writer import STAGED_PREFIX, CorpusWriter
    from planqa.ui.index_watch import LiveIndex

    stale = small_settings.corpus_dir / f"{STAGED_PREFIX}0123456789abcdef.part"
    stale.write_bytes(b"half an upload")
    CorpusWriter(small_settings, LiveIndex(Pipeline.open(small_settings)))
    assert not stale.exists()
