"""The ``planqa`` command: a thin adapter over the library, like any other user of it.

This module is the typer app (the console script ``planqa.ui.cli:app``) and registers the
commands, which live by job in cli_index (index, search), cli_answer (ask, chat, serve) and
cli_eval (eval, eval-compare, eval-verdicts); cli_shared holds their options and the exit-code
rule. ``planqa bench`` is parsed here and run by the developer benchmarks in the checkout's
bench/, which the wheel does not ship.

Conventions: results on stdout (``--json`` for machines), progress and errors on stderr, and exit
codes from the exception type (2 bad input, 3 bad document, 4 index problem, 5 model problem).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from planqa.ui.cli_answer import ask_command, chat_command, serve_command
from planqa.ui.cli_eval import eval_command, eval_compare_command, eval_verdicts_command
from planqa.ui.cli_index import index_command, search_command
from planqa.ui.cli_shared import GoldArgument, JsonOption, user_errors

app = typer.Typer(
    name="planqa",
    help="Semantic search and cited answers over Chinese planning documents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for name, command in (
    ("index", index_command),
    ("search", search_command),
    ("ask", ask_command),
    ("chat", chat_command),
    ("serve", serve_command),
    ("eval", eval_command),
    ("eval-compare", eval_compare_command),
    ("eval-verdicts", eval_verdicts_command),
):
    app.command(name)(command)

#: The exit code when ``planqa bench`` runs without the benchmarks (an installed wheel).
NO_BENCH_EXIT = 2


def bench_module(name: str = "bench.cli") -> ModuleType | None:
    """The benchmarks' module from a source checkout, or None where there is none.

    ``bench`` is importable when the checkout is on sys.path (``python -m`` from its root); the
    console script of an editable install does not put it there, so the checkout is found as
    the folder holding planqa's own root ``__init__.py``, and bench/ beside it is loaded as the
    package ``bench`` without putting that folder on sys.path. Through importlib, so no module
    of planqa imports bench (tests/test_architecture.py checks that).
    """
    if "bench" not in sys.modules and importlib.util.find_spec("bench") is None:
        import planqa

        package = Path(planqa.__file__).resolve().parent / "bench"
        if not (package / "__init__.py").is_file():
            return None
        spec = importlib.util.spec_from_file_location(
            "bench", package / "__init__.py", submodule_search_locations=[str(package)]
        )
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench"] = module
        spec.loader.exec_module(module)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in {"bench", name}:
            return None
        raise


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
    embedders: Annotated[
        bool,
        typer.Option(
            "--embedders",
            help="Compare the configured model with the static 'fast' model and their "
            "fusion: build chunks/s, query ms, recall@5 per gold set; see docs/scaling.md.",
        ),
    ] = False,
    milvus: Annotated[
        bool,
        typer.Option(
            "--milvus",
            help="Recall@5 and latency of the whole hybrid search in Milvus (Milvus Lite unless "
            "PLANQA_MILVUS_URI names a server) against planqa's local hybrid.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Build the bundled corpus into a temporary index and time warm hybrid searches; with
    --scale, measure build rates, size, memory and latency at 10K, 100K and 1M chunks; with
    --backends, compare the passage-embedding backends (minutes per backend); with
    --embedders, the configured model against the fast static one; with --milvus, search in
    Milvus against planqa's own hybrid.

    Example: planqa bench --repeats 3
    Example: planqa bench --scale --sizes 10000,100000,1000000 --json
    Example: planqa bench --backends --json
    Example: planqa bench --embedders
    Example: planqa bench --milvus --json
    """
    module = bench_module()
    if module is None:
        typer.echo(
            "error: planqa bench runs the developer benchmarks in bench/ of a source checkout, "
            "which an installed planqa does not include; run it from a clone of the repository "
            "(pip install -e . there, or python -m planqa.ui.cli bench from its root)",
            err=True,
        )
        raise typer.Exit(NO_BENCH_EXIT)
    with user_errors():
        module.run_command(
            gold=gold,
            repeats=repeats,
            scale=scale,
            sizes=sizes,
            scale_dir=scale_dir,
            sample=sample,
            backends=backends,
            backend=backend,
            passages=passages,
            rounds=rounds,
            recall=recall,
            embedders=embedders,
            milvus=milvus,
            as_json=as_json,
        )


def main() -> None:
    # Last line of defence for text that escaped the checks at the edges: an unencodable
    # character is printed as "?" rather than ending the run with a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    app()


if __name__ == "__main__":
    sys.exit(main())
