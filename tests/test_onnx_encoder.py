"""The ONNX Runtime query path must give the torch path's vectors, and fall back when it cannot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from planqa.corpus.errors import ModelError
from planqa.corpus.settings import Settings
from planqa.index.embedder import make_embedder
from planqa.index.onnx_encoder import (
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


#: A child that exits (code 2, as for bad input) while its background loader is inside
#: InferenceSession: it waits until the loader has entered the constructor, then leaves.
EARLY_EXIT_CHILD = """
import sys, threading, time
from pathlib import Path
import onnxruntime
from planqa.index.onnx_encoder import OnnxModelInfo, OnnxQueryEncoder

entered, real = threading.Event(), onnxruntime.InferenceSession

def session(*args, **kwargs):
    entered.set()
    return real(*args, **kwargs)

onnxruntime.InferenceSession = session
info = OnnxModelInfo("x", 8, "mean", True, 8, 0, False, {}, 1.0)
OnnxQueryEncoder(Path(sys.argv[1]), info, 8, background=True)
assert entered.wait(30)
time.sleep(0.05)
sys.exit(2)
"""


def slow_loading_graph(path: Path, nodes: int = 3000, width: int = 8) -> None:
    """A small file (~2 MB) whose session takes a few hundred ms to build: many tiny MatMuls."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.random((width, width), dtype=np.float32), f"w{i}")
        for i in range(nodes)
    ]
    chain = [
        helper.make_node("MatMul", ["x" if i == 0 else f"h{i - 1}", f"w{i}"], [f"h{i}"])
        for i in range(nodes)
    ]
    graph = helper.make_graph(
        chain,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info(f"h{nodes - 1}", TensorProto.FLOAT, [1, width])],
        weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_exiting_while_the_background_load_runs_never_aborts(tmp_path: Path) -> None:
    """A command that fails early (``planqa search --mode foo x``) exits with its own code: a
    loader thread torn down inside InferenceSession made the C++ runtime abort (134, or 139)."""
    slow_loading_graph(tmp_path / "model.onnx")
    for _ in range(5):
        child = subprocess.run(
            [sys.executable, "-c", EARLY_EXIT_CHILD, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert child.returncode == 2, (child.returncode, child.stderr[-2000:])
        assert "terminate called" not in child.stderr


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
    assert embedder.exports.paths() is None
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
        "import sys; from planqa.corpus.settings import Settings;"
        "from planqa.index.embedder import make_embedder;"
        "e = make_embedder(Settings()); v = e.embed_queries(['问题']);"
        "print(e.query_backend, e.dimension, 'torch' in sys.modules, v.shape)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split()[:3] == ["onnx", "384", "False"]
