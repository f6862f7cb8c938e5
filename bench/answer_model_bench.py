"""What the answer model costs a question: warm extractive ask latency and cold ``planqa ask``,
with the model off and with the shipped model, on the same built index.

    python -m planqa.bench.answer_model_bench --index /tmp/nine [--gold eval/gold/dev.jsonl]

Warm: one process, the model loaded, every gold question asked ``--repeats`` times (p50/p95
over all asks). Cold: a new ``planqa ask`` process per run (imports, index and model load, one
answer), the way a user at a terminal pays it. The model's ONNX export is made before timing,
as it is once per machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from planqa.corpus.config import load_settings
from planqa.eval.gold import load_gold
from planqa.rag.answer_model import ADAPTER_FILE, ARTEFACT_DIR, export_directory
from planqa.rag.pipeline import Pipeline

DEFAULT_GOLD = Path(__file__).resolve().parent.parent / "eval" / "gold" / "dev.jsonl"
MODELS = ("off", "shipped")


def warm_latencies(index: Path, model: str, questions: list[str], repeats: int) -> list[float]:
    pipeline = Pipeline.open(load_settings(index_dir=index, answer_model=model))
    pipeline.ask(questions[0])  # loads the model outside the timing
    timings = []
    for _ in range(repeats):
        for question in questions:
            started = time.perf_counter()
            pipeline.ask(question)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def cold_seconds(index: Path, model: str, question: str, runs: int) -> list[float]:
    env = {**os.environ, "PLANQA_ANSWER_MODEL": model, "PLANQA_INDEX_DIR": str(index)}
    planqa = Path(sys.executable).with_name("planqa")
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(planqa), "ask", question], env=env, check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="a built index")
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="questions to ask")
    parser.add_argument("--repeats", type=int, default=2, help="warm passes over the questions")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold planqa ask processes")
    args = parser.parse_args(argv)
    export_directory(load_settings(), ARTEFACT_DIR / ADAPTER_FILE)
    questions = [item.question for item in load_gold(args.gold)]
    report = {"questions": len(questions), "load_average": os.getloadavg()[0]}
    for model in MODELS:
        warm = warm_latencies(args.index, model, questions, args.repeats)
        cold = cold_seconds(args.index, model, questions[0], args.cold_runs)
        report[model] = {
            "warm_p50_ms": round(statistics.median(warm)),
            "warm_p95_ms": round(percentile(warm, 0.95)),
            "cold_ask_median_s": round(statistics.median(cold), 2),
        }
        print(f"answer_model={model}: {json.dumps(report[model])}", file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
