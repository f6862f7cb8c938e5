"""The ``fast`` embedding choice: the shipped static model loads offline, without torch, gives
unit vectors that rank related Chinese text first, and any model2vec directory works too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from planqa.corpus.errors import ModelError
from planqa.corpus.settings import Settings
from planqa.index.embedder import StaticEmbedder, make_embedder
from planqa.index.fast_model_build import kept_token_ids, quantise, reference_check, reference_texts
from planqa.index.static_embedder import FAST_CONFIG, FAST_MODEL_DIR, load_shipped_vectors


@pytest.fixture(scope="module")
def fast() -> StaticEmbedder:
    embedder = make_embedder(Settings(embedding_model="fast"))
    assert isinstance(embedder, StaticEmbedder)
    return embedder


def test_the_shipped_model_is_small_and_names_its_tokenizer() -> None:
    size = sum(f.stat().st_size for f in FAST_MODEL_DIR.iterdir())
    assert size < 12 * 1024 * 1024
    config = json.loads((FAST_MODEL_DIR / FAST_CONFIG).read_text(encoding="utf-8"))
    rows, token_ids, _ = load_shipped_vectors()
    assert rows.shape == (config["tokens"], config["pca_dims"]) == (len(token_ids), 256)
    assert np.all(np.diff(token_ids) > 0)  # sorted, no duplicates


def test_unit_vectors_deterministic_and_related_text_ranks_first(fast: StaticEmbedder) -> None:
    texts = [
        "加快集成电路设计、制造和封装测试产业发展",
        "推进芯片封测产业园建设",
        "深化农村土地制度改革，发展乡村旅游",
    ]
    vectors = fast.embed_passages(texts)
    assert vectors.shape == (3, fast.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors, fast.embed_queries(texts))
    query = fast.embed_queries(["集成电路封装测试"])[0]
    scores = vectors @ query
    assert scores[0] > scores[2] and scores[1] > scores[2]
    assert fast.embed_queries([]).shape == (0, fast.dimension)


def test_model_id_names_the_weights(fast: StaticEmbedder) -> None:
    assert fast.model_id.startswith("fast@") and len(fast.model_id) == len("fast@") + 16
    assert StaticEmbedder().model_id == fast.model_id


def test_loading_it_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from planqa.corpus.settings import Settings\n"
        "from planqa.index.embedder import make_embedder\n"
        "e = make_embedder(Settings(embedding_model='fast'))\n"
        "e.embed_queries(['测试'])\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_any_model2vec_directory(tmp_path: Path) -> None:
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    from planqa.index.e5_inputs import original_tokenizer_path

    tokenizer = Tokenizer.from_file(str(original_tokenizer_path()))
    vectors = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(), 8))
    StaticModel(vectors.astype(np.float32), tokenizer).save_pretrained(str(tmp_path / "m"))
    embedder = make_embedder(Settings(embedding_model=f"model2vec:{tmp_path / 'm'}"))
    assert embedder.dimension == 8
    assert embedder.embed_passages(["规划纲要"]).shape == (1, 8)
    assert embedder.model_id.startswith("model2vec:")


def test_a_directory_that_is_no_model_is_refused(tmp_path: Path) -> None:
    embedder = make_embedder(Settings(embedding_model=f"model2vec:{tmp_path}"))
    with pytest.raises(ModelError):
        embedder.embed_queries(["规划"])


def test_the_shipped_model_scores_its_check_pair_as_when_it_was_built() -> None:
    config = json.loads((FAST_MODEL_DIR / FAST_CONFIG).read_text(encoding="utf-8"))
    assert reference_check(FAST_MODEL_DIR) == config["check"]


def test_the_recipe_keeps_cjk_tokens_and_those_the_references_use(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    from planqa.index.e5_inputs import original_tokenizer_path

    (tmp_path / "news.txt").write_text("GDP增长\n\nAI+制造\n", encoding="utf-8")
    squad = {"data": [{"paragraphs": [{"context": "Zurich 规划", "qas": [{"question": "何时"}]}]}]}
    (tmp_path / "mrc.json").write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    texts = reference_texts([tmp_path])
    assert sorted(texts) == sorted(["GDP增长", "AI+制造", "Zurich 规划", "何时"])
    path = original_tokenizer_path()
    keep = set(kept_token_ids(path, texts).tolist())
    tokenizer = Tokenizer.from_file(str(path))
    seen = tokenizer.encode("Zurich", add_special_tokens=False).ids
    unseen = set(tokenizer.encode("Paris", add_special_tokens=False).ids) - set(seen)
    assert set(seen) <= keep and tokenizer.get_vocab()["规划"] in keep  # seen / CJK
    assert unseen and not unseen & keep  # neither


def test_int8_rows_keep_their_direction() -> None:
    rows = np.random.default_rng(1).normal(size=(50, 16)).astype(np.float32)
    rows[3] = 0.0
    quantised, scales = quantise(rows)
    back = quantised.astype(np.float32) * scales[:, None]
    cosine = np.sum(back * rows, axis=1) / (
        np.linalg.norm(back, axis=1) * np.linalg.norm(rows, axis=1) + 1e-12
    )
    assert quantised.dtype == np.int8 and np.all(cosine[np.arange(50) != 3] > 0.999)
    assert not back[3].any()
