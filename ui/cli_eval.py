"""``planqa eval``, ``eval-compare`` and ``eval-verdicts``: scoring answers against a gold set,
comparing two runs, and checking the automatic verdicts against people's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planqa.ui.cli_shared import (
    GoldArgument,
    IndexOption,
    JsonOption,
    load_settings,
    print_json,
    user_errors,
)


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
