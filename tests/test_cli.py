"""The CLI as a user runs it: help with examples, JSON on stdout, errors on stderr, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planqa.ui.cli import app

COMMANDS = [
    "index",
    "search",
    "ask",
    "chat",
    "serve",
    "eval",
    "eval-compare",
    "eval-verdicts",
    "bench",
]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("PLANQA_EMBEDDING_MODEL", "hash")
    monkeypatch.setenv("PLANQA_INDEX_DIR", str(tmp_path / "index"))
    return CliRunner()


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("planqa")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example: planqa " + command in result.stdout


def test_index_then_search_json(runner: CliRunner, corpus_dir: Path) -> None:
    built = runner.invoke(app, ["index", str(corpus_dir), "--json"])
    assert built.exit_code == 0, built.stderr
    report = json.loads(built.stdout)
    assert report["documents"] == 5 and report["chunks"] > 0

    again = runner.invoke(app, ["index", str(corpus_dir)])
    assert again.exit_code == 0 and "up to date" in again.stdout

    result = runner.invoke(app, ["search", "集成电路测试产业园", "--k", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) == 3
    for hit in hits:
        assert {"doc", "region", "title", "chapter", "start", "end", "text", "score"} <= set(hit)

    text = runner.invoke(app, ["search", "港开 科创项目", "--k", "2", "--region", "港开"])
    assert text.exit_code == 0
    assert text.stdout.startswith("1. [") and "港闸经济开发区" in text.stdout


def test_errors_go_to_stderr_with_exit_codes(runner: CliRunner, corpus_dir: Path) -> None:
    missing = runner.invoke(app, ["search", "规划"])
    assert missing.exit_code == 4
    assert missing.stdout == "" and "planqa index" in missing.stderr

    runner.invoke(app, ["index", str(corpus_dir)])
    empty = runner.invoke(app, ["search", "  "])
    assert empty.exit_code == 2 and "empty" in empty.stderr

    nothing = runner.invoke(app, ["index", str(corpus_dir / "nope")])
    assert nothing.exit_code == 3 and "no such file" in nothing.stderr


def test_bench_without_the_benchmarks_says_so(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed wheel has no bench/: the command explains instead of a traceback."""
    monkeypatch.setattr("planqa.ui.cli.bench_module", lambda name="bench.cli": None)
    result = runner.invoke(app, ["bench", "--json"])
    assert result.exit_code == 2
    assert "source checkout" in result.stderr and result.stdout == ""


def test_bench_is_found_from_the_console_script_of_a_checkout(tmp_path: Path) -> None:
    """The editable install's console script does not put the checkout on sys.path; bench/ is
    still found beside planqa's root __init__.py."""
    code = "from planqa.ui.cli import bench_module; print(bench_module().__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "bench.cli"
