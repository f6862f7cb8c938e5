"""The ``planqa`` command: a thin adapter over the library, like any other user of it.

Conventions: results on stdout (``--json`` for machines), progress and errors on stderr, and exit
codes from the exception type (2 bad input, 3 bad document, 4 index problem, 5 model problem).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from planqa.corpus.errors import PlanqaError
from planqa.corpus.text_edges import valid_text
from planqa.ui.inputs import json_text, optional_text

# Quiet the model libraries before anything imports them; planqa prints its own progress.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

app = typer.Typer(
    name="planqa",
    help="Semantic search and cited answers over Chinese planning documents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

IndexOption = Annotated[
    Path | None,
    typer.Option(
        "--index", help="Index directory (default: $PLANQA_INDEX_DIR or ~/.cache/planqa/index)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn planqa's own errors into one line on stderr and a non-zero exit code."""
    try:
        yield
    except PlanqaError as exc:
        # The message may quote the user's input, lone surrogates and all.
        typer.echo(f"error: {valid_text(str(exc))}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


def load_settings(index: Path | None = None, **overrides: Any):
    """Settings from flags, environment and planqa.toml; a bad value is an InputError."""
    from planqa.corpus.config import load_settings as load

    values = {k: v for k, v in overrides.items() if v is not None}
    if index is not None:
        values["index_dir"] = index
    return load(**values)


def preload_query_encoder(settings: Any) -> None:
    """Cold starts: begin loading the query encoder while the answering stack is imported."""
    from planqa.index.embedder import make_embedder

    preload = getattr(make_embedder(settings, progress=False), "preload", None)
    if preload is not None:
        preload()


def print_json(data: Any) -> None:
    typer.echo(json_text(data, indent=2))


@app.command("index")
def index_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders to index (default: the bundled corpus)."),
    ] = None,
    index: IndexOption = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Ignore the existing index.")] = False,
    add: Annotated[
        bool,
        typer.Option(
            "--add",
            help="Add (or replace) only PATHS in the current index, without re-reading the "
            "rest of the corpus: seconds at 100K chunks.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Build or update the index; unchanged documents are not re-embedded.

    Example: planqa index corpus/documents
    Example: planqa index --add new_plan.docx
    """
    from planqa.corpus.errors import InputError
    from planqa.index.builder import add_documents, build_index
    from planqa.ui.inputs import check_index_locations

    with user_errors():
        settings = load_settings(index)
        if add and not paths:
            raise InputError("--add needs the files to add, e.g. planqa index --add plan.txt")
        check_index_locations(settings)  # before any embedding work, not after it
        if add:
            report = add_documents(settings, paths, progress=True)
        else:
            report = build_index(settings, paths or None, rebuild=rebuild, progress=True)
    for problem in report.problems:
        typer.echo(f"skipped {problem.path}: {problem.reason}", err=True)
    if as_json:
        print_json(report.to_dict())
        return
    if report.up_to_date:
        typer.echo(
            f"index is up to date: {report.documents} documents, {report.chunks} chunks "
            f"({report.index_dir})"
        )
        return
    changes = ", ".join(
        f"{label} {len(names)}"
        for label, names in (
            ("added", report.added),
            ("changed", report.changed),
            ("removed", report.removed),
        )
        if names
    )
    typer.echo(
        f"indexed {report.documents} documents, {report.chunks} chunks in {report.seconds:.1f} s "
        f"({report.embedded} embedded, {report.reused} reused; {changes or 'no document changes'}) "
        f"-> {report.index_dir}"
    )


@app.command("search")
def search_command(
    query: Annotated[str, typer.Argument(help="Question or keywords, in Chinese or English.")],
    k: Annotated[int, typer.Option("--k", "-k", help="Number of passages.")] = 10,
    region: Annotated[
        str | None, typer.Option("--region", help="Only this region (name or alias).")
    ] = None,
    doc: Annotated[
        str | None, typer.Option("--doc", help="Only this document (file name).")
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, dense or bm25.")] = "hybrid",
    index: IndexOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rank passages for a query.

    Example: planqa search "集成电路测试产业园" --k 3
    """
    from planqa.index.search import HybridSearcher

    query, region, doc = valid_text(query), optional_text(region), optional_text(doc)
    with user_errors():
        settings = load_settings(index)
        searcher = HybridSearcher.open(settings)
        hits = searcher.search(query, k, region=region, doc=doc, mode=mode)
    if as_json:
        print_json([hit.to_dict() for hit in hits])
        return
    if not hits:
        typer.echo("no matching passages")
        return
    for rank, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        snippet = " ".join(chunk.text.split())
        snippet = snippet if len(snippet) <= 160 else snippet[:159] + "…"
        typer.echo(
            f"{rank}. [{hit.score:.4f}] {chunk.region} · {chunk.doc} [{chunk.start}:{chunk.end}]"
        )
        if chunk.chapter:
            typer.echo(f"   {chunk.chapter}")
        typer.echo(f"   {snippet}")


ModeOption = Annotated[
    str, typer.Option("--mode", help="extractive (offline, default) or llm (needs PLANQA_LLM_*).")
]
RegionOption = Annotated[
    str | None, typer.Option("--region", help="Only this region (name or alias).")
]


def render_answer(answer) -> str:
    """Plain text for people: the answer, then each citation with where it comes from."""
    from planqa.rag.answer import NOT_FOUND

    lines = [answer.answer]
    if answer.notice:
        lines.insert(0, f"（{answer.notice}）")
    for citation in answer.citations:
        quote = " ".join(citation.text.split())
        chapter = citation.chapter or "（无章节）"
        lines.append(
            f"\n[{citation.n}] {citation.region} ·《{citation.title}》\n    {chapter}"
            f" · {citation.doc} [{citation.start}:{citation.end}]\n    {quote[:300]}"
        )
    if answer.abstained and answer.answer == NOT_FOUND and answer.retrieved:
        lines.append("\n最接近的段落（仅供参考）：")
        for rank, hit in enumerate(answer.retrieved[:3], start=1):
            chunk = hit.chunk
            snippet = " ".join(chunk.text.split())[:120]
            lines.append(
                f"  {rank}. {chunk.region} · {chunk.chapter} [{chunk.start}:{chunk.end}] {snippet}"
            )
    return "\n".join(lines)


@app.command("ask")
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


@app.command("chat")
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


@app.command("serve")
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
) -> None:
    """Start the web UI (问答 / 检索 / 文档 / 评测) on http://HOST:PORT.

    Example: planqa serve --port 7860
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
        )


GoldArgument = Annotated[
    Path | None,
    typer.Argument(
        help="Gold JSONL file (default: the bundled development set eval/gold/dev.jsonl)."
    ),
]


@app.command("eval")
def eval_command(
    gold: GoldArgument = None,
    baseline: Annotated[
        bool,
        typer.Option("--baseline", help="Also answer with a plain LangChain pipeline."),
    ] = False,
    mode: Annotated[
        str, typer.Option("--mode", help="Answer mode: extractive (default) or llm.")
    ] = "extractive",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Run folder to write (default: ./runs/<run id>)."),
    ] = None,
    verdicts: Annotated[
        Path | None,
        typer.Option("--verdicts", help="Human verdict store (SQLite); report.md shows agreement."),
    ] = None,
    retrieval_modes: Annotated[
        bool,
        typer.Option("--retrieval-modes", help="Also print recall@k per retrieval mode."),
    ] = False,
    index: IndexOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a gold set and score it: answer and abstention accuracy, citations, evidence
    recall@k/MRR/nDCG, latency; writes metrics.json, results.jsonl, report.md and plots.

    Uses the index at --index (build it first with `planqa index`).
    Example: planqa eval eval/gold/dev.jsonl --baseline --out runs/dev
    """
    from planqa.eval.gold import BUNDLED_DEV_GOLD, load_gold
    from planqa.eval.report import metrics_dict, overall_table, type_table, write_run
    from planqa.eval.retrieval import evaluate_retrieval, format_table, format_type_table
    from planqa.eval.run import run_evaluation
    from planqa.eval.verdicts import VerdictStore
    from planqa.rag.pipeline import Pipeline

    with user_errors():
        items = load_gold(gold or BUNDLED_DEV_GOLD)
        pipeline = Pipeline.open(load_settings(index))
        run = run_evaluation(items, pipeline, mode=mode, baseline=baseline, progress=not as_json)
        store = VerdictStore(verdicts) if verdicts is not None else None
        files = write_run(run, out or Path("runs") / run.run_id, store=store)
        by_mode = evaluate_retrieval(items, pipeline.searcher) if retrieval_modes else None
    if as_json:
        data = metrics_dict(run) | {"directory": str(files.directory)}
        if by_mode is not None:
            data["retrieval_modes"] = by_mode.to_dict()
        print_json(data)
        return
    typer.echo(overall_table(run.systems, run.ks))
    typer.echo("\nby question type:\n" + type_table(run.systems))
    if by_mode is not None:
        typer.echo("\nretrieval modes:\n" + format_table(by_mode))
        typer.echo("\nrecall@5 by question type:\n" + format_type_table(by_mode, k=5))
    typer.echo(
        f"\nwrote {files.directory}/: report.md, metrics.json, results.jsonl, "
        f"{len(files.plots)} plots",
        err=True,
    )


@app.command("eval-compare")
def eval_compare_command(
    run_a: Annotated[Path, typer.Argument(help="Reference run folder (written by planqa eval).")],
    run_b: Annotated[Path, typer.Argument(help="Candidate run folder.")],
    as_json: JsonOption = False,
) -> None:
    """Two evaluation runs side by side: metric deltas and every question that flipped.

    Example: planqa eval-compare runs/before runs/after
    """
    from dataclasses import asdict

    from planqa.eval.compare import compare_runs, format_comparison

    with user_errors():
        comparison = compare_runs(run_a, run_b)
    if as_json:
        print_json(asdict(comparison))
        return
    typer.echo(format_comparison(comparison))


@app.command("eval-verdicts")
def eval_verdicts_command(
    run_dir: Annotated[Path, typer.Argument(help="Run folder whose verdicts to summarise.")],
    verdicts: Annotated[Path, typer.Option("--verdicts", help="Human verdict store (SQLite).")],
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Also export this run's verdicts as CSV.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Agreement of human and automatic verdicts on a run; refreshes the run's report.md.

    Example: planqa eval-verdicts runs/dev --verdicts verdicts.sqlite3 --csv verdicts.csv
    """
    from planqa.eval.report import agreement_section, refresh_agreement
    from planqa.eval.rundir import load_run_dir
    from planqa.eval.verdicts import VerdictStore, agreement

    with user_errors():
        store = VerdictStore(verdicts)
        refresh_agreement(run_dir, store)
        result = agreement(run_dir, store)
        if csv_out is not None:
            rows = store.export_csv(csv_out, run_id=load_run_dir(run_dir).run_id)
            typer.echo(f"wrote {rows} verdicts to {csv_out}", err=True)
    if as_json:
        print_json(result.to_dict())
        return
    typer.echo(agreement_section(result) if result.answers.pairs else "no human verdicts yet")


@app.command("bench")
def bench_command(
    gold: GoldArgument = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed passes.")] = 3,
    scale: Annotated[
        bool,
        typer.Option(
            "--scale",
            help="Benchmark at 10K/100K chunks (scale corpus) and 1M vectors; see docs/scaling.md.",
        ),
    ] = False,
    sizes: Annotated[
        str | None,
        typer.Option("--sizes", help="With --scale: comma-separated sizes, e.g. 10000,100000."),
    ] = None,
    scale_dir: Annotated[
        Path | None,
        typer.Option("--scale-dir", help="With --scale: news corpus (default ../shared/scale)."),
    ] = None,
    sample: Annotated[
        int, typer.Option("--sample", min=100, help="With --scale: chunks embedded for real.")
    ] = 3000,
    backends: Annotated[
        bool,
        typer.Option(
            "--backends",
            help="Compare passage backends (torch, onnx, onnx-int8): passages/s, cosine vs "
            "torch, dev-set recall@5; see docs/scaling.md.",
        ),
    ] = False,
    backend: Annotated[
        list[str] | None,
        typer.Option("--backend", help="With --backends: only these (repeatable)."),
    ] = None,
    passages: Annotated[
        int, typer.Option("--passages", min=1, help="With --backends: sample passages timed.")
    ] = 96,
    rounds: Annotated[
        int, typer.Option("--rounds", min=1, help="With --backends: interleaved timed passes.")
    ] = 3,
    recall: Annotated[
        bool,
        typer.Option(
            "--recall/--no-recall", help="With --backends: index the corpus per backend for R@5."
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Build the bundled corpus into a temporary index and time warm hybrid searches; with
    --scale, measure build rates, size, memory and latency at 10K, 100K and 1M chunks; with
    --backends, compare the passage-embedding backends (minutes per backend).

    Example: planqa bench --repeats 3
    Example: planqa bench --scale --sizes 10000,100000,1000000 --json
    Example: planqa bench --backends --json
    """
    from planqa.eval.bench import run_bench
    from planqa.eval.gold import BUNDLED_DEV_GOLD, load_gold

    with user_errors():
        if backends:
            _backend_bench(backend, passages, rounds, recall, gold or BUNDLED_DEV_GOLD, as_json)
            return
        questions = [item.question for item in load_gold(gold or BUNDLED_DEV_GOLD)]
        if scale:
            _scale_bench(questions, sizes, scale_dir, sample, repeats, as_json)
            return
        result = run_bench(load_settings(), questions, repeats=repeats, progress=not as_json)
    if as_json:
        print_json(result)
        return
    width = max(len(key) for key in result)
    for key, value in result.items():
        typer.echo(f"{key:<{width}}  {value}")


def _backend_bench(
    backends: list[str] | None,
    passages: int,
    rounds: int,
    recall: bool,
    gold: Path,
    as_json: bool,
) -> None:
    from planqa.corpus.errors import InputError
    from planqa.eval.backend_bench import BACKENDS, format_table, run_backend_bench

    chosen = list(dict.fromkeys(backends)) if backends else list(BACKENDS)
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown:
        raise InputError(f"--backend {unknown[0]!r}: choose from {', '.join(BACKENDS)}")
    result = run_backend_bench(
        load_settings(), chosen, sample=passages, rounds=rounds, recall=recall, gold=gold
    )
    if as_json:
        print_json(result)
        return
    typer.echo(format_table(result))


def _scale_bench(
    questions: list[str],
    sizes: str | None,
    scale_dir: Path | None,
    sample: int,
    repeats: int,
    as_json: bool,
) -> None:
    from rich.console import Console
    from rich.table import Table

    from planqa.corpus.errors import InputError
    from planqa.eval.scale import DEFAULT_SCALE_DIR
    from planqa.eval.scale_bench import DEFAULT_SIZES, run_scale_bench, summary_rows

    try:
        chosen = [int(s.replace("_", "")) for s in sizes.split(",")] if sizes else DEFAULT_SIZES
    except ValueError:
        raise InputError(f"--sizes {sizes!r}: use numbers like 10000,100000,1000000") from None
    console = Console(stderr=True)
    with console.status("scale benchmark") as status:
        result = run_scale_bench(
            load_settings(),
            questions,
            sizes=chosen,
            scale_dir=scale_dir or DEFAULT_SCALE_DIR,
            sample_size=sample,
            repeats=repeats,
            say=lambda message: (status.update(message), console.log(message)),
        )
    if as_json:
        print_json(result)
        return
    header, rows = summary_rows(result)
    table = Table(*header, title="planqa at scale (p50 / p95; see docs/scaling.md for method)")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def main() -> None:
    # Last line of defence for text that escaped the checks at the edges: an unencodable
    # character is printed as "?" rather than ending the run with a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    app()


if __name__ == "__main__":
    sys.exit(main())
