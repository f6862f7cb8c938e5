"""Training and held-out pairs for the answer model, built from public reading-comprehension data.

The answer model (rag/answer_model.py) judges "does this sentence answer this question". CMRC 2018
and DRCD (../shared/train-data/, see its README for licences) hold human-written questions whose
answer is a span of a Wikipedia paragraph, so every paragraph yields one positive — the sentence
holding the answer — and natural negatives: the paragraph's other sentences (same topic, the hard
case) and a sentence of another paragraph — of the same article, else the one of a random sample
sharing most words with the question (related, never the answer: what an unanswerable question
looks like).

The sentences are cut the way the extractive answerer cuts planning prose (corpus.chunking
sentences; a sentence over ``MAX_CANDIDATE_CHARS`` is narrowed to a run of clauses), so the model
is trained on the units it will judge. DRCD is traditional Chinese and is converted to simplified
with OpenCC (index/traditional.py), as planqa converts queries and documents.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from planqa.corpus.chunking import split_sentences
from planqa.index.traditional import to_simplified

#: Sentences longer than this are judged by a run of clauses (the extractive quote limit).
MAX_CANDIDATE_CHARS = 120
MIN_CANDIDATE_CHARS = 6
#: The held-out part: never trained on, used to measure the model itself.
HELD_OUT_FILES = ("cmrc2018_trial.json",)
TRAIN_FILES = ("cmrc2018_dev.json", "drcd_dev.json", "drcd_test.json")
#: Articles with one paragraph draw their foreign negative from this many random paragraphs:
#: the one sharing most words with the question, as retrieval would offer it.
FOREIGN_POOL = 20
_CLAUSE_END = re.compile(r"[，,、：:；;]")


@dataclass(frozen=True)
class Question:
    """One reading-comprehension question with its paragraph and the answer's character span."""

    qid: str
    text: str
    context: str
    answer_start: int
    answer_end: int
    article: str


@dataclass(frozen=True)
class Pair:
    question: str
    sentence: str
    label: float


@dataclass(frozen=True)
class Candidates:
    """A held-out question with every candidate sentence of its paragraph and which answer it."""

    question: str
    sentences: tuple[str, ...]
    answers: tuple[bool, ...]


def load_questions(path: Path) -> list[Question]:
    """CMRC (a list of contexts, answers as strings) or DRCD (SQuAD style, traditional script)."""
    data = orjson.loads(path.read_bytes())
    traditional = isinstance(data, dict)
    convert = to_simplified if traditional else (lambda text: text)
    questions = []
    for article, context, qas in _contexts(data):
        # OpenCC t2s maps characters and phrases to equally long ones in almost every case;
        # where it does not, the answer is found again by search rather than by offset.
        context = convert(context)
        for qa in qas:
            answer = convert(_answer_text(qa))
            start = context.find(answer) if answer else -1
            if start < 0:
                continue
            qid = str(qa.get("query_id") or qa.get("id"))
            text = convert(str(qa.get("query_text") or qa.get("question"))).strip()
            questions.append(Question(qid, text, context, start, start + len(answer), article))
    return questions


def _contexts(data: object) -> Iterator[tuple[str, str, list[dict]]]:
    if isinstance(data, list):
        for item in data:
            yield item.get("title", ""), item["context_text"], item["qas"]
        return
    for article in data["data"]:  # type: ignore[index]
        for paragraph in article["paragraphs"]:
            yield article.get("title", ""), paragraph["context"], paragraph["qas"]


def _answer_text(qa: dict) -> str:
    answers = qa.get("answers") or []
    if not answers:
        return ""
    first = answers[0]
    return (first.get("text", "") if isinstance(first, dict) else str(first)).strip()


def candidate_spans(text: str) -> list[tuple[int, int]]:
    """The units the answerer judges: sentences, long ones cut into runs of clauses."""
    spans = []
    for start, end in split_sentences(text):
        if end - start <= MAX_CANDIDATE_CHARS:
            spans.append((start, end))
            continue
        window_start = start
        last_cut = start
        for match in _CLAUSE_END.finditer(text, start, end):
            cut = match.end()
            if cut - window_start > MAX_CANDIDATE_CHARS and last_cut > window_start:
                spans.append((window_start, last_cut))
                window_start = last_cut
            last_cut = cut
        while end - window_start > MAX_CANDIDATE_CHARS:
            spans.append((window_start, window_start + MAX_CANDIDATE_CHARS))
            window_start += MAX_CANDIDATE_CHARS
        spans.append((window_start, end))
    return [(s, e) for s, e in spans if len(text[s:e].strip()) >= MIN_CANDIDATE_CHARS]


def _holds(span: tuple[int, int], question: Question) -> bool:
    return span[0] <= question.answer_start and question.answer_end <= span[1]


def training_pairs(
    questions: list[Question], *, seed: int, same_paragraph: int = 2, other_paragraph: int = 1
) -> list[Pair]:
    """Per question one positive, ``same_paragraph`` negatives of its paragraph and
    ``other_paragraph`` from other paragraphs (module docstring), shuffled with ``seed``: the
    same data and seed give the same pairs."""
    rng = random.Random(seed)
    by_article: dict[str, list[str]] = {}
    for question in questions:
        paragraphs = by_article.setdefault(question.article, [])
        if not paragraphs or paragraphs[-1] != question.context:
            paragraphs.append(question.context)
    all_contexts = [c for contexts in by_article.values() for c in contexts]
    pairs = []
    for question in questions:
        spans = candidate_spans(question.context)
        positives = [s for s in spans if _holds(s, question)]
        if not positives:
            continue
        pairs.append(Pair(question.text, _text(question.context, positives[0]), 1.0))
        others = [s for s in spans if not _overlaps(s, question)]
        for span in rng.sample(others, min(same_paragraph, len(others))):
            pairs.append(Pair(question.text, _text(question.context, span), 0.0))
        siblings = [c for c in by_article[question.article] if c != question.context]
        pool = siblings or rng.sample(all_contexts, min(FOREIGN_POOL, len(all_contexts)))
        foreign = [
            _text(context, span)
            for context in pool
            if context != question.context
            for span in candidate_spans(context)
        ]
        grams = _bigrams(question.text)
        foreign.sort(key=lambda sentence: -len(grams & _bigrams(sentence)))
        pairs.extend(Pair(question.text, s, 0.0) for s in foreign[:other_paragraph])
    rng.shuffle(pairs)
    return pairs


def held_out_candidates(questions: list[Question]) -> list[Candidates]:
    """Every candidate of each question's paragraph, for answer-sentence top-1 accuracy."""
    result = []
    for question in questions:
        spans = candidate_spans(question.context)
        answers = tuple(_holds(s, question) for s in spans)
        if any(answers) and len(spans) > 1:
            sentences = tuple(_text(question.context, s) for s in spans)
            result.append(Candidates(question.text, sentences, answers))
    return result


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def _overlaps(span: tuple[int, int], question: Question) -> bool:
    return span[0] < question.answer_end and question.answer_start < span[1]


def _text(context: str, span: tuple[int, int]) -> str:
    return context[span[0] : span[1]].strip()
