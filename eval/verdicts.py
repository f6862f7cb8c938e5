"""Human verdicts on a run's answers, kept in SQLite, and how well the automatic verdicts agree.

The automatic verdict is string containment: cheap, but it can credit an answer that quotes the
right number for the wrong thing, and miss a correct paraphrase. Evaluators therefore judge
answers by hand (in the web UI's 评测 tab or by script); this store keeps those judgements and
``agreement`` says how far the automatic numbers can be trusted.

Durability: each ``record`` is one committed transaction in WAL mode with ``synchronous=FULL``,
so a verdict is on disk when ``record`` returns, whatever happens to the process afterwards (a
crash, a killed web server, a reload). Every verdict is kept in ``verdict_history``; the table
``latest`` holds the newest per (run, question, evaluator), which is what agreement reads.
Each operation opens its own short connection, so the store is safe to share between threads
(Gradio handlers) and processes.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from planqa.corpus.errors import InputError
from planqa.eval.metrics import cohens_kappa, ratio
from planqa.eval.rundir import json_safe, load_run_dir

VERDICTS = ("correct", "partial", "wrong")
PartialAs = Literal["wrong", "correct", "exclude"]
CSV_COLUMNS = (
    "run_id",
    "question_id",
    "evaluator",
    "verdict",
    "citation_supports",
    "note",
    "timestamp",
)

_COLUMNS = "run_id, question_id, evaluator, verdict, citation_supports, note, timestamp"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS verdict_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    question_id TEXT NOT NULL,
    evaluator TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN {VERDICTS}),
    citation_supports INTEGER CHECK (citation_supports IN (0, 1)),
    note TEXT NOT NULL DEFAULT '',
    timestamp TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (
    run_id TEXT NOT NULL,
    question_id TEXT NOT NULL,
    evaluator TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN {VERDICTS}),
    citation_supports INTEGER CHECK (citation_supports IN (0, 1)),
    note TEXT NOT NULL DEFAULT '',
    timestamp TEXT NOT NULL,
    PRIMARY KEY (run_id, question_id, evaluator)
);
"""


@dataclass(frozen=True)
class HumanVerdict:
    """One evaluator's judgement of one answer. ``timestamp`` is ISO 8601 in UTC."""

    run_id: str
    question_id: str
    evaluator: str
    verdict: str
    citation_supports: bool | None
    note: str
    timestamp: str


