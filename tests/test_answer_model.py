"""The answer model: its training pairs, how its probabilities steer extractive answering, and
(slow) the shipped artefact — it loads, exports to ONNX and scores the fixed reference pairs as it
did at training, without torch on the ask path — and a resumable training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from planqa.corpus.settings import Settings
from planqa.rag.answer_model import (
    ADAPTER_FILE,
    ARTEFACT_DIR,
    OnnxAnswerModel,
    export_directory,
    load_answer_model,
    reference_pairs,
)
from planqa.rag.answer_pairs import (
    MAX_CANDIDATE_CHARS,
    candidate_spans,
    load_questions,
    training_pairs,
)
from planqa.rag.extractive import ExtractiveAnswerer
from planqa.rag.judging import DEFAULT_TUNING, JudgeTuning, SentenceJudging, tuning_from

CMRC = [
    {
        "context_id": "C1",
        "title": "港口",
        "context_text": "该港口始建于1905年。港口年吞吐量达到3亿吨，位居全国前列。"
        "港区内设有保税物流中心。" + "，".join(["附近有多个工业园区和物流基地"] * 12) + "。",
        "qas": [
            {"query_id": "C1_Q0", "query_text": "港口每年货物吞吐多少？", "answers": ["3亿吨"]}
        ],
    },
    {
        "context_id": "C2",
        "title": "河流",
        "context_text": "这条河全长八百公里。河流发源于北部山区。流域面积两万平方公里。",
        "qas": [{"query_id": "C2_Q0", "query_text": "河流有多长？", "answers": ["八百公里"]}],
    },
]
DRCD = {
    "data": [
        {
            "title": "鐵路",
            "paragraphs": [
                {
                    "context": "這條鐵路於1999年通車。全線設有十二個車站。",
                    "qas": [
                        {
                            "id": "D1",
                            "question": "鐵路哪一年通車？",
                            "answers": [{"text": "1999年", "answer_start": 5}],
                        }
                    ],
                },
                {
                    "context": "鐵路由國營公司經營。票價依里程計算。",
                    "qas": [
                        {
                            "id": "D2",
                            "question": "誰經營鐵路？",
                            "answers": [{"text": "國營公司", "answer_start": 3}],
                        }
                    ],
                },
            ],
        }
    ]
}


def write_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("cmrc2018_dev.json", "cmrc2018_trial.json"):
        (folder / name).write_text(json.dumps(CMRC, ensure_ascii=False), encoding="utf-8")
    for name in ("drcd_dev.json", "drcd_test.json"):
        (folder / name).write_text(json.dumps(DRCD, ensure_ascii=False), encoding="utf-8")
    return folder


def test_questions_are_read_from_both_formats_in_simplified_script(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    cmrc = load_questions(data / "cmrc2018_dev.json")
    drcd = load_questions(data / "drcd_dev.json")
    assert [q.text for q in drcd] == ["铁路哪一年通车？", "谁经营铁路？"]
    for question in [*cmrc, *drcd]:
        answer = question.context[question.answer_start : question.answer_end]
        assert answer in {"3亿吨", "八百公里", "1999年", "国营公司"}


def test_pairs_hold_the_answer_only_in_positives_and_repeat_for_a_seed(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    questions = [
        *load_questions(data / "cmrc2018_dev.json"),
        *load_questions(data / "drcd_dev.json"),
    ]
    pairs = training_pairs(questions, seed=3)
    assert pairs == training_pairs(questions, seed=3)
    answers = {
        "港口每年货物吞吐多少？": "3亿吨",
        "河流有多长？": "八百公里",
        "铁路哪一年通车？": "1999年",
        "谁经营铁路？": "国营公司",
    }
    for pair in pairs:
        assert (answers[pair.question] in pair.sentence) == (pair.label == 1.0)
    assert sum(p.label for p in pairs) == len(questions)
    # the other paragraph of the same article is the foreign negative
    assert any(p.question == "谁经营铁路？" and "通车" in p.sentence for p in pairs)


def test_long_sentences_are_cut_into_clause_runs_within_the_quote_limit() -> None:
    text = CMRC[0]["context_text"]
    spans = candidate_spans(text)
    assert all(end - start <= MAX_CANDIDATE_CHARS for start, end in spans)
    assert "".join(text[s:e] for s, e in spans).replace("。", "") == text.replace("。", "")


class FakeJudge:
    """Probability 0.99 for sentences containing ``answer``, ``rest`` for the others."""

    name = "fake"

    def __init__(self, answer: str, rest: float = 0.01) -> None:
        self.answer = answer
        self.rest = rest
        self.calls = 0

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.array([0.99 if self.answer in s else self.rest for s in sentences])


def answerer_with(
    hash_searcher, hash_index_settings: Settings, judge, **tuning
) -> ExtractiveAnswerer:
    numbers = {"accept": 1.01, "veto": 0.0, "weight": 0.0, **tuning}
    return ExtractiveAnswerer(
        hash_searcher, hash_index_settings, SentenceJudging(judge, JudgeTuning(**numbers))
    )


def quoted(citation) -> str:
    return citation.text[
        citation.quote_start - citation.start : citation.quote_end - citation.start
    ]


def ask(pipeline, answerer: ExtractiveAnswerer, question: str):
    analysis, hits = pipeline.prepare(question)
    return answerer.answer(analysis, hits)


QUESTION = "南通开发区“十三五”期间实际利用外资累计多少？"


def test_a_sentence_the_model_accepts_answers_where_lexical_coverage_refuses(
    pipeline, hash_searcher, hash_index_settings: Settings
) -> None:
    answerer = answerer_with(
        hash_searcher, hash_index_settings, FakeJudge("32.5亿美元"), accept=0.9
    )
    answerer.threshold = 1.01  # lexical coverage alone refuses every question
    answer = ask(pipeline, answerer, QUESTION)
    assert not answer.abstained
    assert "32.5亿美元" in answer.answer
    assert "32.5亿美元" in quoted(answer.citations[0])
    assert answer.details["answer_model"]["best"] == pytest.approx(0.99)


def test_the_model_cannot_accept_another_years_figure(
    pipeline, hash_searcher, hash_index_settings: Settings
) -> None:
    answerer = answerer_with(
        hash_searcher, hash_index_settings, FakeJudge("32.5亿美元"), accept=0.9
    )
    answerer.threshold = 1.01
    answer = ask(pipeline, answerer, "南通开发区2035年实际利用外资累计多少？")
    assert answer.abstained


def test_a_veto_refuses_when_no_sentence_answers(
    pipeline, hash_searcher, hash_index_settings: Settings
) -> None:
    lexical = ExtractiveAnswerer(hash_searcher, hash_index_settings)
    assert not ask(pipeline, lexical, "南通开发区“十三五”期间实际利用外资累计多少？").abstained
    answerer = answerer_with(
        hash_searcher, hash_index_settings, FakeJudge("不存在的句子"), veto=0.05
    )
    answer = ask(pipeline, answerer, "南通开发区“十三五”期间实际利用外资累计多少？")
    assert answer.abstained and answer.details["answer_model"]["veto"]


def test_the_weight_reorders_the_lexical_candidates(
    pipeline, hash_searcher, hash_index_settings: Settings
) -> None:
    analysis, hits = pipeline.prepare("南通开发区“十三五”期间实际利用外资累计多少？")
    lexical = ExtractiveAnswerer(hash_searcher, hash_index_settings).score_sentences(analysis, hits)
    third = lexical[2]
    chunk = hits[third.hit_rank].chunk
    text = chunk.text[third.start - chunk.start : third.end - chunk.start].strip()
    for weight, first in ((0.0, lexical[0]), (5.0, third)):
        tuning = JudgeTuning(accept=1.01, veto=0.0, weight=weight)
        judging = SentenceJudging(FakeJudge(text), tuning)
        rescored = judging.rescore(analysis.text, hits, lexical)
        assert (rescored[0].start, rescored[0].hit_rank) == (first.start, first.hit_rank)
        assert len(rescored) == len(lexical)


def test_off_is_the_default_and_means_no_model() -> None:
    assert Settings().answer_model == "off"
    assert load_answer_model(Settings()) is None


def test_unset_numbers_fall_back_to_the_cross_validated_ones() -> None:
    assert tuning_from(Settings()) == DEFAULT_TUNING
    tuned = tuning_from(Settings(answer_model_accept=0.7, answer_model_weight=0.3))
    assert tuned == JudgeTuning(accept=0.7, veto=DEFAULT_TUNING.veto, weight=0.3)


# ----------------------------------------------------------------------------- slow: the artefact
@pytest.mark.slow
def test_the_shipped_artefact_is_small_and_scores_the_reference_pairs_as_at_training() -> None:
    adapter = ARTEFACT_DIR / ADAPTER_FILE
    assert adapter.stat().st_size <= 25 * 2**20
    model = OnnxAnswerModel(export_directory(Settings(), adapter))
    for question, sentence, probability in reference_pairs(ARTEFACT_DIR):
        assert model.probabilities(question, [sentence])[0] == pytest.approx(probability, abs=2e-3)
    card = (ARTEFACT_DIR / "README.md").read_text(encoding="utf-8")
    assert "CC BY-SA" in card


@pytest.mark.slow
def test_asking_with_the_model_never_imports_torch() -> None:
    export_directory(Settings(), ARTEFACT_DIR / ADAPTER_FILE)  # made once per cache, with torch
    script = (
        "import sys\n"
        "from planqa.corpus.settings import Settings\n"
        "from planqa.rag.answer_model import load_answer_model\n"
        "judge = load_answer_model(Settings(answer_model='shipped'))\n"
        "p = judge.probabilities('港口每年货物吞吐多少？',\n"
        "                        ['港口年吞吐量达到3亿吨。', '河流发源于北部山区。'])\n"
        "assert p[0] > p[1], p\n"
        "assert 'torch' not in sys.modules\n"
    )
    env = {**os.environ, "PLANQA_ANSWER_MODEL": "shipped"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)


@pytest.mark.slow
def test_a_stopped_training_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")

    def run(out: str, checkpoints: str, *extra: str) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "planqa.rag.answer_model_train",
                "--data-dir",
                str(data),
                "--out",
                str(tmp_path / out),
                "--checkpoint-dir",
                str(tmp_path / checkpoints),
                "--max-steps",
                "3",
                "--checkpoint-every",
                "1",
                "--held-out-questions",
                "2",
                *extra,
            ],
            check=True,
            timeout=600,
            capture_output=True,
        )

    run("straight", "ck-straight")
    run("resumed", "ck-resumed", "--stop-after", "1")
    assert not (tmp_path / "resumed" / ADAPTER_FILE).exists()
    run("resumed", "ck-resumed")
    straight = (tmp_path / "straight" / ADAPTER_FILE).read_bytes()
    assert (tmp_path / "resumed" / ADAPTER_FILE).read_bytes() == straight
