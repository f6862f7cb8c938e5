"""Passage backends (torch, ONNX fp32, ONNX int8): same vectors where promised, separate model ids
where not, and a benchmark that compares them.

The fast tests run a tiny hand-made ONNX graph and word-level tokenizer, so the batching,
truncation and quantisation code runs in milliseconds; the ``slow`` ones use the real model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.embedder import make_embedder, passage_backend_of
from planqa.index.embedding_cache import EmbeddingCache
from planqa.index.manifest import check_compatible, settings_fingerprint
from planqa.index.onnx_encoder import (
    INT8_RECIPE,
    ONNX_FILE,
    OnnxModelInfo,
    OnnxQueryEncoder,
    int8_encoder,
)

WORDS = "a b c d e f g h".split()


def tiny_export(directory: Path, max_seq_length: int = 6) -> OnnxQueryEncoder:
    """An export-shaped folder: Gather → MatMul → mask, a WordLevel tokenizer, [CLS] … [SEP]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    vocab.update({word: i + 4 for i, word in enumerate(WORDS)})
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.save(str(directory / "tokenizer.json"))

    rng = np.random.default_rng(0)
    dim = 8
    initializers = [
        numpy_helper.from_array(rng.normal(size=(len(vocab), dim)).astype(np.float32), "table"),
        numpy_helper.from_array(rng.normal(size=(dim, dim)).astype(np.float32), "weight"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes"),
    ]
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["embedded"]),
        helper.make_node("MatMul", ["embedded", "weight"], ["projected"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axes"], ["mask3"]),
        helper.make_node("Mul", ["projected", "mask3"], ["last_hidden_state"]),
    ]
    axes = ["batch", "tokens"]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, axes),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, axes),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*axes, dim])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(directory / ONNX_FILE))
    info = OnnxModelInfo(
        fingerprint="tiny",
        dimension=dim,
        pooling="mean",
        normalize=True,
        max_seq_length=max_seq_length,
        pad_token_id=0,
        lowercase=False,
        model_prompts={"passage": ""},
        min_check_cosine=1.0,
    )
    return OnnxQueryEncoder(directory, info, 512)


def test_batches_sorted_by_length_give_each_text_its_own_vector(tmp_path: Path) -> None:
    encoder = tiny_export(tmp_path)
    texts = ["a", "a b c d e f g h a b", "c d", "", "h g f", "b", "e e e e"]
    alone = np.vstack([encoder.encode([t]) for t in texts])
    for batch_size in (1, 2, 3, 100):
        np.testing.assert_allclose(encoder.encode(texts, batch_size=batch_size), alone, atol=1e-6)
    # Truncation keeps max_seq_length tokens, [CLS] and [SEP] included, as sentence-transformers.
    np.testing.assert_allclose(encoder.encode(["a b c d"]), encoder.encode(["a b c d e f"]))
    assert not np.allclose(encoder.encode(["a b c"]), encoder.encode(["a b c d"]))


def test_the_int8_copy_is_made_once_atomically_and_reused(tmp_path: Path) -> None:
    fp32 = tiny_export(tmp_path)
    first = int8_encoder(fp32, progress=False)
    target = tmp_path / INT8_RECIPE.file_name
    assert first.model_file == INT8_RECIPE.file_name and target.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [ONNX_FILE, "tokenizer.json", INT8_RECIPE.file_name]
    )  # no staging file left behind
    stamp = target.stat().st_mtime_ns
    os.utime(target, ns=(stamp - 10**9, stamp - 10**9))
    again = int8_encoder(fp32, progress=False)
    assert target.stat().st_mtime_ns == stamp - 10**9  # loaded, not quantised again
    texts = ["a b c", "h g"]
    np.testing.assert_array_equal(again.encode(texts), first.encode(texts))
    # One text per run: a vector never depends on the batch it was embedded in.
    alone = np.vstack([first.encode([t]) for t in texts])
    np.testing.assert_array_equal(first.encode(texts, batch_size=16), alone)
    assert np.min(np.sum(first.encode(texts) * fp32.encode(texts), axis=1)) > 0.9

    target.write_bytes(b"damaged")  # a damaged copy is replaced, not loaded
    repaired = int8_encoder(fp32, progress=False)
    np.testing.assert_allclose(repaired.encode(texts), first.encode(texts), atol=1e-6)


def test_an_unknown_passage_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().passage_backend == "onnx"  # chosen by measurement: bench/backend_bench.py
    with pytest.raises(ValidationError, match="'torch', 'onnx' or 'onnx-int8'"):
        Settings(passage_backend="int4")
    monkeypatch.setenv("PLANQA_PASSAGE_BACKEND", "fp16")
    with pytest.raises(ValidationError, match="passage_backend"):
        Settings()
    monkeypatch.setenv("PLANQA_PASSAGE_BACKEND", "onnx-int8")
    assert Settings().passage_backend == "onnx-int8"


