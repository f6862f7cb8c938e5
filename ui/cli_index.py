"""``planqa index`` and ``planqa search``: building the index and ranking passages in it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planqa.corpus.text_edges import valid_text
from planqa.ui.cli_shared import IndexOption, JsonOption, load_settings, print_json, user_errors
from planqa.ui.inputs import optional_text


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
