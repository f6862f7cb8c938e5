"""Where passages are embedded: this process's CPU runtime, a GPU, or a pool of processes.

Indexing is planqa's slow step (the model's FLOPs, ~3–7 chunks/s on two cores), so hardware users
have should be used: ``embedding_device`` sends passages to a CUDA GPU and ``embedding_workers``
spreads them over several processes (several GPUs, or the cores of a large server, where one
process's threads stop scaling). Both go through sentence-transformers, whose vectors are the
reference (torch's), so an index keeps its model id whichever hardware built it. Queries stay
on the CPU runtime: one short text is faster there than a transfer to a GPU.

"auto" must not cost a CPU-only machine a torch import on every ``planqa index`` (the ONNX
passage path avoids torch): torch is asked about CUDA only where an NVIDIA driver is present.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from planqa.corpus.errors import ModelError
from planqa.corpus.settings import Settings

#: Present where an NVIDIA kernel driver is loaded.
NVIDIA_DRIVER = Path("/proc/driver/nvidia")


def cuda_devices() -> int:
    """How many CUDA GPUs torch can use here (0 without asking torch where no driver exists)."""
    if not NVIDIA_DRIVER.exists() and shutil.which("nvidia-smi") is None:
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def passage_devices(settings: Settings, gpus: int | None = None) -> list[str] | None:
    """The sentence-transformers devices to embed passages on, or None for this process's CPU
    runtime (``passage_backend``). A list of several starts a multi-process pool.

    ``gpus`` is the number of CUDA GPUs (asked of torch when not given).
    """
    device, workers = settings.embedding_device, settings.embedding_workers
    if device == "cpu" and workers == 1:
        return None
    if gpus is None:
        gpus = cuda_devices()
    if device == "cuda" and gpus == 0:
        raise ModelError(
            "embedding_device is cuda but torch sees no CUDA GPU here; set "
            "PLANQA_EMBEDDING_DEVICE=cpu (or auto), or install a CUDA build of torch"
        )
    if device != "cpu" and gpus:
        chosen = [f"cuda:{i}" for i in range(min(workers, gpus))]
    elif workers == 1:
        return None  # auto on a machine without a GPU: the CPU runtime, as configured
    else:
        chosen = ["cpu"] * workers
    if settings.passage_backend == "onnx-int8":
        raise ModelError(
            "passage_backend onnx-int8 runs in this process on the CPU only; use "
            "passage_backend onnx or torch with embedding_device or embedding_workers"
        )
    return chosen
