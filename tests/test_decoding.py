from __future__ import annotations

import codecs

import pytest

from planqa.corpus.decoding import decode_bytes
from planqa.corpus.errors import DocumentError

SAMPLE = "南通市经济技术开发区：设立国家集成电路测试产业园，聚力打造国家测谷。锶镓𠀀"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (SAMPLE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + SAMPLE.encode("utf-8"), "utf-8-sig"),
        (SAMPLE.encode("utf-16"), "utf-16"),
        (SAMPLE.encode("gb18030") * 3, "gb18030"),
    ],
)
def test_decodes_common_encodings(data: bytes, encoding: str) -> None:
    text, detected = decode_bytes(data)
    assert SAMPLE in text
    assert detected == encoding


def test_gbk_file_is_read_as_gb18030() -> None:
    gbk = ("海州区计划到2025年高标准农田面积比重达到80%。" * 5).encode("gbk")
    text, detected = decode_bytes(gbk)
    assert text.startswith("海州区计划")
    assert detected == "gb18030"


@pytest.mark.parametrize("data", [b"", b"   \n\t ", "\ufeff".encode()])
def test_empty_input_is_refused(data: bytes) -> None:
    with pytest.raises(DocumentError, match=r"empty|no text"):
        decode_bytes(data, "empty.txt")


def test_binary_input_is_refused() -> None:
    binary = bytes(range(256)) * 40
    with pytest.raises(DocumentError, match=r"binary|encoding"):
        decode_bytes(binary, "image.txt")


def test_crlf_is_kept_so_offsets_match_the_file() -> None:
    text, _ = decode_bytes("第一章\r\n正文。".encode())
    assert text == "第一章\r\n正文。"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_recognised(encoding: str) -> None:
    # 一 (U+4E00) puts a NUL at the "wrong" offset; a few of those must not make it "binary".
    text = "一、发展目标\n到2025年，地区生产总值达到1000亿元。\n" * 3
    decoded, detected = decode_bytes(text.encode(encoding))
    assert decoded == text and detected == encoding


@pytest.mark.parametrize(
    "data",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(1000), (1).to_bytes(2, "little") * 500],
)
def test_binary_with_nul_bytes_is_not_taken_for_utf16(data: bytes) -> None:
    with pytest.raises(DocumentError, match="binary"):
        decode_bytes(data, "image.txt")
