"""Writing an evaluation run to a folder evaluators can open: JSON, JSON Lines, Markdown, plots.

``metrics.json`` is for machines and ``compare``; ``results.jsonl`` keeps every answer with its
citations, passages and verdicts so a wrong answer can be diagnosed (and judged by a human)
without re-running; ``report.md`` is the page a person reads, planqa beside the baseline, with
the failures and what retrieval put in front of the answerer. metrics.json is written last, so a
run interrupted while writing is never mistaken for a complete one.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from planqa.eval.run import EvalRun, QuestionOutcome, Summary, SystemResult
from planqa.eval.rundir import METRICS_FILE, REPORT_FILE, RESULTS_FILE, RUN_FORMAT, json_safe
from planqa.eval.tables import fmt, fmt_delta, markdown_table, metric_rows, one_line
from planqa.eval.verdicts import Agreement, VerdictStore, agreement

#: Markers around the human-verdict section, so it can be refreshed in place as verdicts arrive.
AGREEMENT_START = "<!-- human-verdicts:start -->"
AGREEMENT_END = "<!-- human-verdicts:end -->"
SNIPPET_CHARS = 100
ANSWER_CHARS = 200


@dataclass(frozen=True)
class RunFiles:
    directory: Path
    metrics: Path
    results: Path
    report: Path
    plots: tuple[Path, ...]


# --------------------------------------------------------------------------- metrics.json


def summary_dict(summary: Summary) -> dict[str, Any]:
    """A Summary as flat metrics.json keys (``recall@5``, ``ndcg@10``, ...); NaN becomes null."""
    data = asdict(summary)
    recall = data.pop("recall")
    data.update({f"recall@{k}": value for k, value in recall.items()})
    data["ndcg@10"] = data.pop("ndcg")
    return json_safe(data)


# --------------------------------------------------------------------------- writing


def write_run(run: EvalRun, out_dir: str | Path, *, store: VerdictStore | None = None) -> RunFiles:
    """Write every file of ``run`` into ``out_dir`` (created; existing run files replaced)."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    results = directory / RESULTS_FILE
    with results.open("w", encoding="utf-8") as handle:
        for row in result_rows(run):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    plots = _plots(run, directory)
    report = directory / REPORT_FILE
    report.write_text(render_report(run, plots), encoding="utf-8")
    metrics = directory / METRICS_FILE
    metrics.write_text(
        json.dumps(metrics_dict(run), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    if store is not None:
        refresh_agreement(directory, store)
    return RunFiles(directory, metrics, results, report, plots)


def _plots(run: EvalRun, directory: Path) -> tuple[Path, ...]:
    """The PNGs; a run's numbers matter more than its pictures, so a plotting failure warns."""
    try:
        from planqa.eval.plots import write_plots

        return write_plots(run, directory)
    except ImportError as exc:  # matplotlib missing: still write the numbers
        warnings.warn(f"no plots written ({exc}); install matplotlib", stacklevel=2)
        return ()


def metrics_dict(run: EvalRun) -> dict[str, Any]:
    return {
        "format": RUN_FORMAT,
        "run_id": run.run_id,
        "created": run.created,
        "mode": run.mode,
        "ks": list(run.ks),
        "depth": run.depth,
        "answer_passages": run.answer_passages,
        "settings": json_safe(run.settings),
        "systems": {
            system.system: {
                "overall": summary_dict(system.overall),
                "by_type": {kind: summary_dict(s) for kind, s in system.by_type.items()},
            }
            for system in run.systems
        },
    }


def result_rows(run: EvalRun) -> list[dict[str, Any]]:
    """One row per question: planqa's outcome at the top level, the baseline's nested under
    ``baseline`` (same keys), so every line is self-contained."""
    baseline = {o.id: o for o in run.baseline.questions} if run.baseline else {}
    rows = []
    for outcome in run.planqa.questions:
        row = {
            "id": outcome.id,
            "question": outcome.question,
            "type": outcome.type,
            "answerable": outcome.answerable,
            "gold_answers": list(outcome.gold_answers),
            **outcome_dict(outcome),
        }
        if outcome.id in baseline:
            row["baseline"] = outcome_dict(baseline[outcome.id])
        rows.append(row)
    return rows


def outcome_dict(outcome: QuestionOutcome) -> dict[str, Any]:
    return json_safe(
        {
            "answer": outcome.answer,
            "abstained": outcome.abstained,
            "notice": outcome.notice,
            "latency_ms": round(outcome.latency_ms, 1),
            "citations": [asdict(c) for c in outcome.citations],
            "retrieved": [asdict(p) for p in outcome.retrieved],
            "verdicts": asdict(outcome.verdict),
        }
    )


# --------------------------------------------------------------------------- report.md


def render_report(run: EvalRun, plots: Sequence[Path] = ()) -> str:
    systems = run.systems
    lines = [
        f"# planqa evaluation `{run.run_id}`",
        "",
        f"{run.planqa.overall.questions} gold questions "
        f"({run.planqa.overall.answerable} answerable), answer mode `{run.mode}`, embedding "
        f"model `{run.settings.get('embedding_model', '?')}`, {run.created}. Retrieval metrics "
        f"score the top {run.depth} passages; planqa's answerer reads the first "
        f"{run.answer_passages}. "
        + (
            "The baseline is the plain LangChain pipeline (500/50 recursive chunks, same "
            "embedder, FAISS), answering with its top passage's first sentences."
            if run.baseline
            else "No baseline in this run."
        ),
        "",
        "## Overall",
        "",
        overall_table(systems, run.ks),
        "",
        "## By question type",
        "",
        type_table(systems),
        "",
        "Accuracy is answer accuracy for answerable types and abstention accuracy for "
        "`unanswerable`.",
        "",
    ]
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    lines += ["## planqa failures", "", failures_section(run.planqa), ""]
    lines += [AGREEMENT_START, AGREEMENT_END, ""]
    return "\n".join(lines)


def overall_table(systems: Sequence[SystemResult], ks: Sequence[int]) -> str:
    """Metrics as rows, systems as columns (plus planqa minus baseline when both ran)."""
    dicts = [summary_dict(s.overall) for s in systems]
    header = ["metric", *(s.system for s in systems)]
    if len(systems) == 2:
        header.append("Δ (planqa − baseline)")
    rows = []
    for key, label in metric_rows(ks):
        values = [d.get(key) for d in dicts]
        row = [label, *(fmt(v, key) for v in values)]
        if len(systems) == 2:
            row.append(fmt_delta(values[0], values[1], key))
        rows.append(row)
    return markdown_table(header, rows)


def type_table(systems: Sequence[SystemResult]) -> str:
    types = list(systems[0].by_type)
    header = ["type", "n"]
    for metric in ("accuracy", "R@5", "citation hit"):
        header += [f"{metric} {s.system}" for s in systems]
    rows = []
    for kind in types:
        groups = [s.by_type[kind] for s in systems]
        row = [kind, str(groups[0].questions)]
        row += [fmt(_type_accuracy(kind, g)) for g in groups]
        row += [fmt(g.recall.get(5, math.nan)) for g in groups]
        row += [fmt(g.citation_hit) for g in groups]
        rows.append(row)
    return markdown_table(header, rows)


def _type_accuracy(kind: str, summary: Summary) -> float:
    return summary.abstention_accuracy if kind == "unanswerable" else summary.answer_accuracy


def failures_section(system: SystemResult) -> str:
    """Each wrong question with the gold, the answer, and the passages retrieval ranked first."""
    blocks = []
    for o in system.questions:
        if o.verdict.correct:
            continue
        rank = o.verdict.first_hit_rank
        why = (
            "answered an unanswerable question"
            if not o.answerable
            else ("abstained" if o.abstained else "answer lacks every gold string")
        )
        block = [
            f"### {o.id} [{o.type}] {o.question}",
            "",
            f"- why wrong: {why}",
            f"- gold: {' / '.join(o.gold_answers) or '(none: should abstain)'}",
            f"- answer: {one_line(o.answer, ANSWER_CHARS)}",
        ]
        if o.answerable:
            block.append(
                f"- first evidence rank: {rank if rank is not None else 'not retrieved'}; "
                f"citation hit: {'yes' if o.verdict.citation_hit else 'no'}"
            )
        block.append("- retrieved:")
        for p in o.retrieved:
            where = p.chapter or f"chars {p.start}–{p.end}"
            mark = " **(evidence)**" if p.covers else ""
            block.append(
                f"  {p.rank}. `{p.doc}` {one_line(where, 40)}{mark}: "
                f"{one_line(p.text, SNIPPET_CHARS)}"
            )
        blocks.append("\n".join(block))
    return "\n\n".join(blocks) if blocks else "None: every question was answered correctly."


# --------------------------------------------------------------------------- human verdicts


def refresh_agreement(run_dir: str | Path, store: VerdictStore) -> Agreement | None:
    """Rewrite report.md's human-verdict section from the store; None when there are no verdicts.

    Called after verdicts are recorded (by the CLI or the web UI), so report.md always shows how
    far the automatic verdicts can be trusted on this run.
    """
    run_dir = Path(run_dir)
    result = agreement(run_dir, store)
    section = agreement_section(result) if result.answers.pairs else ""
    report = run_dir / REPORT_FILE
    text = report.read_text(encoding="utf-8") if report.is_file() else ""
    if AGREEMENT_START in text and AGREEMENT_END in text:
        head, rest = text.split(AGREEMENT_START, 1)
        tail = rest.split(AGREEMENT_END, 1)[1]
        text = f"{head}{AGREEMENT_START}\n{section}{AGREEMENT_END}{tail}"
    else:
        text += f"\n{AGREEMENT_START}\n{section}{AGREEMENT_END}\n"
    report.write_text(text, encoding="utf-8")
    return result if result.answers.pairs else None


def agreement_section(result: Agreement) -> str:
    rows = []
    for name, part in (("answer verdict", result.answers), ("citation supports", result.citations)):
        rows.append(
            [
                name,
                str(part.pairs),
                fmt(part.share),
                fmt(part.kappa),
            ]
        )
    return (
        "## Human verdicts\n\n"
        f"{result.verdicts} human verdict(s) by {', '.join(result.evaluators) or '-'}; "
        f"{result.note}\n\n"
        + markdown_table(["agreement with automatic", "pairs", "share agreeing", "Cohen's κ"], rows)
        + "\n"
        + (f"\nDisagreements: {', '.join(result.disagreements)}\n" if result.disagreements else "")
    )
