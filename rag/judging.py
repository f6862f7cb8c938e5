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

from planqa.index.search import Hit
from planqa.rag.answer_model import SentenceJudge
from planqa.rag.keeping import ScoredSentence

#: Sentences judged per question: the lexical top 20 held the answer sentence for all but two
#: reworded questions whose passage was retrieved (the rest of the candidates rarely do).
POOL = 20


@dataclass(frozen=True)
class JudgeTuning:
    accept: float = 0.9
    veto: float = 0.0
    weight: float = 0.2


DEFAULT_TUNING = JudgeTuning()


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
