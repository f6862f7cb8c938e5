"""Agreement per evaluator, and between evaluators who judged the same run.

:func:`eval.verdicts.agreement` pools every evaluator's verdicts into one number, which is what
report.md shows. An evaluator reading the 评测 tab needs more: whether *their own* verdicts agree
with the automatic ones (a pooled figure hides one lenient evaluator among strict ones), and,
when two people judged the same answers, whether they agree with each other — if they do not,
human verdicts are no yardstick for the automatic ones either.

* **Per evaluator**: one row each, built with the same pairing rule as report.md
  (:func:`eval.verdicts.pair_with_automatic`, ``partial`` counted as wrong), so a run with one
  evaluator shows the same numbers in both places.
* **Between evaluators**: for each pair of evaluators, the questions both judged. Both use the
  same three labels, so ``partial`` stays a label of its own here (no mapping is needed);
  citation support is compared where both answered it.

κ is :func:`eval.metrics.cohens_kappa` (the one report.md uses, checked against scikit-learn's
``cohen_kappa_score`` in the tests); NaN where undefined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from planqa.eval.verdicts import (
    AgreementPart,
    HumanVerdict,
    PartialAs,
    VerdictStore,
    agreement_part,
    pair_with_automatic,
)


@dataclass(frozen=True)
class EvaluatorAgreement:
    """One evaluator's latest verdicts on a run against the automatic verdicts."""

    evaluator: str
    verdicts: int
    answers: AgreementPart
    citations: AgreementPart


@dataclass(frozen=True)
class BetweenEvaluators:
    """Two evaluators on the questions both judged (``common`` of them)."""

    first: str
    second: str
    common: int
    answers: AgreementPart
    citations: AgreementPart


@dataclass(frozen=True)
class RaterAgreement:
    """Everything the 评测 tab's agreement panel shows for one run."""

    run_id: str
    verdicts: int
    evaluators: tuple[EvaluatorAgreement, ...]
    between: tuple[BetweenEvaluators, ...]


def _by_evaluator(verdicts: Sequence[HumanVerdict]) -> dict[str, dict[str, HumanVerdict]]:
    grouped: dict[str, dict[str, HumanVerdict]] = {}
    for verdict in verdicts:
        grouped.setdefault(verdict.evaluator, {})[verdict.question_id] = verdict
    return dict(sorted(grouped.items()))


def _citation_label(value: bool) -> str:
    return "supports" if value else "does not"


def between(
    first: str,
    second: str,
    a: Mapping[str, HumanVerdict],
    b: Mapping[str, HumanVerdict],
    known: set[str] | None = None,
) -> BetweenEvaluators:
    """Agreement of two evaluators' verdicts (question id -> verdict) on the questions both
    judged; ``known`` limits them to the run's questions."""
    common = [q for q in a if q in b and (known is None or q in known)]
    answers = [(a[q].verdict, b[q].verdict) for q in common]
    citations = [
        (_citation_label(a[q].citation_supports), _citation_label(b[q].citation_supports))
        for q in common
        if a[q].citation_supports is not None and b[q].citation_supports is not None
    ]
    return BetweenEvaluators(
        first=first,
        second=second,
        common=len(common),
        answers=agreement_part(answers),
        citations=agreement_part(citations),
    )


def rater_agreement(
    run_id: str,
    results: Sequence[Mapping[str, Any]],
    store: VerdictStore,
    *,
    partial_as: PartialAs = "wrong",
) -> RaterAgreement:
    """Per-evaluator agreement with the automatic verdicts of ``results`` (the run's
    results.jsonl rows), and agreement between every two evaluators who share a question.

    Pairs of evaluators without a question in common are left out: they say nothing.
    """
    automatic = {row["id"]: row["verdicts"] for row in results}
    human = store.verdicts(run_id)
    grouped = _by_evaluator(human)
    rows = []
    for name, verdicts in grouped.items():
        paired = pair_with_automatic(automatic, list(verdicts.values()), partial_as)
        rows.append(
            EvaluatorAgreement(
                evaluator=name,
                verdicts=len(verdicts),
                answers=agreement_part(paired.answers),
                citations=agreement_part(paired.citations),
            )
        )
    known = set(automatic)
    pairs = [
        between(first, second, grouped[first], grouped[second], known)
        for first, second in combinations(grouped, 2)
    ]
    return RaterAgreement(
        run_id=run_id,
        verdicts=len(human),
        evaluators=tuple(rows),
        between=tuple(pair for pair in pairs if pair.common),
    )
