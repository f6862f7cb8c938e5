"""Answer-sentence top-1 accuracy on held-out reading-comprehension questions: the trained model
against lexical coverage, the extractive answerer's own signal, on the same candidates.

Lexical coverage here is the answerer's formula without corpus idf (a paragraph is no corpus):
0.7 × share of the question's words in the sentence + 0.3 × share of its character bigrams.
"""

from __future__ import annotations

from collections.abc import Callable

import jieba

from planqa.rag.answer_pairs import Candidates

_QUESTION_WORDS = frozenset(
    "什么 哪些 哪个 哪里 哪 多少 几 谁 何时 为什么 如何 怎么 是 的 了 在 有".split()
)


def lexical_score(question: str, sentence: str) -> float:
    words = {
        w for w in jieba.lcut(question) if w.strip() and w not in _QUESTION_WORDS and w.isalnum()
    }
    grams = {question[i : i + 2] for i in range(len(question) - 1)}
    word_share = sum(1 for w in words if w in sentence) / len(words) if words else 0.0
    gram_share = sum(1 for g in grams if g in sentence) / len(grams) if grams else 0.0
    return 0.7 * word_share + 0.3 * gram_share


def _top1(candidates: list[Candidates], scores: list[list[float]]) -> float:
    right = 0
    for item, row in zip(candidates, scores, strict=True):
        best = max(range(len(row)), key=lambda i: (row[i], -i))
        right += item.answers[best]
    return round(right / len(candidates), 4) if candidates else 0.0


def lexical_top1(candidates: list[Candidates]) -> float:
    return _top1(
        candidates, [[lexical_score(c.question, s) for s in c.sentences] for c in candidates]
    )


def model_top1(
    candidates: list[Candidates], score: Callable[[list[tuple[str, str]]], list[float]]
) -> float:
    flat = [(c.question, s) for c in candidates for s in c.sentences]
    scores = score(flat)
    rows, cursor = [], 0
    for item in candidates:
        rows.append(scores[cursor : cursor + len(item.sentences)])
        cursor += len(item.sentences)
    return _top1(candidates, rows)
