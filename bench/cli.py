"""What ``planqa bench`` runs, behind the thin command in planqa.ui.cli.

The command's options are parsed there (so ``planqa bench --help`` works anywhere); the
measuring and printing live here, with the benchmarks, so the installed product carries none
of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from planqa.corpus.config import load_settings
from planqa.corpus.errors import InputError
from planqa.eval.gold import BUNDLED_DEV_GOLD, load_gold
from planqa.ui.inputs import json_text


def print_json(data: Any) -> None:
    typer.echo(json_text(data, indent=2))


def run_command(
    *,
    gold: Path | None,
    repeats: int,
    scale: bool,
    sizes: str | None,
    scale_dir: Path | None,
    sample: int,
    backends: bool,
    backend: list[str] | None,
    passages: int,
    rounds: int,
    recall: bool,
    embedders: bool,
    milvus: bool,
    as_json: bool,
) -> None:
    """One ``planqa bench`` run: the plain search timing, ``--scale``, ``--backends``,
    ``--embedders`` or ``--milvus``. Raises planqa's own errors (bad options are InputError) for
    the CLI to turn into exit codes."""
    from bench.bench import run_bench

    if embedders or milvus:
        from bench import embedder_bench, milvus_bench

        if milvus:
            result = milvus_bench.run_milvus_bench(load_settings())
            format_table = milvus_bench.format_table
        else:
            result = embedder_bench.run_embedder_bench(load_settings())
            format_table = embedder_bench.format_table
        if as_json:
            print_json(result)
        else:
            typer.echo(format_table(result))
        return

    if backends:
        backend_bench(backend, passages, rounds, recall, gold or BUNDLED_DEV_GOLD, as_json)
        return
    questions = [item.question for item in load_gold(gold or BUNDLED_DEV_GOLD)]
    if scale:
        scale_bench(questions, sizes, scale_dir, sample, repeats, as_json)
        return
    result = run_bench(load_settings(), questions, repeats=repeats, progress=not as_json)
    if as_json:
        print_json(result)
        return
    width = max(len(key) for key in result)
    for key, value in result.items():
        typer.echo(f"{key:<{width}}  {value}")


def backend_bench(
    backends: list[str] | None,
    passages: int,
    rounds: int,
    recall: bool,
    gold: Path,
    as_json: bool,
) -> None:
    """``--backends``: passages/s, cosine against torch and recall per passage backend."""
    from bench.backend_bench import BACKENDS, format_table, run_backend_bench

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


def scale_bench(
    questions: list[str],
    sizes: str | None,
    scale_dir: Path | None,
    sample: int,
    repeats: int,
    as_json: bool,
) -> None:
    """``--scale``: build rates, size, memory and latency at 10K/100K chunks and 1M vectors."""
    from rich.console import Console
    from rich.table import Table

    from bench.embedder_bench import format_table, run_embedder_bench
    from bench.scale import DEFAULT_SCALE_DIR
    from bench.scale_bench import DEFAULT_SIZES, run_scale_bench, summary_rows

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
        # Each embedding choice on the real documents: build rate, latency, recall per set.
        result["embedders"] = run_embedder_bench(
            load_settings(), say=lambda message: (status.update(message), console.log(message))
        )
    if as_json:
        print_json(result)
        return
    header, rows = summary_rows(result)
    table = Table(*header, title="planqa at scale (p50 / p95; see docs/scaling.md for method)")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    typer.echo(format_table(result["embedders"]))
