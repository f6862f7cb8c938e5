"""Human review of a run's answers, as plain functions (the web UI's 评测 tab is a thin adapter).

Everything the tab does is here so that it is tested without a browser and usable from a script:
find the runs an evaluator can open, turn a gold file into a run, step through its questions,
record verdicts and measure agreement — with the automatic verdicts, per evaluator and between
evaluators (:mod:`eval.raters`). The export is :mod:`eval.verdict_export`.

**Every review is of a run directory.** A gold file without answers is answered once by the
pipeline and written as an ordinary run folder (``ui-<name>-<fingerprint>``) in the evaluation
output directory, the same place ``planqa eval`` writes to. Three reasons: a verdict must refer
to an answer that is kept (an answer regenerated after an index rebuild may differ from the one
that was judged); ``planqa eval-verdicts``, ``eval-compare`` and ``report.md``'s human-verdict
section then work on it unchanged; and loading the same gold file again with the same index and
settings finds the same run, with the verdicts already given, instead of answering again.

**Verdicts go to one SQLite store** (``eval.verdicts.VerdictStore``, one committed transaction
per verdict), by default ``<runs dir>/verdicts.sqlite3``, so ``planqa eval-verdicts RUN --verdicts
runs/verdicts.sqlite3`` reads what the UI recorded. After each verdict the run's ``report.md`` is
refreshed, as the CLI does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from planqa.corpus.errors import InputError
from planqa.eval.gold import BUNDLED_DEV_GOLD, Evidence, GoldItem, load_gold
from planqa.eval.raters import RaterAgreement, rater_agreement
from planqa.eval.report import refresh_agreement, write_run
from planqa.eval.run import run_evaluation
from planqa.eval.rundir import METRICS_FILE, RUN_FORMAT, RunDir, load_run_dir
from planqa.eval.verdicts import Agreement, HumanVerdict, VerdictStore, agreement
from planqa.rag.pipeline import Pipeline

log = logging.getLogger("planqa.eval.review")

#: Where ``planqa eval`` writes runs when no ``--out`` is given (relative to the working dir).
DEFAULT_RUNS_DIR = Path("runs")
#: The verdict store's file name inside the runs directory.
VERDICTS_FILE = "verdicts.sqlite3"
#: A copy of the gold file kept in runs made from one, so its evidence can be shown later.
GOLD_COPY = "gold.jsonl"
UI_RUN_PREFIX = "ui-"
_SLUG_RE = re.compile(r"[^\w-]+")

#: One lock per run id: two browser tabs loading the same gold file answer it once.
_RUN_LOCKS: dict[str, threading.Lock] = {}
_RUN_LOCKS_GUARD = threading.Lock()
#: report.md is rewritten after every verdict; one writer at a time within this process.
_REPORT_LOCK = threading.Lock()


def default_store_path(runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Path:
    return Path(runs_dir) / VERDICTS_FILE


# --------------------------------------------------------------------------- finding runs


@dataclass(frozen=True)
class RunChoice:
    """A run folder found under the runs directory, described from its metrics.json alone."""

    path: Path
    run_id: str
    created: str
    questions: int

    @property
    def label(self) -> str:
        return f"{self.path.name} · {self.questions} 题 · {self.created}"


def find_runs(runs_dir: str | Path) -> list[RunChoice]:
    """Run folders directly under ``runs_dir``, newest first; anything else is skipped.

    Only metrics.json is read (not results.jsonl), so listing many runs stays quick; a folder
    that is not a run (or is half-written, without metrics.json) is simply not offered.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.name.startswith(".") or not (path / METRICS_FILE).is_file():
            continue
        try:
            metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
            if not isinstance(metrics, dict) or metrics.get("format") != RUN_FORMAT:
                continue
            overall = metrics["systems"]["planqa"]["overall"]
            found.append(
                RunChoice(
                    path=path,
                    run_id=str(metrics["run_id"]),
                    created=str(metrics.get("created", "")),
                    questions=int(overall.get("questions") or 0),
                )
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return sorted(found, key=lambda run: (run.created, run.path.name), reverse=True)


# --------------------------------------------------------------------------- gold -> run


def gold_run_id(gold_path: str | Path, pipeline: Pipeline, *, name: str | None = None) -> str:
    """``ui-<name>-<fingerprint>``: the same gold file, index and answer settings give the same id.

    The fingerprint covers everything that changes the answers (the gold file's bytes, the index
    manifest with its file hashes, the answerer settings), so a rebuilt index gets a new run
    rather than showing verdicts next to answers nobody judged.
    """
    path = Path(gold_path)
    settings = pipeline.settings
    digest = hashlib.sha256()
    digest.update(path.read_bytes())
    manifest = pipeline.searcher.contents.manifest.to_dict()
    digest.update(json.dumps(manifest, sort_keys=True, ensure_ascii=False, default=str).encode())
    digest.update(f"extractive|{settings.answer_passages}|{settings.abstain_threshold}".encode())
    slug = _SLUG_RE.sub("_", name or path.stem).strip("_")[:40] or "gold"
    return f"{UI_RUN_PREFIX}{slug}-{digest.hexdigest()[:10]}"


def run_for_gold(
    gold_path: str | Path,
    pipeline: Pipeline,
    runs_dir: str | Path,
    *,
    name: str | None = None,
    progress: bool = False,
    on_answer: Callable[[int, int], None] | None = None,
) -> Path:
    """The run folder of ``gold_path`` answered by ``pipeline`` (extractive), made if missing.

    The gold file is validated first (every bad line reported). A new run is written into a
    hidden temporary folder and renamed into place only when complete, so a crash never leaves
    a half-written run that a later load would take for the real one. ``name`` names the run
    (default: the file's stem; an upload's temporary path has the original name).
    ``on_answer(done, total)`` is called before the first question and after each answer (the
    web UI's progress line, in words); ``progress`` is the tqdm bar on stderr (the CLI's).
    """
    gold_path = Path(gold_path)
    items = load_gold(gold_path)
    run_id = gold_run_id(gold_path, pipeline, name=name)
    root = Path(runs_dir)
    target = root / run_id
    with _run_lock(run_id):
        if (target / METRICS_FILE).is_file():
            load_run_dir(target)  # a damaged folder is reported, never silently replaced
            return target
        if target.exists():
            raise InputError(
                f"{target} exists but is not a complete run; move it away and load again"
            )
        answering = pipeline if on_answer is None else _Counting(pipeline, len(items), on_answer)
        run = run_evaluation(
            items, cast(Pipeline, answering), mode="extractive", progress=progress, run_id=run_id
        )
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".tmp-{run_id}-{uuid.uuid4().hex[:8]}"
        try:
            write_run(run, staging)
            shutil.copyfile(gold_path, staging / GOLD_COPY)
            try:
                os.replace(staging, target)
            except OSError:
                # Another process finished the same run first: use theirs, it is the same run.
                if not (target / METRICS_FILE).is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


class _Counting:
    """The pipeline, counting the questions it answers: ``run_evaluation`` reports progress only
    as a tqdm bar ("planqa 22%| 9/40 q"), which a Chinese page must not show; this reports the
    count itself, so the page can say 「已回答 9/40 题」. Everything else is the pipeline's."""

    def __init__(self, pipeline: Pipeline, total: int, report: Callable[[int, int], None]) -> None:
        self._pipeline, self._total, self._report, self._done = pipeline, total, report, 0
        report(0, total)

    def ask(self, *args: Any, **kwargs: Any) -> Any:
        answer = self._pipeline.ask(*args, **kwargs)
        self._done += 1
        self._report(self._done, self._total)
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)


