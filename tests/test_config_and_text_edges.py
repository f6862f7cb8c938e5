"""Issue 16, items 4, 6 and 9: configuration and location errors, and text at the edges.

Every case here was a traceback (or silently wrong) before: each must now be one ``error:``
line with an exit code and the fix, or an answer. Configuration: ``--index`` that is a file, under
a file or not writable (found up front, before embedding), bad ``PLANQA_*`` values, a broken or
misspelt ``planqa.toml``, a GBK manifest. Text: lone surrogates through the CLI, question files
and the web UI (the session must survive), ``NaN``/``1e400`` ids and undecodable lines in
``--questions`` files (an error row each; the other lines answered; output always strict JSON).

Fast: the hash embedder, and every cache (jieba's dictionary included) under a temporary folder,
never ``~/.cache``. The new modules are imported inside tests, so that on the code before the
change these tests fail on behaviour, not on an import.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from ports import serving
from typer.testing import CliRunner

from planqa.corpus.errors import DocumentError, InputError
from planqa.corpus.settings import BUNDLED_CORPUS_DIR, Settings
from planqa.index.builder import build_index
from planqa.rag.pipeline import Pipeline
from planqa.ui.app import WebHandlers
from planqa.ui.cli import app

IC_QUESTION = "哪个区规划了集成电路测试产业园？"
SURROGATE_QUESTION = "\ud800集成电路测试产业园在哪里？"

pytestmark = [
    # gradio's queue trips pandas 3 deprecations in its own code; nothing planqa can change.
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Settings:
    """A hash-embedder index of the bundled corpus, caches in a temporary folder."""
    built = Settings(
        embedding_model="hash",
        cache_dir=cache_dir,
        index_dir=tmp_path_factory.mktemp("edges") / "index",
    )
    build_index(built, [BUNDLED_CORPUS_DIR], progress=False)
    return built


@pytest.fixture(scope="module")
def pipeline(settings: Settings) -> Pipeline:
    return Pipeline.open(settings)


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No planqa.toml from the working directory or ~/.config, and no PLANQA_* of the caller."""
    for name in list(os.environ):
        if name.upper().startswith("PLANQA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def runner(index_dir: Path, cache_dir: Path, **env: str) -> CliRunner:
    return CliRunner(
        env={
            "PLANQA_EMBEDDING_MODEL": "hash",
            "PLANQA_INDEX_DIR": str(index_dir),
            "PLANQA_CACHE_DIR": str(cache_dir),
            **env,
        }
    )


def assert_user_error(result: Any, exit_code: int, pattern: str) -> None:
    """Exit code, one ``error:`` line on stderr naming the problem, no traceback."""
    output = result.stdout + result.stderr
    assert result.exit_code == exit_code, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    assert result.stderr.startswith("error: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert re.search(pattern, result.stderr), result.stderr


def strict_json(line: str) -> Any:
    """Parse one output line as strict JSON: NaN/Infinity tokens are refused."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in output: not valid JSON")

    line.encode("utf-8")  # valid text: no lone surrogates
    return json.loads(line, parse_constant=refuse)


def fail_if_called(*_: Any, **__: Any) -> Any:
    raise AssertionError("this must not run")


# =========================================================================== locations


def test_an_index_folder_that_is_a_file_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    target = tmp_path / "index"
    target.write_text("not a folder", encoding="utf-8")
    result = runner(target, cache_dir).invoke(app, ["index", str(BUNDLED_CORPUS_DIR)])
    assert_user_error(result, 2, rf"{re.escape(str(target))} is a file, not a folder.*--index")
    assert target.read_text(encoding="utf-8") == "not a folder"


def test_an_index_folder_under_a_file_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    blocker = tmp_path / "plain.txt"
    blocker.write_text("x", encoding="utf-8")
    result = runner(tmp_path / "elsewhere", cache_dir).invoke(
        app, ["index", str(BUNDLED_CORPUS_DIR), "--index", str(blocker / "sub" / "index")]
    )
    assert_user_error(result, 2, rf"cannot be created: {re.escape(str(blocker))} is a file")


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES], ids=["read-only", "unwritable"])
@pytest.mark.parametrize("add", [False, True], ids=["build", "add"])
def test_an_unwritable_index_folder_is_refused_before_any_embedding(
    code: int, add: bool, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only file system (simulated: the tests may run as root, which ignores mode bits)
    used to surface only when the finished index was written, after all the embedding."""
    locked = tmp_path / "mnt"
    locked.mkdir()
    real_open, real_mkdir = os.open, os.mkdir

    def refuse(real: Any) -> Any:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            if str(path).startswith(str(locked)):
                raise OSError(code, os.strerror(code), str(path))
            return real(path, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "open", refuse(real_open))
    monkeypatch.setattr(os, "mkdir", refuse(real_mkdir))
    import planqa.index.builder

    monkeypatch.setattr(planqa.index.builder, "build_index", fail_if_called)
    monkeypatch.setattr(planqa.index.builder, "add_documents", fail_if_called)
    monkeypatch.setattr("planqa.corpus.loader.load_corpus", fail_if_called)
    args = ["index", "--add", str(BUNDLED_CORPUS_DIR)] if add else ["index"]
    for target in (locked / "index", locked):  # to be created, and existing
        result = runner(target, cache_dir).invoke(app, args)
        reason = "the file system is read-only" if code == errno.EROFS else "permission denied"
        assert_user_error(result, 2, rf"{re.escape(str(target))} is not writable \({reason}\)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through mode bits")
def test_a_folder_without_write_permission_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = runner(locked / "index", cache_dir).invoke(app, ["index"])
    finally:
        locked.chmod(0o755)
    assert_user_error(result, 2, "not writable")


def test_a_writable_index_folder_still_builds(tmp_path: Path, cache_dir: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(BUNDLED_CORPUS_DIR / "000_7b8cb340e9bca2f6.txt", folder)
    target = tmp_path / "deep" / "new" / "index"
    result = runner(target, cache_dir).invoke(app, ["index", str(folder)])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert not [p for p in target.iterdir() if p.name.startswith(".planqa-write-check")]


# =========================================================================== settings


@pytest.mark.parametrize(
    ("variable", "value", "pattern"),
    [
        (
            "PLANQA_MAX_QUERY_CHARS",
            "abc",
            r"PLANQA_MAX_QUERY_CHARS='abc': Input should be a valid integer.*"
            r"default: 2000.*unset PLANQA_MAX_QUERY_CHARS",
        ),
        (
            "PLANQA_MAX_QUERY_CHARS",
            "3",
            r"PLANQA_MAX_QUERY_CHARS='3': Input should be greater than or equal to 10",
        ),
        (
            "PLANQA_LLM_PROVIDER",
            "chatglm",
            r"PLANQA_LLM_PROVIDER='chatglm': Input should be 'openai' or 'ollama'",
        ),
        ("PLANQA_PASSAGE_BACKEND", "fp16", r"'torch', 'onnx' or 'onnx-int8'"),
    ],
)
@pytest.mark.parametrize("command", [["search", "规划"], ["ask", IC_QUESTION], ["index"]])
def test_a_bad_environment_value_is_an_input_error(
    variable: str, value: str, pattern: str, command: list[str], settings: Settings
) -> None:
    env = {variable: value}
    result = runner(settings.resolved_index_dir, settings.cache_dir, **env).invoke(app, command)
    assert_user_error(result, 2, pattern)


def test_load_settings_names_arguments_and_keeps_settings_strict() -> None:
    from pydantic import ValidationError

    from planqa.corpus.config import load_settings

    with pytest.raises(InputError, match=r"max_seq_length=3: Input should be greater"):
        load_settings(max_seq_length=3)
    with pytest.raises(ValidationError):  # the library's own constructor is unchanged
        Settings(max_seq_length=3)


def test_unknown_planqa_environment_variables_are_not_errors(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other tools share the prefix (and planqa has PLANQA_CONFIG, PLANQA_UI_USER)."""
    from planqa.corpus.config import load_settings

    monkeypatch.setenv("PLANQA_SOMETHING_ELSE", "1")
    assert load_settings(embedding_model="hash").embedding_model == "hash"
    result = runner(
        settings.resolved_index_dir, settings.cache_dir, PLANQA_NOT_A_SETTING="x"
    ).invoke(app, ["search", "集成电路", "--k", "1"])
    assert result.exit_code == 0, result.stderr


TOML_CASES = [
    pytest.param(
        "max_query_chars = \n",
        r"not valid TOML \(Invalid value \(at line 1, column 19\)\)",
        id="syntax",
    ),
    pytest.param(
        'embedding_model = "hash"\nmax_query_char = 30\n',
        r"unknown setting 'max_query_char' \(did you mean 'max_query_chars'\?\)",
        id="misspelt-key",
    ),
    pytest.param(
        "[llm]\nprovider = 'openai'\n",
        r"unknown setting 'llm'.*fix or remove the key",
        id="unknown-table",
    ),
    pytest.param(
        'llm_provider = "chatglm"\n',
        r"llm_provider = 'chatglm' in .*planqa.toml: Input should be 'openai' or 'ollama'",
        id="bad-value",
    ),
    pytest.param(b"max_query_chars = 30 # \xff\n", r"cannot read.*save it as UTF-8", id="binary"),
]


@pytest.mark.parametrize(("content", "pattern"), TOML_CASES)
@pytest.mark.parametrize("explicit", [True, False], ids=["PLANQA_CONFIG", "cwd"])
def test_a_broken_or_misspelt_planqa_toml_is_an_input_error(
    content: str | bytes, pattern: str, explicit: bool, settings: Settings, tmp_path: Path
) -> None:
    config = tmp_path / "planqa.toml"  # the autouse fixture made tmp_path the working directory
    if isinstance(content, bytes):
        config.write_bytes(content)
    else:
        config.write_text(content, encoding="utf-8")
    env = {"PLANQA_CONFIG": str(config)} if explicit else {}
    result = runner(settings.resolved_index_dir, settings.cache_dir, **env).invoke(
        app, ["search", "集成电路"]
    )
    assert_user_error(result, 2, pattern)
    assert "planqa.toml" in result.stderr


def test_a_good_planqa_toml_still_applies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "settings.toml"
    config.write_text("MAX_QUERY_CHARS = 30\nrrf_k = 7\n", encoding="utf-8")
    monkeypatch.setenv("PLANQA_CONFIG", str(config))
    loaded = Settings()
    assert (loaded.max_query_chars, loaded.rrf_k) == (30, 7)


def test_a_missing_planqa_config_file_is_an_input_error(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = runner(
        settings.resolved_index_dir, settings.cache_dir, PLANQA_CONFIG=str(missing)
    ).invoke(app, ["search", "集成电路"])
    assert_user_error(result, 2, rf"PLANQA_CONFIG={re.escape(str(missing))}: no such")


# =========================================================================== manifest


def _manifest_corpus(tmp_path: Path, encoding: str) -> Path:
    folder = tmp_path / f"docs-{encoding}"
    folder.mkdir()
    shutil.copy(BUNDLED_CORPUS_DIR / "000_7b8cb340e9bca2f6.txt", folder)
    manifest = json.loads((BUNDLED_CORPUS_DIR / "manifest.json").read_text(encoding="utf-8"))
    manifest["documents"] = [
        {**entry, "region": "测试用区", "aliases": ["测试区"]}
        for entry in manifest["documents"]
        if entry["file"] == "000_7b8cb340e9bca2f6.txt"
    ]
    text = json.dumps(manifest, ensure_ascii=False, indent=2)
    (folder / "manifest.json").write_bytes(text.encode(encoding))
    return folder


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-16"])
def test_a_manifest_in_gbk_or_with_a_bom_is_read(
    encoding: str, tmp_path: Path, cache_dir: Path
) -> None:
    from planqa.corpus.metadata import load_manifest

    folder = _manifest_corpus(tmp_path, encoding)
    [meta] = load_manifest(folder).values()
    assert (meta.region, meta.aliases) == ("测试用区", ("测试区",))
    result = runner(tmp_path / "index", cache_dir).invoke(app, ["index", str(folder), "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    found = runner(tmp_path / "index", cache_dir).invoke(
        app, ["search", "规划", "--region", "测试区", "--k", "1", "--json"]
    )
    assert found.exit_code == 0, found.stderr
    assert json.loads(found.stdout)[0]["region"] == "测试用区"


def test_a_manifest_in_no_known_encoding_says_to_save_it_as_utf8(
    tmp_path: Path, cache_dir: Path
) -> None:
    from planqa.corpus.metadata import load_manifest

    folder = _manifest_corpus(tmp_path, "utf-8")
    (folder / "manifest.json").write_bytes(b'{"documents": []}\xff\xff')
    with pytest.raises(DocumentError, match=r"manifest.*save it as UTF-8"):
        load_manifest(folder)
    result = runner(tmp_path / "index", cache_dir).invoke(app, ["index", str(folder)])
    assert_user_error(result, 3, "save it as UTF-8")


# =========================================================================== text


def test_valid_text_replaces_lone_surrogates_and_joins_pairs() -> None:
    from planqa.corpus.text_edges import json_safe, valid_text

    assert valid_text("\ud800集成电路") == "\ufffd集成电路"
    assert valid_text("a\udfffb\ud83d") == "a\ufffdb\ufffd"
    assert valid_text("\ud83d\ude00") == "😀"  # a pair spelt as two code points
    assert valid_text("\udcff\udcfe集") == "\ufffd\ufffd集"  # argv bytes, surrogateescape'd
    plain = "集成电路 ok"
    assert valid_text(plain) is plain
    assert json_safe({"s": "\ud800", "n": [float("nan"), float("inf"), 1.5], "i": 3}) == {
        "s": "\ufffd",
        "n": [None, None, 1.5],
        "i": 3,
    }


def test_validate_query_returns_encodable_text(pipeline: Pipeline) -> None:
    """Every query passes here; tokenizers written in Rust cannot take a lone surrogate."""
    matched = pipeline.searcher.validate_query(SURROGATE_QUESTION)
    assert matched.encode("utf-8") and "\ufffd" in matched


def test_a_lone_surrogate_in_ask_and_search_arguments(settings: Settings) -> None:
    cli = runner(settings.resolved_index_dir, settings.cache_dir)
    asked = cli.invoke(app, ["ask", SURROGATE_QUESTION, "--json"])
    assert asked.exit_code == 0, repr(asked.exception)
    answer = strict_json(asked.stdout)
    assert answer["question"] == "\ufffd集成电路测试产业园在哪里？" and answer["citations"]
    for command in (["ask", SURROGATE_QUESTION], ["search", SURROGATE_QUESTION, "--json"]):
        result = cli.invoke(app, command)
        assert result.exit_code == 0, repr(result.exception)
        assert result.stdout.strip()
    refused = cli.invoke(app, ["search", "集成电路", "--region", "\ud800火星"])
    assert_user_error(refused, 2, "unknown region '\ufffd火星'")


def write_questions(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_questions_file_with_bad_lines_answers_the_good_ones(
    settings: Settings, tmp_path: Path
) -> None:
    """Each bad line gets its own error row; every output line is strict JSON in UTF-8."""
    good = IC_QUESTION.encode()
    questions = write_questions(
        tmp_path / "questions.jsonl",
        [
            b'{"id": "q1", "question": "' + good + b'"}',
            b'{"id": NaN, "question": "' + good + b'"}',
            b'{"id": 1e400, "question": "' + good + b'"}',
            b'{"id": -Infinity, "question": "' + good + b'"}',
            b'{"id": "q5", "question": "\xff\xfe' + good + b'"}',  # not UTF-8
            b'{"id": "q6", "question": "\\ud800' + good + b'"}',  # a lone surrogate escape
            b"",
            b'{"id": 7, "question": "' + good + b'"}',
            b'{"id": [1], "question": "' + good + b'"}',
            b'{"id": "q10", "question": "' + "港开 科创项目".encode() + b'"}',
        ],
    )
    result = runner(settings.resolved_index_dir, settings.cache_dir).invoke(
        app, ["ask", "--questions", str(questions)]
    )
    assert result.exit_code == 2, repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip() == "error: 5 of 9 questions could not be answered"
    rows = [strict_json(line) for line in result.stdout.splitlines()]
    assert len(rows) == 9
    answered = {row["id"]: row for row in rows if "error" not in row}
    assert set(answered) == {"q1", "q6", 7, "q10"}
    assert all(row["citations"] or row["abstained"] for row in answered.values())
    assert answered["q6"]["question"].startswith("\ufffd")
    errors = {row["line"]: row["error"] for row in rows if "error" in row}
    assert set(errors) == {2, 3, 4, 5, 9}
    assert all(row["id"] is None for row in rows if "error" in row)
    assert re.search(r"line 2: NaN is not valid JSON; write it as a string", errors[2])
    assert re.search(r"line 3: the number 1e400 is too large for JSON", errors[3])
    assert "-Infinity is not valid JSON" in errors[4]
    assert re.search(r"line 5: not valid UTF-8 \(byte 0xff at byte \d+\); save", errors[5])
    assert "'id' must be a string or a number, not list" in errors[9]


def test_a_questions_file_is_read_before_any_model_loads(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("planqa.ui.cli_answer.preload_query_encoder", fail_if_called)
    monkeypatch.setattr(Pipeline, "open", fail_if_called)
    cli = runner(tmp_path / "no-index", settings.cache_dir)
    missing = cli.invoke(app, ["ask", "--questions", str(tmp_path / "missing.jsonl")])
    assert_user_error(missing, 2, r"missing\.jsonl: cannot read the questions file")
    folder = cli.invoke(app, ["ask", "--questions", str(tmp_path)])
    assert_user_error(folder, 2, "cannot read the questions file")
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes(json.dumps({"question": IC_QUESTION}).encode("utf-16"))
    assert_user_error(cli.invoke(app, ["ask", "--questions", str(utf16)]), 2, "save it as UTF-8")
    # Nothing to answer: the error rows come out without loading the index or a model.
    bad = write_questions(tmp_path / "bad.jsonl", [b"not json", b'{"id": NaN, "question": "x"}'])
    result = cli.invoke(app, ["ask", "--questions", str(bad)])
    assert result.exit_code == 2, repr(result.exception)
    assert [strict_json(line)["line"] for line in result.stdout.splitlines()] == [1, 2]


# =========================================================================== web


def test_a_lone_surrogate_in_the_chat_keeps_the_session_alive(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """gradio sends state and messages as JSON (orjson, which refuses lone surrogates): one bad
    message kept in the session made this and every later turn of the session fail."""
    handlers = WebHandlers(pipeline, export_dir=tmp_path)
    session = None
    for question in (SURROGATE_QUESTION, IC_QUESTION):
        for messages, state, _ in handlers.chat(question, "extractive", "", session):
            orjson.dumps(messages)
            session = state
    assert session is not None and len(session.messages) == 4
    assert "\ufffd" in session.messages[0]["content"]
    _, data = handlers.api_ask(SURROGATE_QUESTION)
    orjson.dumps(data)
    assert data["question"].startswith("\ufffd") and data["citations"]
    summary, results, _, _ = handlers.search(SURROGATE_QUESTION, 5, "", "", "\ud800", "hybrid")
    orjson.dumps([summary, results])


@pytest.fixture(scope="module")
def server(settings: Settings, pipeline: Pipeline) -> Iterator[tuple[str, dict[str, int]]]:
    """The real server on 127.0.0.1, and its event indexes by name."""
    with serving(settings, pipeline=pipeline) as (url, running):
        events = {
            dep["api_name"]: index
            for index, dep in enumerate(running.config["dependencies"])
            if dep.get("api_name")
        }
        yield f"{url}gradio_api", events


def queue_call(base: str, fn_index: int, data: list[Any], session_hash: str) -> dict[str, Any]:
    """One event the way the browser sends it: join the queue, then read the session's event
    stream until the result. The body is ASCII JSON, so a lone surrogate travels as the escape
    ``\\ud800`` (gradio_client cannot send one: httpx refuses to encode it). Like the browser,
    it loads the page first: its cookie is what lets the UI's private handlers be called."""
    import httpx

    body = json.dumps(
        {"data": data, "fn_index": fn_index, "session_hash": session_hash, "event_data": None}
    )
    with httpx.Client(timeout=60) as client:
        client.get(base.removesuffix("/gradio_api") + "/")
        joined = client.post(
            f"{base}/queue/join", content=body, headers={"content-type": "application/json"}
        )
        assert joined.status_code == 200, joined.text
        params = {"session_hash": session_hash}
        with client.stream("GET", f"{base}/queue/data", params=params) as stream:
            for line in stream.iter_lines():  # a dropped stream raises here
                if line.startswith("data: "):
                    message = json.loads(line[len("data: ") :])
                    if message.get("msg") == "process_completed":
                        return message
    raise AssertionError("the event stream ended without a result")


def test_a_lone_surrogate_over_http_keeps_the_web_session_alive(
    server: tuple[str, dict[str, int]],
) -> None:
    """Before: the answer was computed, gradio's orjson failed on the echoed question and the
    event stream dropped (RemoteProtocolError), and with it the browser session."""
    base, events = server
    session_hash = uuid.uuid4().hex
    for question in (SURROGATE_QUESTION, IC_QUESTION):  # /ask, the public endpoint
        done = queue_call(base, events["ask"], [question, "", "extractive"], session_hash)
        assert done["success"], done
        [[text, data]] = done["output"]["data"]  # gr.api: one output, the returned pair
        assert text == data["answer"] and data["citations"]
        assert data["question"] == question.replace("\ud800", "\ufffd")
    chat_session = uuid.uuid4().hex
    for question in (SURROGATE_QUESTION, IC_QUESTION):  # the 问答 tab's chat, one session
        done = queue_call(base, events["chat"], [question, "extractive", "", None], chat_session)
        assert done["success"], done
    messages = done["output"]["data"][0]
    assert len(messages) == 4 and "pq-cite" in str(messages[-1])
