"""Passages on the hardware users have: a GPU, or a pool of worker processes, with the same
vectors as the CPU runtime; and no torch import for "auto" on a machine without a GPU."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from planqa.corpus.errors import ModelError
from planqa.corpus.settings import Settings
from planqa.index.embedder import make_embedder
from planqa.index.passage_devices import NVIDIA_DRIVER, passage_devices


@pytest.mark.parametrize(
    ("device", "workers", "gpus", "expected"),
    [
        ("cpu", 1, 2, None),
        ("auto", 1, 0, None),
        ("auto", 1, 2, ["cuda:0"]),
        ("auto", 4, 2, ["cuda:0", "cuda:1"]),
        ("cuda", 1, 1, ["cuda:0"]),
        ("cpu", 3, 2, ["cpu", "cpu", "cpu"]),
        ("auto", 2, 0, ["cpu", "cpu"]),
    ],
)
def test_devices_follow_the_settings_and_the_gpus_present(
    device: str, workers: int, gpus: int, expected: list[str] | None
) -> None:
    settings = Settings(embedding_device=device, embedding_workers=workers)
    assert passage_devices(settings, gpus=gpus) == expected


def test_cuda_without_a_gpu_is_refused_with_the_fix() -> None:
    with pytest.raises(ModelError, match="PLANQA_EMBEDDING_DEVICE=cpu"):
        passage_devices(Settings(embedding_device="cuda"), gpus=0)


def test_int8_passages_cannot_leave_this_process() -> None:
    settings = Settings(passage_backend="onnx-int8", embedding_workers=2)
    with pytest.raises(ModelError, match="onnx-int8"):
        passage_devices(settings, gpus=0)


@pytest.mark.skipif(NVIDIA_DRIVER.exists(), reason="this machine has an NVIDIA driver")
def test_auto_on_a_machine_without_a_gpu_never_imports_torch() -> None:
    script = (
        "import sys\n"
        "from planqa.corpus.settings import Settings\n"
        "from planqa.index.passage_devices import passage_devices\n"
        "assert passage_devices(Settings()) is None\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


@pytest.mark.slow
def test_a_worker_pool_gives_the_vectors_of_the_cpu_runtime() -> None:
    texts = ["南通开发区实际利用外资累计32.5亿美元。", "建设集成电路测试产业园。", "加强生态保护。"]
    single = make_embedder(Settings(embedding_device="cpu"), progress=False)
    pooled = make_embedder(Settings(embedding_device="cpu", embedding_workers=2), progress=False)
    assert pooled.passage_runtime == "torch@cpu,cpu"
    assert pooled.model_id == single.model_id
    cosines = np.sum(single.embed_passages(texts) * pooled.embed_passages(texts), axis=1)
    assert np.min(cosines) >= 0.9999
