"""``planqa ask``, ``chat`` and ``serve``: answers with citations, in a terminal or the web UI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from planqa.corpus.text_edges import valid_text
from planqa.ui.answer_text import render_answer
from planqa.ui.cli_shared import (
    IndexOption,
    JsonOption,
    ModeOption,
    RegionOption,
    load_settings,
    user_errors,
)
from planqa.ui.inputs import json_text, optional_text


def preload_query_encoder(settings: Any) -> None:
    """Cold starts: begin loading the query encoder while the answering stack is imported."""
    from planqa.index.embedder import make_embedder

    preload = getattr(make_embedder(settings, progress=False), "preload", None)
    if preload is not None:
        preload()


def ask_command(
    question: Annotated[str | None, typer.Argument(help="The question, in plain Chinese.")] = None,
    questions: Annotated[
        Path | None,
        typer.Option("--questions", help="JSONL file of {id, question}; prints one JSON per line."),
    ] = None,
    mode: ModeOption = "extractive",
    region: RegionOption = None,
    index: IndexOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a question with numbered citations, or say it is not in the documents.

    Example: planqa ask "哪个区规划了集成电路测试产业园？"
    """
    from planqa.corpus.errors import InputError, PlanqaError
    from planqa.ui.inputs import read_questions

    question, region = optional_text(question), optional_text(region)
    with user_errors():
        if (question is None) == (questions is None):
            raise InputError("give either a QUESTION or --questions FILE.jsonl")
        # The file is read and checked before any model loads: a bad file fails at once.
        rows = read_questions(questions) if questions is not None else []
        settings = load_settings(index)
        if question is not None or any("error" not in row for row in rows):
            preload_query_encoder(settings)
            from planqa.rag.pipeline import Pipeline

            pipeline = Pipeline.open(settings)
        if question is not None:
            answer = pipeline.ask(question, mode=mode, region=region)
            typer.echo(
                json_text(answer.to_dict(), indent=2)
                if as_json
                else valid_text(render_answer(answer))
            )
            return
    failures = 0
    for row in rows:
        if "error" not in row:
            try:
                row = pipeline.ask(
                    row["question"], mode=mode, region=region, id=row["id"]
                ).to_dict()
            except PlanqaError as exc:
                row = {"id": row["id"], "question": row["question"], "error": str(exc)}
        failures += "error" in row
        typer.echo(json_text(row))
    if failures:
        typer.echo(f"error: {failures} of {len(rows)} questions could not be answered", err=True)
        raise typer.Exit(2)


def chat_command(
    mode: ModeOption = "extractive",
    region: RegionOption = None,
    index: IndexOption = None,
) -> None:
    """Interactive questions with follow-ups (/clear forgets the context, /exit or Ctrl-D quits).

    Example: planqa chat   then   海州区2020年人均地区生产总值是多少？   then   那它的GDP目标呢？
    """
    from planqa.corpus.errors import PlanqaError
    from planqa.rag.pipeline import Conversation, Pipeline

    region = optional_text(region)
    with user_errors():
        pipeline = Pipeline.open(load_settings(index))
    conversation = Conversation()
    while True:
        try:
            line = valid_text(input("问> ")).strip()
        except EOFError:
            break
        if line in {"/exit", "/quit"}:
            break
        if line == "/clear":
            conversation.clear()
            typer.echo("（已清除上下文）")
            continue
        if not line:
            continue
        try:
            typer.echo(
                render_answer(
                    pipeline.ask(line, mode=mode, region=region, conversation=conversation)
                )
                + "\n"
            )
        except PlanqaError as exc:
            typer.echo(f"error: {valid_text(str(exc))}", err=True)


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 7860,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow binding a non-loopback address.")
    ] = False,
    runs: Annotated[
        Path,
        typer.Option(
            "--runs", help="Run folders the 评测 tab lists and writes (like planqa eval)."
        ),
    ] = Path("runs"),
    verdicts: Annotated[
        Path | None,
        typer.Option(
            "--verdicts", help="Human verdict store (SQLite; default: RUNS/verdicts.sqlite3)."
        ),
    ] = None,
    index: IndexOption = None,
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only",
            help="Refuse the HTTP API's document uploads and removals (403).",
        ),
    ] = False,
) -> None:
    """Start the web UI (问答 / 检索 / 文档 / 评测) on http://HOST:PORT.

    Example: planqa serve --port 7860
    Example: planqa serve --read-only
    """
    from planqa.ui.web import serve

    with user_errors():
        serve(
            load_settings(index),
            host=host,
            port=port,
            allow_remote=allow_remote,
            runs_dir=runs,
            verdicts=verdicts,
            read_only=read_only,
        )