def local_settings(tmp_path: Path, backend: str) -> Settings:
    """A local model folder and explicit prompts: the model id needs no model loaded."""
    (tmp_path / "model").mkdir(exist_ok=True)
    return Settings(
        embedding_model=str(tmp_path / "model"),
        cache_dir=tmp_path / "cache",
        index_dir=tmp_path / "index",
        query_prompt="query: ",
        passage_prompt="passage: ",
        passage_backend=backend,
    )


def test_only_int8_vectors_get_their_own_model_id_cache_entries_and_index(tmp_path: Path) -> None:
    ids = {b: make_embedder(local_settings(tmp_path, b)).model_id for b in ("torch", "onnx")}
    int8 = make_embedder(local_settings(tmp_path, "onnx-int8"))
    assert ids["torch"] == ids["onnx"] and int8.model_id != ids["torch"]
    assert INT8_RECIPE.tag in int8.model_id

    cache_file = tmp_path / "embeddings.sqlite3"
    EmbeddingCache(cache_file, ids["torch"], 3).store(["甲"], np.ones((1, 3), dtype=np.float32))
    assert EmbeddingCache(cache_file, int8.model_id, 3).lookup(["甲"]) == {}

    torch_settings = local_settings(tmp_path, "torch")
    torch_embedder = make_embedder(torch_settings)
    manifest = settings_fingerprint(torch_settings, torch_embedder)
    check_compatible(manifest, local_settings(tmp_path, "onnx"), torch_embedder)
    with pytest.raises(IndexStoreError, match="PLANQA_PASSAGE_BACKEND='onnx'"):
        check_compatible(manifest, local_settings(tmp_path, "onnx-int8"), int8)
    back = settings_fingerprint(local_settings(tmp_path, "onnx-int8"), int8)
    with pytest.raises(IndexStoreError, match="PLANQA_PASSAGE_BACKEND='onnx-int8'"):
        check_compatible(back, torch_settings, torch_embedder)


def test_the_backend_hint_only_when_nothing_else_differs() -> None:
    assert passage_backend_of("m|q=''|p=''|passages=int8-x", "m|q=''|p=''") == "onnx-int8"
    assert passage_backend_of("m|q=''|p=''", "m|q=''|p=''|passages=int8-x") == "onnx"
    assert passage_backend_of("m|q='a'|p=''", "m|q=''|p=''|passages=int8-x") is None
    assert passage_backend_of("m|q=''|p=''", "m|q=''|p=''") is None


