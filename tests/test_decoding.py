from __future__ import annotations

import codecs

import pytest

from corpus.decoding import decode_bytes
from corpus.errors import DocumentError

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
