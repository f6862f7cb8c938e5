"""PNG plots of a run for the README and report.md: recall@k, accuracy by type, latency.

Drawn on ``matplotlib.figure.Figure`` objects directly (the Agg canvas, no pyplot): no global
backend state, nothing to close, safe in a server thread. Labels are English (question types are
English identifiers already), so no CJK font is needed; one is added as a fallback when
installed, so a Chinese run id in a title still renders, and a missing one only warns.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from planqa.eval.run import EvalRun, QuestionOutcome, SystemResult

RECALL_PLOT = "recall_at_k.png"
ACCURACY_PLOT = "accuracy_by_type.png"
LATENCY_PLOT = "latency.png"
COLOURS = {"planqa": "#1f77b4", "baseline": "#ff7f0e"}
DPI = 120
#: Fonts tried, in order, after matplotlib's default for glyphs it lacks (CJK).
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "SimHei",
    "Microsoft YaHei",
)


def write_plots(run: EvalRun, directory: str | Path) -> tuple[Path, ...]:
    """Write the three PNGs into ``directory``; returns their paths."""
    directory = Path(directory)
    with _style():
        return (
            _save(recall_figure(run), directory / RECALL_PLOT),
            _save(accuracy_figure(run), directory / ACCURACY_PLOT),
            _save(latency_figure(run), directory / LATENCY_PLOT),
        )


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    fallback = [name for name in CJK_FONTS if name in installed][:1]
    with matplotlib.rc_context(
        {
            "font.family": ["DejaVu Sans", *fallback],
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    ):
        yield


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(figure, path: Path) -> Path:
    figure.savefig(path, format="png")
    return path


def recall_curve(system: SystemResult, depth: int) -> list[float]:
    """Recall@k for k = 1..depth over answerable questions (a question counts from its first
    full evidence rank on, exactly as ``eval.metrics.recall_at_k`` scores it).

    The report tables give four k; the curve shows where between them the evidence arrives.
    """
    ranks = [o.verdict.first_hit_rank for o in system.questions if o.answerable]
    if not ranks:
        return [math.nan] * depth
    return [
        sum(1 for r in ranks if r is not None and r <= k) / len(ranks) for k in range(1, depth + 1)
    ]


def recall_figure(run: EvalRun):
    figure = _figure(6.4, 4.0)
    axes = figure.add_subplot()
    ks = list(range(1, run.depth + 1))
    for system in run.systems:
        curve = recall_curve(system, run.depth)
        axes.plot(
            ks,
            curve,
            marker="o",
            markersize=4,
            label=system.system,
            color=COLOURS.get(system.system),
        )
        for k in run.ks:
            if k <= run.depth:
                axes.annotate(
                    f"{curve[k - 1]:.2f}",
                    (k, curve[k - 1]),
                    textcoords="offset points",
                    xytext=(0, 6),
                    ha="center",
                    fontsize=8,
                    color=COLOURS.get(system.system),
                )
    axes.axvline(run.answer_passages, color="grey", linestyle=":", linewidth=1)
    reads = f"planqa's answerer reads\nthe top {run.answer_passages}"
    axes.text(run.answer_passages + 0.1, 0.02, reads, fontsize=8, color="grey", va="bottom")
    axes.set(
        xlabel="k (passages)",
        ylabel="evidence recall@k",
        ylim=(0, 1.05),
        xticks=ks,
        title=f"Evidence recall@k ({run.planqa.overall.answerable} answerable questions)",
    )
    axes.legend(loc="lower right", bbox_to_anchor=(1.0, 0.12))
    return figure


def accuracy_figure(run: EvalRun):
    """Accuracy per type: answer accuracy, or abstention accuracy for ``unanswerable``."""
    types = list(run.planqa.by_type)
    labels = [f"{kind}\n(n={run.planqa.by_type[kind].questions})" for kind in types] + [
        f"all\n(n={run.planqa.overall.questions})"
    ]
    figure = _figure(max(6.4, 1.2 * len(labels) + 1.5), 4.2)
    axes = figure.add_subplot()
    systems = run.systems
    width = 0.8 / len(systems)
    for i, system in enumerate(systems):
        values = [_type_accuracy(kind, system) for kind in types] + [system.overall.accuracy]
        positions = [x + (i - (len(systems) - 1) / 2) * width for x in range(len(labels))]
        bars = axes.bar(
            positions,
            [0 if math.isnan(v) else v for v in values],
            width,
            label=system.system,
            color=COLOURS.get(system.system),
        )
        axes.bar_label(
            bars,
            labels=["-" if math.isnan(v) else f"{v:.2f}" for v in values],
            fontsize=8,
            padding=2,
        )
    axes.set_xticks(range(len(labels)), labels, fontsize=9)
    axes.set(ylabel="accuracy", ylim=(0, 1.25), title="Accuracy by question type")
    axes.set_xlabel(
        "unanswerable: share abstained; other types: answer contains a gold string",
        fontsize=8,
        color="grey",
    )
    axes.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    axes.grid(axis="x", visible=False)
    axes.legend(loc="upper right", ncol=len(systems))
    return figure


def _type_accuracy(kind: str, system: SystemResult) -> float:
    summary = system.by_type.get(kind)
    if summary is None:
        return math.nan
    return summary.abstention_accuracy if kind == "unanswerable" else summary.answer_accuracy


def latency_figure(run: EvalRun):
    """Histogram of per-question latency on a log axis (the systems differ by orders)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    figure = _figure(6.4, 3.8)
    axes = figure.add_subplot()
    latencies = {s.system: _latencies(s.questions) for s in run.systems}
    values = [v for series in latencies.values() for v in series]
    low, high = max(min(values), 0.01), max(max(values), 0.02)
    bins = _log_bins(low, high, 30)
    for system in run.systems:
        series = latencies[system.system]
        label = (
            f"{system.system}: p50 {_ms(system.overall.latency_p50_ms)}, "
            f"p95 {_ms(system.overall.latency_p95_ms)}"
        )
        colour = COLOURS.get(system.system)
        axes.hist(series, bins=bins, alpha=0.6, label=label, color=colour)
        axes.axvline(system.overall.latency_p50_ms, color=colour, linestyle="--", linewidth=1)
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set(
        xlabel="latency per question (ms, log scale)",
        ylabel="questions",
        title="Answer latency (dashed: p50)",
    )
    axes.legend(fontsize=8)
    return figure


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def _latencies(questions: Sequence[QuestionOutcome]) -> list[float]:
    return [max(q.latency_ms, 0.01) for q in questions]


def _log_bins(low: float, high: float, count: int) -> list[float]:
    """``count`` bins evenly spaced in log between ``low`` and ``high`` (slightly widened)."""
    start, stop = math.log10(low) - 0.05, math.log10(high) + 0.05
    return [10 ** (start + (stop - start) * i / count) for i in range(count + 1)]
