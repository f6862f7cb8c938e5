"""The ONNX Runtime query path must give the torch path's vectors, and fall back when it cannot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from corpus.errors import ModelError
from corpus.settings import Settings
from index.embedder import make_embedder
from index.onnx_encoder import (
    META_FILE,
    OnnxModelInfo,
    OnnxQueryEncoder,
    OnnxUnavailable,
    describe_model,
    model_fingerprint,
    pool,
)


def test_mean_pooling_ignores_padding_and_normalises() -> None:
    hidden = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(pool(hidden, mask, "mean", normalize=False), [[2.0, 0.0]])
    np.testing.assert_allclose(pool(hidden, mask, "mean", normalize=True), [[1.0, 0.0]])
    np.testing.assert_allclose(pool(hidden, mask, "cls", normalize=False), [[1.0, 0.0]])


def test_fingerprint_changes_when_a_model_file_changes(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"a")
    before = model_fingerprint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"ab")
    assert model_fingerprint(tmp_path) != before


def test_a_missing_garbled_or_stale_export_is_not_used(tmp_path: Path) -> None:
    model_dir, export_dir = tmp_path / "model", tmp_path / "export"
    model_dir.mkdir()
    export_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    assert OnnxQueryEncoder.load(export_dir, model_dir, 512) is None
    (export_dir / META_FILE).write_text("{not json")
    assert OnnxQueryEncoder.load(export_dir, model_dir, 512) is None
    meta = {
        "fingerprint": "stale",
        "dimension": 4,
        "pooling": "mean",
        "normalize": True,
        "max_seq_length": 8,
        "pad_token_id": 0,
        "lowercase": False,
        "model_prompts": {},
        "min_check_cosine": 1.0,
    }
    (export_dir / META_FILE).write_text(json.dumps(meta))
    assert OnnxQueryEncoder.load(export_dir, model_dir, 512) is None


def test_a_damaged_export_loading_in_the_background_fails_on_first_use(tmp_path: Path) -> None:
    info = OnnxModelInfo(
        fingerprint="x",
        dimension=4,
        pooling="mean",
        normalize=True,
        max_seq_length=8,
        pad_token_id=0,
        lowercase=False,
        model_prompts={},
        min_check_cosine=1.0,
    )
    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    encoder = OnnxQueryEncoder(tmp_path, info, 8, background=True)
    with pytest.raises(OnnxUnavailable, match="cannot load the ONNX export"):
        encoder.encode(["问题"])
    with pytest.raises(OnnxUnavailable):
        OnnxQueryEncoder(tmp_path, info, 8)


class Transformer:
    pass


class Dense:
    pass


class Pooling:
    def __init__(self, **config: object) -> None:
        self.config = config

    def get_config_dict(self) -> dict[str, object]:
        return self.config


def test_unsupported_models_are_refused_for_the_torch_path(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(OnnxUnavailable, match="module stack"):
        describe_model([Transformer(), Pooling(pooling_mode="mean"), Dense()], tmp_path)
    with pytest.raises(OnnxUnavailable, match="pooling"):
        describe_model([Transformer(), Pooling(pooling_mode="weightedmean")], tmp_path)
    with pytest.raises(OnnxUnavailable, match=r"tokenizer\.json"):
        describe_model([Transformer(), Pooling(pooling_mode="mean")], tmp_path / "elsewhere")


def test_a_hub_name_keeps_the_torch_path_and_onnx_insists(tmp_path: Path) -> None:
    settings = Settings(embedding_model="someone/not-downloaded", cache_dir=tmp_path)
    embedder = make_embedder(settings)
    assert embedder._onnx_paths() is None
    strict = make_embedder(settings.model_copy(update={"embedding_backend": "onnx"}))
    strict._model = SimpleNamespace()  # never reached: the name is not a local directory
    with pytest.raises(ModelError, match="embedding_backend is 'onnx'"):
        strict.embed_queries(["问题"])


@pytest.mark.slow
def test_onnx_queries_equal_torch_queries_and_skip_torch_on_a_cold_start() -> None:
    texts = ["哪个区规划了集成电路测试产业园？", "GDP 年均增长 7%", "十四五" * 400, "🚀 emoji"]
    onnx = make_embedder(Settings(), progress=False)
    torch_vectors = make_embedder(Settings(embedding_backend="torch"), progress=False)
    ours, reference = onnx.embed_queries(texts), torch_vectors.embed_queries(texts)
    assert onnx.query_backend == "onnx"
    assert np.min(np.sum(ours * reference, axis=1)) > 0.9999
    assert onnx.model_id == torch_vectors.model_id and onnx.dimension == 384

    script = (
        "import sys; from corpus.settings import Settings;"
        "from index.embedder import make_embedder;"
        "e = make_embedder(Settings()); v = e.embed_queries(['问题']);"
        "print(e.query_backend, e.dimension, 'torch' in sys.modules, v.shape)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split()[:3] == ["onnx", "384", "False"]