def _run_lock(run_id: str) -> threading.Lock:
    with _RUN_LOCKS_GUARD:
        return _RUN_LOCKS.setdefault(run_id, threading.Lock())


# --------------------------------------------------------------------------- a review


@dataclass(frozen=True)
class Review:
    """An opened run: its rows in order, and the gold evidence of each question where known.

    ``evidence`` is empty when no gold file matching the run is found (runs written by
    ``planqa eval`` do not keep the quotes); the tab then shows the gold answers only.
    """

    run: RunDir
    evidence: Mapping[str, tuple[Evidence, ...]]
    gold_source: Path | None

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def size(self) -> int:
        return len(self.run.results)

    def row(self, index: int) -> dict[str, Any]:
        """The results.jsonl row of the question at ``index`` (clamped into range)."""
        return self.run.results[self.clamp(index)]

    def clamp(self, index: int) -> int:
        return max(0, min(int(index), self.size - 1))

    def index_of(self, question_id: str) -> int:
        for index, row in enumerate(self.run.results):
            if row["id"] == question_id:
                return index
        raise InputError(f"question {question_id!r} is not in run {self.run_id}")


def open_review(run_dir: str | Path) -> Review:
    """Load a run folder for review; InputError if it is not a run or has no questions."""
    run = load_run_dir(run_dir)
    if not run.results:
        raise InputError(f"{run.path} has no questions to review")
    gold_source, items = _matching_gold(run)
    evidence = {item.id: item.evidence for item in items}
    return Review(run=run, evidence=evidence, gold_source=gold_source)