class VerdictStore:
    """``VerdictStore(path)``: created on first use; every method is one short transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connection() as connection:
                connection.executescript(_SCHEMA)  # idempotent; executescript commits itself
        except sqlite3.DatabaseError as exc:
            raise InputError(f"cannot use {self.path} as a verdict store ({exc})") from exc

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10.0, isolation_level=None)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            yield connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # ------------------------------------------------------------------ writing
    def record(
        self,
        run_id: str,
        question_id: str,
        verdict: str,
        *,
        evaluator: str,
        citation_supports: bool | None = None,
        note: str = "",
        timestamp: datetime | str | None = None,
    ) -> HumanVerdict:
        """Save a verdict (history row + latest upsert, one transaction); returns what was saved.

        A verdict with an older timestamp than the stored latest one (e.g. an import of old
        judgements) goes into the history but does not replace the latest.
        """
        saved = HumanVerdict(
            run_id=_required("run_id", run_id),
            question_id=_required("question_id", question_id),
            evaluator=_required("evaluator", evaluator),
            verdict=_verdict(verdict),
            citation_supports=_optional_bool(citation_supports),
            note=note or "",
            timestamp=_timestamp(timestamp),
        )
        values = (
            saved.run_id,
            saved.question_id,
            saved.evaluator,
            saved.verdict,
            None if saved.citation_supports is None else int(saved.citation_supports),
            saved.note,
            saved.timestamp,
        )
        with self._transaction() as connection:
            connection.execute(
                f"INSERT INTO verdict_history ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", values
            )
            connection.execute(
                f"INSERT INTO latest ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, question_id, evaluator) DO UPDATE SET "
                "verdict = excluded.verdict, citation_supports = excluded.citation_supports, "
                "note = excluded.note, timestamp = excluded.timestamp "
                "WHERE excluded.timestamp >= latest.timestamp",
                values,
            )
        return saved

    # ------------------------------------------------------------------ reading
    def verdicts(self, run_id: str, *, evaluator: str | None = None) -> list[HumanVerdict]:
        """The latest verdict per (question, evaluator) of a run, by question id then evaluator."""
        return self._select(
            "latest",
            "run_id = ?" + (" AND evaluator = ?" if evaluator else ""),
            (run_id, evaluator) if evaluator else (run_id,),
            "question_id, evaluator",
        )

    def verdict(self, run_id: str, question_id: str, evaluator: str) -> HumanVerdict | None:
        """One evaluator's latest verdict on one question (to prefill a form), or None."""
        found = self._select(
            "latest",
            "run_id = ? AND question_id = ? AND evaluator = ?",
            (run_id, question_id, evaluator),
            "timestamp",
        )
        return found[0] if found else None

    def history(self, run_id: str, question_id: str | None = None) -> list[HumanVerdict]:
        """Every verdict ever recorded for a run (or one question of it), oldest first."""
        where, params = "run_id = ?", (run_id,)
        if question_id is not None:
            where, params = where + " AND question_id = ?", (run_id, question_id)
        return self._select("verdict_history", where, params, "timestamp, id")

    def runs(self) -> list[str]:
        """Run ids that have at least one verdict."""
        with self._connection() as connection:
            rows = connection.execute("SELECT DISTINCT run_id FROM latest ORDER BY run_id")
            return [row[0] for row in rows]

    def export_csv(
        self, path: str | Path, *, run_id: str | None = None, history: bool = False
    ) -> int:
        """Write latest verdicts (or the full history) as CSV; returns the rows written.

        UTF-8 with a byte-order mark, so Excel shows Chinese notes correctly.
        """
        table = "verdict_history" if history else "latest"
        where, params = ("run_id = ?", (run_id,)) if run_id else ("1 = 1", ())
        rows = self._select(table, where, params, "run_id, question_id, evaluator, timestamp")
        with Path(path).open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for row in rows:
                data = asdict(row)
                supports = data["citation_supports"]
                data["citation_supports"] = "" if supports is None else str(supports).lower()
                writer.writerow(data)
        return len(rows)

    def _select(
        self, table: str, where: str, params: Sequence[Any], order: str
    ) -> list[HumanVerdict]:
        with self._connection() as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM {table} WHERE {where} ORDER BY {order}", tuple(params)
            ).fetchall()
        return [
            HumanVerdict(r[0], r[1], r[2], r[3], None if r[4] is None else bool(r[4]), r[5], r[6])
            for r in rows
        ]


