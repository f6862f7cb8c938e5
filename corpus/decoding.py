"""Bytes to text for files found in the wild: UTF-8 (with or without BOM), UTF-16 (with or without
BOM), GB18030/GBK, Big5.

Encodings are detected, not assumed: government sites still publish GBK text. GBK and GB2312
guesses are widened to GB18030, their superset, so a rare character never fails the decode.
"""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes

from planqa.corpus.errors import DocumentError

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WIDEN_TO_GB18030 = {"gbk", "gb2312", "hz", "gb18030", "cp936"}
#: UTF-16 without BOM: NULs at one parity must outnumber those at the other this many times.
_UTF16_NUL_MAJORITY = 4
#: Share of control characters (other than tab/newline/CR/form feed) above which text is "binary".
_MAX_CONTROL_SHARE = 0.01


def decode_bytes(data: bytes, source: str = "<bytes>") -> tuple[str, str]:
    """Return ``(text, encoding)``; raise DocumentError for empty or binary input."""
    if not data.strip():
        raise DocumentError(
            f"{source}: the file is empty; add text to it or remove it from the corpus"
        )
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _checked(data.decode(encoding), encoding, source)
    try:
        return _checked(data.decode("utf-8"), "utf-8", source)
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        encoding = _bomless_utf16(data)
        if encoding is None:
            raise DocumentError(
                f"{source}: looks binary (NUL bytes, no UTF-16 BOM); not a text document"
            )
        return _checked(data.decode(encoding), encoding, source)
    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise DocumentError(
            f"{source}: cannot detect the text encoding; convert it to UTF-8 "
            "(e.g. iconv -f GB18030 -t UTF-8)"
        )
    encoding = "gb18030" if best.encoding.lower() in _WIDEN_TO_GB18030 else best.encoding
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{source}: bytes are not valid {encoding}: {exc}") from exc
    return _checked(text, encoding, source)


def _bomless_utf16(data: bytes) -> str | None:
    """The codec ("utf-16-le" or "utf-16-be") of UTF-16 text saved without a BOM, else None.

    In such text most NUL bytes are the high byte of ASCII characters (newlines, digits), so
    they sit at odd offsets (little endian) or at even ones (big endian); the few others come
    from characters like 一 (U+4E00). Binary files have runs of NULs at both offsets. The
    decoded text must still pass the control-character check.
    """
    if len(data) % 2:
        return None
    even, odd = data[0::2].count(0), data[1::2].count(0)
    encoding = (
        "utf-16-le"
        if odd >= _UTF16_NUL_MAJORITY * even
        else "utf-16-be"
        if even >= _UTF16_NUL_MAJORITY * odd
        else None
    )
    if encoding is None:
        return None
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return None
    return encoding


def _checked(text: str, encoding: str, source: str) -> tuple[str, str]:
    if not text.strip():
        raise DocumentError(f"{source}: the file has no text after decoding ({encoding})")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    if controls > _MAX_CONTROL_SHARE * len(text):
        raise DocumentError(
            f"{source}: looks binary ({controls} control characters); not a text document"
        )
    return text, encoding
