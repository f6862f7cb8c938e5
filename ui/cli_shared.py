"""What every ``planqa`` command shares: the common options, the error-to-exit-code rule and
JSON output, kept apart from the commands so each command module imports it without cycles.

Conventions: results on stdout (``--json`` for machines), progress and errors on stderr, and exit
codes from the exception type (2 bad input, 3 bad document, 4 index problem, 5 model problem).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from planqa.corpus.errors import PlanqaError
from planqa.corpus.text_edges import valid_text
from planqa.ui.inputs import json_text

# Quiet the model libraries before anything imports them; planqa prints its own progress.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

IndexOption = Annotated[
    Path | None,
    typer.Option(
        "--index", help="Index directory (default: $PLANQA_INDEX_DIR or ~/.cache/planqa/index)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
ModeOption = Annotated[
    str, typer.Option("--mode", help="extractive (offline, default) or llm (needs PLANQA_LLM_*).")
]
RegionOption = Annotated[
    str | None, typer.Option("--region", help="Only this region (name or alias).")
]
GoldArgument = Annotated[
    Path | None,
    typer.Argument(
        help="Gold JSONL file (default: the bundled development set eval/gold/dev.jsonl)."
    ),
]


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


def print_json(data: Any) -> None:
    """Results for machines: indented JSON on stdout, lone surrogates made safe."""
    typer.echo(json_text(data, indent=2))
