"""``planqa index`` and ``planqa search``: building the index and ranking passages in it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planqa.corpus.text_edges import valid_text
from planqa.ui.cli_shared import IndexOption, JsonOption, load_settings, print_json, user_errors
from planqa.ui.inputs import optional_text

if TYPE_CHECKING:
    from planqa.corpus.settings import Settings
    from planqa.index.builder import BuildReport


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
    fast_first: Annotated[
        bool,
        typer.Option(
            "--fast-first",
            help="Build a new index with the fast static model (searchable in seconds to "
            "minutes), then upgrade its vectors to the configured model; stopping the upgrade "
            "leaves a working index, and --upgrade resumes it.",
        ),
    ] = False,
    upgrade: Annotated[
        bool,
        typer.Option(
            "--upgrade",
            help="Only upgrade an index built --fast-first to the configured model (resumes "
            "where a stopped upgrade left off).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Build or update the index; unchanged documents are not re-embedded.

    Example: planqa index corpus/documents
    Example: planqa index --add new_plan.docx
    Example: planqa index --fast-first my_province/
    """
    from planqa.corpus.errors import InputError
    from planqa.ui.inputs import check_index_locations

    with user_errors():
        settings = load_settings(index)
        if add and not paths:
            raise InputError("--add needs the files to add, e.g. planqa index --add plan.txt")
        if upgrade and (paths or add or rebuild or fast_first):
            raise InputError("--upgrade takes no files and no other index option")
        check_index_locations(settings)  # before any embedding work, not after it
        if fast_first:
            settings = settings.model_copy(update={"fast_first": True})
        if upgrade:
            upgrade_step(settings, as_json)
            return
        report = _build(settings, paths, add, rebuild)
    if fast_first:
        if not as_json:
            _print_report(report, False)
        upgrade_step(settings, as_json, built=report.to_dict())
        return
    _print_report(report, as_json)
    from planqa.index.upgrade import pending_upgrade

    if pending_upgrade(settings) and not as_json:
        typer.echo(
            f"the index answers with the fast model until its vectors are upgraded to "
            f"{settings.embedding_model}: run `planqa index --upgrade` (or `planqa serve`)",
            err=True,
        )


def _build(settings: Settings, paths: list[Path] | None, add: bool, rebuild: bool) -> BuildReport:
    from planqa.index.builder import add_documents, build_index

    if add:
        return add_documents(settings, paths or [], progress=True)
    return build_index(settings, paths or None, rebuild=rebuild, progress=True)


def upgrade_step(settings: Settings, as_json: bool, built: dict | None = None) -> None:
    """Upgrade the index's vectors in the foreground, with a progress bar; Ctrl-C stops it with
    the index still answering (exit 130) and the vectors embedded so far kept for a resume."""
    from planqa.index.upgrade import pending_upgrade, upgrade_index

    if not pending_upgrade(settings):
        if as_json:
            print_json({"index": built, "upgrade": None} if built else {"upgrade": None})
        else:
            typer.echo(
                f"nothing to upgrade: the index is not waiting for {settings.embedding_model}"
            )
        return
    typer.echo(
        f"searchable now; upgrading the vectors to {settings.embedding_model} "
        "(Ctrl-C stops with the index still answering; `planqa index --upgrade` resumes)",
        err=True,
    )
    try:
        with user_errors():
            upgraded = upgrade_index(settings, progress=True)
    except KeyboardInterrupt:
        typer.echo("upgrade stopped; the index answers with the fast model meanwhile", err=True)
        raise typer.Exit(130) from None
    if as_json:
        body = upgraded.to_dict()
        print_json({"index": built, "upgrade": body} if built else {"upgrade": body})
        return
    typer.echo(
        f"upgraded {upgraded.chunks} chunks to {upgraded.model} ({upgraded.embedded} embedded) "
        f"-> version {upgraded.version}"
    )


def _print_report(report: BuildReport, as_json: bool) -> None:
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
