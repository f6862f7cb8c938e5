"""The answer model's say in extractive answering, where lexical coverage cannot decide.

Lexical coverage ranks a sentence by the question words it repeats, so a reworded question
(「外商投资」 for 「利用外资」) finds its passage but not its sentence, and is refused. The model
(rag/answer_model.py) reads question and sentence together. It ranks well and calibrates badly on
its own (a first prototype: median best probability 0.27 for answerable reworded questions, 0.66
for unanswerable ones), so it is combined with the lexical scores rather than trusted alone:

* *rank*: the best ``POOL`` sentences by lexical score are judged, and re-ordered by
  lexical score + ``weight`` × probability;
* *rescue*: when lexical coverage would refuse, a sentence the model accepts (probability ≥
  ``accept``) may still answer — if it keeps to the question's years, places and document
  (rag.keeping), which the model cannot check;
* *veto*: when lexical coverage would answer but no judged sentence reaches ``veto``, planqa
  refuses: the passages share the question's words without answering it.

The three numbers are chosen by leave-one-set-out cross-validation over the gold sets
(eval/calibrate.py), never on one set alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from planqa.corpus.settings import Settings
from planqa.index.search import Hit
from planqa.rag.answer_model import SentenceJudge
from planqa.rag.keeping import ScoredSentence

#: Sentences judged per question. Across the four gold sets (nine documents) the lexical top 12
#: held the sentence with the answer for 83 of the 86 questions whose candidates had it at all
#: (the top 20: 86); each judged sentence costs ~35 ms on two cores, and 20 put a warm ask at
#: ~770 ms (bench/answer_model_bench.py).
POOL = 12


@dataclass(frozen=True)
class JudgeTuning:
    accept: float
    veto: float
    weight: float


#: eval/calibrate.py's choice for the shipped model over dev, probes and generality (nine
#: documents): never rescue, veto below 0.05, keep the lexical order (two folds chose exactly
#: this, the third a veto of 0.1, which cost its held-out set two answers). The model's
#: probabilities for reworded answers (median ~0.15) overlap those for neighbouring facts, so
#: every rescue point cost as many answers as it won (docs/answer-model.md).
DEFAULT_TUNING = JudgeTuning(accept=1.01, veto=0.05, weight=0.0)


def tuning_from(settings: Settings) -> JudgeTuning:
    """The configured numbers, each falling back to the cross-validated default."""
    return JudgeTuning(
        accept=_given(settings.answer_model_accept, DEFAULT_TUNING.accept),
        veto=_given(settings.answer_model_veto, DEFAULT_TUNING.veto),
        weight=_given(settings.answer_model_weight, DEFAULT_TUNING.weight),
    )


def _given(value: float | None, default: float) -> float:
    return default if value is None else value


class SentenceJudging:
    def __init__(self, judge: SentenceJudge, tuning: JudgeTuning = DEFAULT_TUNING) -> None:
        self.judge = judge
        self.tuning = tuning

    def rescore(
        self, question: str, hits: list[Hit], sentences: list[ScoredSentence]
    ) -> list[ScoredSentence]:
        """The pool judged and re-ordered; the other candidates follow unjudged."""
        pool, rest = sentences[:POOL], sentences[POOL:]
        if not pool:
            return sentences
        texts = [_text(hits, s) for s in pool]
        probabilities = self.judge.probabilities(question, texts)
        judged = [
            replace(s, judged=float(p), score=s.score + self.tuning.weight * float(p))
            for s, p in zip(pool, probabilities, strict=True)
        ]
        judged.sort(key=lambda s: (-s.score, s.hit_rank, s.start))
        return judged + rest

    def accepts(self, sentence: ScoredSentence) -> bool:
        return sentence.judged is not None and sentence.judged >= self.tuning.accept

    def vetoes(self, sentences: list[ScoredSentence]) -> bool:
        best = max((s.judged for s in sentences if s.judged is not None), default=None)
        return best is not None and best < self.tuning.veto

    @staticmethod
    def best(sentences: list[ScoredSentence]) -> float | None:
        return max((s.judged for s in sentences if s.judged is not None), default=None)


def _text(hits: list[Hit], sentence: ScoredSentence) -> str:
    chunk = hits[sentence.hit_rank].chunk
    return chunk.text[sentence.start - chunk.start : sentence.end - chunk.start].strip()
