"""The API's metadata half: ``PATCH /api/v1/documents/{id}`` (an edit stored in the corpus
manifest, the document re-indexed by a job), ``GET /api/v1/documents/{id}`` (metadata and
indexing record), ``GET …/file`` (the original, as an attachment) and metadata fields sent with
an upload, on a real ``planqa serve`` over a small writable corpus."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ports import serving
from test_api_documents import NEW_PLAN, call, finished
from writable_corpus import writable_corpus

from planqa.corpus.loader import load_corpus
from planqa.corpus.settings import Settings
from planqa.ui.jobs import INDEXED

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def small_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return writable_corpus(tmp_path_factory.mktemp("metadata"), index_lock_timeout=10)


@pytest.fixture(scope="module")
def server(small_settings: Settings) -> Iterator[str]:
    with serving(small_settings) as (url, _):
        yield url + "api/v1"


def patch(server: str, doc: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    return call("PATCH", f"{server}/documents/{urllib.parse.quote(doc)}", body, headers or JSON)


def with_fields(files: list[tuple[str, bytes]], fields: dict[str, str]) -> tuple[bytes, str]:
    """multipart/form-data with text fields besides the files."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    for name, data in files:
        header = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(header.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def upload_with(server: str, name: str, fields: dict[str, str]) -> tuple[int, dict]:
    body, boundary = with_fields([(name, NEW_PLAN.encode())], fields)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return call("POST", f"{server}/documents", body, headers)


def test_an_upload_with_metadata_and_an_edit_after(server: str, small_settings: Settings) -> None:
    name = "元数据规划.txt"
    status, body = upload_with(server, name, {"region": "星河湾新区", "kind": "年度工作计划"})
    assert status == 202, body
    assert finished(server, body["jobs"][0]["id"])["state"] == INDEXED
    status, record = call("GET", f"{server}/documents/{urllib.parse.quote(name)}")
    assert status == 200 and record["region"] == "星河湾新区" and record["inferred"] is False
    assert record["kind"] == "年度工作计划" and record["indexed_at"] and record["sha256"]
    first_indexed = record["indexed_at"]

    edit = {"region": "星河湾区", "aliases": ["星河湾", "星河"], "issuer": "星河湾区人民政府"}
    status, body = patch(server, name, json.dumps(edit, ensure_ascii=False).encode())
    assert status == 202 and body["jobs"][0]["kind"] == "edit"
    job = finished(server, body["jobs"][0]["id"])
    assert job["state"] == INDEXED and job["result"]["changed"] == []  # same text, new meta
    status, record = call("GET", f"{server}/documents/{urllib.parse.quote(name)}")
    assert record["region"] == "星河湾区" and record["aliases"] == ["星河湾", "星河"]
    assert record["kind"] == "年度工作计划" and record["indexed_at"] >= first_indexed
    # The edit lives in the corpus folder's manifest: a restart (a fresh load) has it.
    meta = load_corpus([small_settings.corpus_dir / name]).documents[0].meta
    assert (meta.region, meta.aliases, meta.issuer) == (
        "星河湾区",
        ("星河湾", "星河"),
        edit["issuer"],
    )
    # The region filter follows the new name.
    query = urllib.parse.urlencode({"q": "蓝鲸智能海洋牧场", "region": "星河湾", "k": 3})
    status, hits = call("GET", f"{server}/search?{query}")
    assert status == 200 and hits["hits"] and hits["hits"][0]["doc"] == name

    request = urllib.request.Request(f"{server}/documents/{urllib.parse.quote(name)}/file")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.read() == NEW_PLAN.encode()
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert response.headers["X-Content-Type-Options"] == "nosniff"

    status, body = call("DELETE", f"{server}/documents/{urllib.parse.quote(name)}")
    assert finished(server, body["jobs"][0]["id"])["state"] == INDEXED
    manifest = json.loads((small_settings.corpus_dir / "manifest.json").read_text("utf-8"))
    assert name not in {entry["file"] for entry in manifest["documents"]}


def test_bad_edits_are_json_errors(server: str, small_settings: Settings) -> None:
    doc = next(iter(json.loads(urllib.request.urlopen(f"{server}/documents").read())["documents"]))
    name = doc["id"]
    manifest = (small_settings.corpus_dir / "manifest.json").read_bytes()
    for body, status_wanted, words in (
        (b"{not json", 400, "not JSON"),
        (b"[]", 400, "JSON object"),
        (json.dumps({"file": "../x"}).encode(), 400, "editable fields"),
        (json.dumps({"region": ""}).encode(), 400, "cannot be empty"),
        (json.dumps({"region": 7}).encode(), 400, "must be a string"),
        (b'{"title": "' + b"x" * 70000 + b'"}', 413, "at most"),
    ):
        status, error = patch(server, name, body)
        assert status == status_wanted and words in error["error"]["message"], (body[:30], error)
    status, error = patch(server, "nope.txt", b'{"region": "x"}')
    assert status == 404 and error["error"]["type"] == "DocumentError"
    status, error = call("GET", f"{server}/documents/nope.txt")
    assert status == 404
    status, error = call("GET", f"{server}/documents/nope.txt/file")
    assert status == 404
    status, error = upload_with(server, "坏字段.txt", {"colour": "red"})
    assert status == 400 and "editable fields" in error["error"]["message"]
    assert (small_settings.corpus_dir / "manifest.json").read_bytes() == manifest
    assert not (small_settings.corpus_dir / "坏字段.txt").exists()


def test_read_only_refuses_edits_but_serves_originals(
    small_settings: Settings, tmp_path: Path
) -> None:
    with serving(small_settings, read_only=True) as (url, _):
        api = url + "api/v1"
        doc = json.loads(urllib.request.urlopen(f"{api}/documents").read())["documents"][0]
        status, error = patch(api, doc["id"], b'{"region": "x"}')
        assert status == 403 and "read-only" in error["error"]["message"]
        with urllib.request.urlopen(f"{api}/documents/{doc['id']}/file", timeout=30) as response:
            assert response.read() == (small_settings.corpus_dir / doc["id"]).read_bytes()