def _matching_gold(run: RunDir) -> tuple[Path | None, list[GoldItem]]:
    """The gold items the run was made from: its own copy, else the bundled dev set if it fits.

    A candidate fits only if it has every question of the run with the same text, so evidence
    of one set is never shown under another set's question that happens to share an id.
    """
    for candidate in (run.path / GOLD_COPY, BUNDLED_DEV_GOLD):
        if not candidate.is_file():
            continue
        try:
            items = load_gold(candidate)
        except InputError:
            continue
        questions = {item.id: item.question for item in items}
        if all(questions.get(row["id"]) == row.get("question") for row in run.results):
            return candidate, items
    return None, []


# --------------------------------------------------------------------------- verdicts


def judged(review: Review, store: VerdictStore, evaluator: str) -> dict[str, HumanVerdict]:
    """This evaluator's latest verdict per question of the run."""
    evaluator = (evaluator or "").strip()
    if not evaluator:
        return {}
    return {v.question_id: v for v in store.verdicts(review.run_id, evaluator=evaluator)}


def first_unjudged(review: Review, store: VerdictStore, evaluator: str, start: int = 0) -> int:
    """The first question at or after ``start`` (wrapping around) the evaluator has not judged;
    ``start`` itself when every question is judged. Where a returning evaluator resumes."""
    done = judged(review, store, evaluator)
    for step in range(review.size):
        index = (start + step) % review.size
        if review.run.results[index]["id"] not in done:
            return index
    return review.clamp(start)


@dataclass(frozen=True)
class Saved:
    """A recorded verdict; ``report_error`` says why report.md could not be refreshed, if not."""

    verdict: HumanVerdict
    report_error: str | None = None


def save_verdict(
    review: Review,
    store: VerdictStore,
    question_id: str,
    *,
    evaluator: str,
    verdict: str,
    citation_supports: bool | None,
    note: str = "",
) -> Saved:
    """Record one verdict (one committed transaction), then refresh the run's report.md.

    The verdict is on disk before report.md is touched; a report that cannot be rewritten (a
    read-only run folder) is reported in ``Saved.report_error`` and does not undo the verdict.
    """
    review.index_of(question_id)  # a verdict on a question the run lacks is an input error
    saved = store.record(
        review.run_id,
        question_id,
        verdict,
        evaluator=(evaluator or "").strip(),
        citation_supports=citation_supports,
        note=(note or "").strip(),
    )
    try:
        with _REPORT_LOCK:
            refresh_agreement(review.path, store)
    except (OSError, InputError) as exc:
        log.warning("verdict saved, but %s/report.md was not refreshed: %s", review.path, exc)
        return Saved(saved, str(exc))
    return Saved(saved)


def run_agreement(review: Review, store: VerdictStore) -> Agreement:
    """Agreement of every evaluator's latest verdicts with the run's automatic verdicts
    (``partial`` counted as wrong), exactly as report.md shows it."""
    return agreement(review.path, store)


def review_agreement(review: Review, store: VerdictStore) -> RaterAgreement:
    """What the 评测 tab shows: each evaluator against the automatic verdicts, and evaluators
    against each other where they judged the same questions (:mod:`eval.raters`)."""
    return rater_agreement(review.run_id, review.run.results, store)