def test_bench_backends_json_shape(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from planqa.ui.cli import app

    monkeypatch.setenv("PLANQA_EMBEDDING_MODEL", "hash")
    monkeypatch.setenv("PLANQA_INDEX_DIR", str(tmp_path / "index"))
    runner = CliRunner()
    args = ["bench", "--backends", "--backend", "onnx", "--backend", "onnx-int8"]
    result = runner.invoke(app, [*args, "--passages", "20", "--rounds", "2", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sample"] == 20 and data["rounds"] == 2 and len(data["load_average"]["start"]) == 3
    assert [row["backend"] for row in data["backends"]] == ["onnx", "onnx-int8"]
    for row in data["backends"]:
        assert row["min_cosine_vs_torch"] == pytest.approx(1.0)  # hash: one embedder for all
        assert row["passages_per_s"] > 0 and set(row["recall_at_5"]) == {"dense", "hybrid"}
        assert len(row["round_passages_per_s"]) == 2
        assert row["passages_per_s"] >= row["median_passages_per_s"]
        assert row["build"]["embedded"] == row["build"]["chunks"] > 0  # the cache was off
    assert data["chosen"] is None  # no torch row to compare recall with
    assert "progress" not in result.stdout and "onnx-int8: " in result.stderr

    table = runner.invoke(app, ["bench", "--backends", "--passages", "8", "--no-recall"])
    assert table.exit_code == 0, table.stderr
    assert table.stdout.startswith("| backend | passages/s") and "| torch |" in table.stdout
    unknown = runner.invoke(app, ["bench", "--backends", "--backend", "fp16"])
    assert unknown.exit_code == 2 and "choose from torch, onnx, onnx-int8" in unknown.stderr


# --------------------------------------------------------------------------- the real model

MIXED = [
    "哪个区规划了集成电路测试产业园？",
    "到2025年，地区生产总值突破1000亿元，年均增长7%以上。" * 3,
    "十四五" * 400,  # far past 512 tokens: truncated like sentence-transformers
    "Build a modern industrial system 建设现代化产业体系 🚀",
    "规划",
    "港闸经济开发区《发展规划》第三章\n" + "推进先进制造业与现代服务业深度融合。" * 12,
]


@pytest.fixture(scope="module")
def torch_passages() -> np.ndarray:
    embedder = make_embedder(Settings(passage_backend="torch"), progress=False)
    return embedder.embed_passages(MIXED)


@pytest.mark.slow
def test_onnx_passages_equal_torch_passages(torch_passages: np.ndarray) -> None:
    onnx = make_embedder(Settings(passage_backend="onnx", embed_batch_size=4), progress=False)
    ours = onnx.embed_passages(MIXED)
    assert onnx.passage_runtime == "onnx"
    assert np.min(np.sum(ours * torch_passages, axis=1)) >= 0.9999
    one_by_one = np.vstack([onnx.embed_passages([t]) for t in MIXED])
    np.testing.assert_allclose(ours, one_by_one, atol=1e-5)
    torch_id = make_embedder(Settings(passage_backend="torch"), progress=False).model_id
    assert onnx.model_id == torch_id


@pytest.mark.slow
def test_int8_passages_are_close_and_the_copy_is_cached(torch_passages: np.ndarray) -> None:
    int8 = make_embedder(Settings(passage_backend="onnx-int8"), progress=False)
    vectors = int8.embed_passages(MIXED)
    assert int8.passage_runtime == "onnx-int8"
    cosines = np.sum(vectors * torch_passages, axis=1)
    # Measured ≥ 0.9955 on prose, 0.947 on one trigram repeated past the sequence limit.
    prose = np.delete(cosines, MIXED.index("十四五" * 400))
    assert np.min(prose) >= 0.99 and np.min(cosines) >= 0.9 and np.max(cosines) < 0.99999
    encoder = int8.exports.passage_encoder()
    path = encoder.directory / encoder.model_file
    stamp = path.stat().st_mtime_ns
    again = make_embedder(Settings(passage_backend="onnx-int8"), progress=False)
    # Another batch, another process-level cache miss: the same vectors (one text per run).
    np.testing.assert_allclose(
        again.embed_passages(MIXED[-1:] + MIXED[:2])[1:], vectors[:2], atol=1e-6
    )
    assert path.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_an_index_switching_to_int8_is_refused_then_rebuilt(tmp_path: Path) -> None:
    from planqa.index.builder import build_index
    from planqa.index.search import HybridSearcher

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "南通市港闸区十四五规划.txt").write_text(
        "第一章 总体要求\n推进先进制造业与现代服务业深度融合，建设集成电路测试产业园。\n"
        "第二章 主要目标\n到2025年，地区生产总值突破1000亿元。\n",
        encoding="utf-8",
    )
    # The user's model cache (the real model, converted once); the embedding cache off, so each
    # build shows what it really embeds.
    base = Settings(index_dir=tmp_path / "index", embedding_cache=False)
    torch_settings = base.model_copy(update={"passage_backend": "torch"})
    built = build_index(torch_settings, [tmp_path / "docs"], progress=False)
    assert built.embedded == built.chunks > 0

    onnx_settings = base.model_copy(update={"passage_backend": "onnx"})
    assert build_index(onnx_settings, [tmp_path / "docs"], progress=False).up_to_date

    int8_settings = base.model_copy(update={"passage_backend": "onnx-int8"})
    with pytest.raises(IndexStoreError, match="PLANQA_PASSAGE_BACKEND='onnx'"):
        HybridSearcher.open(int8_settings)
    rebuilt = build_index(int8_settings, [tmp_path / "docs"], progress=False)
    assert not rebuilt.up_to_date and rebuilt.embedded == rebuilt.chunks == built.chunks
    assert HybridSearcher.open(int8_settings).search("集成电路测试产业园", 1)


@pytest.mark.slow
def test_indexing_through_onnx_never_imports_torch(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "南通市港闸区十四五规划.txt").write_text(
        "第一章 总体要求\n建设集成电路测试产业园。\n", encoding="utf-8"
    )
    script = (
        "import sys; from pathlib import Path; from planqa.corpus.settings import Settings;"
        "from planqa.index.builder import build_index;"
        f"s = Settings(index_dir=Path({str(tmp_path / 'index')!r}), embedding_cache=False,"
        " passage_backend='onnx');"
        f"r = build_index(s, [Path({str(tmp_path / 'docs')!r})], progress=False);"
        "print(r.embedded, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False"]


def test_the_default_rule_fastest_within_recall_then_no_torch() -> None:
    from bench.backend_bench import choose_backend

    def row(backend: str, rate: float, dense: float, hybrid: float = 0.94) -> dict:
        return {
            "backend": backend,
            "passages_per_s": rate,
            "recall_at_5": {"dense": dense, "hybrid": hybrid},
        }

    torch = row("torch", 2.5, 0.80)
    assert choose_backend([torch, row("onnx", 2.4, 0.80)]) == "onnx"  # equal within noise
    assert choose_backend([torch, row("onnx", 2.0, 0.80)]) == "torch"
    assert choose_backend([torch, row("onnx", 2.5, 0.80), row("onnx-int8", 5.0, 0.78)]) == "onnx"
    assert choose_backend([torch, row("onnx", 2.5, 0.80), row("onnx-int8", 5.0, 0.795)]) == (
        "onnx-int8"
    )
    assert choose_backend([torch, row("onnx-int8", 5.0, 0.80, hybrid=0.92)]) == "torch"
    assert choose_backend([row("onnx", 2.5, 0.8)]) is None