def _required(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be a non-empty string")
    return value.strip()


def _verdict(value: str) -> str:
    if value not in VERDICTS:
        raise InputError(f"verdict {value!r} is not one of {', '.join(VERDICTS)}")
    return value


def _optional_bool(value: bool | None) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise InputError(f"citation_supports must be true, false or empty, got {value!r}")
    return value


def _timestamp(value: datetime | str | None) -> str:
    """ISO 8601 in UTC with microseconds: one format, so text order is time order in SQL."""
    if value is None:
        moment = datetime.now(UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InputError(f"timestamp {value!r} is not ISO 8601") from exc
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# --------------------------------------------------------------------------- agreement


@dataclass(frozen=True)
class AgreementPart:
    """Agreement on one question (answer right? citation supports?). NaN where undefined.

    ``confusion`` counts ``"automatic/human"`` label pairs, e.g. ``"correct/wrong": 2``.
    """

    pairs: int
    agreeing: int
    share: float
    kappa: float
    confusion: dict[str, int]


@dataclass(frozen=True)
class Agreement:
    run_id: str
    verdicts: int
    evaluators: tuple[str, ...]
    partial_as: str
    answers: AgreementPart
    citations: AgreementPart
    #: "question_id (evaluator)" where the human's answer verdict differs from the automatic one.
    disagreements: tuple[str, ...]
    #: Verdicts on question ids the run does not have (a typo, or another run's id).
    unknown_questions: tuple[str, ...]
    note: str

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


def agreement(
    run_dir: str | Path,
    store: VerdictStore,
    *,
    evaluator: str | None = None,
    partial_as: PartialAs = "wrong",
) -> Agreement:
    """Agreement between a run's automatic verdicts and the humans' latest verdicts on it.

    Each (question, evaluator) verdict is one pair. The automatic answer verdict is binary, so a
    human ``partial`` must be mapped: by default to ``wrong``, because the automatic verdict
    claims the answer is simply right and "partly right" disagrees with that; ``partial_as=
    "correct"`` gives the lenient view and ``"exclude"`` drops partial verdicts. Citation
    agreement pairs the human's ``citation_supports`` with the automatic citation hit, where
    both exist (unanswerable questions have no automatic citation verdict).
    """
    if partial_as not in ("wrong", "correct", "exclude"):
        raise InputError(f"partial_as must be wrong, correct or exclude, not {partial_as!r}")
    run = load_run_dir(run_dir)
    automatic = {row["id"]: row["verdicts"] for row in run.results}
    human = store.verdicts(run.run_id, evaluator=evaluator)
    paired = pair_with_automatic(automatic, human, partial_as)
    return Agreement(
        run_id=run.run_id,
        verdicts=len(human),
        evaluators=tuple(sorted({v.evaluator for v in human})),
        partial_as=partial_as,
        answers=agreement_part(paired.answers),
        citations=agreement_part(paired.citations),
        disagreements=tuple(paired.disagreements),
        unknown_questions=tuple(sorted(set(paired.unknown))),
        note=f"human 'partial' counted as {partial_as}; κ is '-' where undefined "
        "(no pairs, or both sides used a single label).",
    )


@dataclass(frozen=True)
class Paired:
    """Human verdicts paired with the automatic ones: ``(automatic, human)`` label pairs."""

    answers: list[tuple[str, str]]
    citations: list[tuple[str, str]]
    disagreements: list[str]
    unknown: list[str]


def pair_with_automatic(
    automatic: Mapping[str, Mapping[str, Any]],
    human: Sequence[HumanVerdict],
    partial_as: PartialAs = "wrong",
) -> Paired:
    """The one pairing rule of :func:`agreement`, shared with the per-evaluator table of the
    评测 tab (:mod:`eval.raters`) so that both count a ``partial`` verdict the same way.

    ``automatic`` maps a question id to its results.jsonl ``verdicts``.
    """
    paired = Paired([], [], [], [])
    for verdict in human:
        auto = automatic.get(verdict.question_id)
        if auto is None:
            paired.unknown.append(verdict.question_id)
            continue
        label = verdict.verdict if verdict.verdict != "partial" else partial_as
        if label != "exclude":
            pair = ("correct" if auto["correct"] else "wrong", label)
            paired.answers.append(pair)
            if pair[0] != pair[1]:
                paired.disagreements.append(f"{verdict.question_id} ({verdict.evaluator})")
        if verdict.citation_supports is not None and auto.get("citation_hit") is not None:
            paired.citations.append(
                (
                    "supports" if auto["citation_hit"] else "does not",
                    "supports" if verdict.citation_supports else "does not",
                )
            )
    return paired


def agreement_part(pairs: Sequence[tuple[str, str]]) -> AgreementPart:
    """Share agreeing, Cohen's kappa and the confusion counts of ``(automatic, human)`` pairs.

    >>> part = agreement_part([("correct", "correct"), ("correct", "wrong"), ("wrong", "wrong")])
    >>> part.agreeing, round(part.share, 3), round(part.kappa, 3), part.confusion["correct/wrong"]
    (2, 0.667, 0.4, 1)
    """
    confusion: dict[str, int] = {}
    for auto, human in pairs:
        confusion[f"{auto}/{human}"] = confusion.get(f"{auto}/{human}", 0) + 1
    agreeing = sum(1 for auto, human in pairs if auto == human)
    return AgreementPart(
        pairs=len(pairs),
        agreeing=agreeing,
        share=ratio(agreeing, len(pairs)),
        kappa=cohens_kappa(pairs),
        confusion=dict(sorted(confusion.items())),
    )
