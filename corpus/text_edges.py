"""Text that can be encoded, at the edges where it enters and leaves planqa.

Python strings may hold lone surrogates (U+D800..U+DFFF): a JSON ``"\\ud800"`` escape, a browser
that sends half of an emoji, or command-line bytes that are not UTF-8 (decoded with
``surrogateescape``). They are harmless until the text is encoded — and then ``print``, gradio's
JSON encoder (orjson) or a tokenizer written in Rust fails, *after* the work was done, which
dropped web sessions and cut ``planqa ask --questions`` runs short. So inputs are made valid
where they enter (CLI arguments, question files, web inputs, :meth:`HybridSearcher.validate_query`)
and outputs where they leave: each lone surrogate becomes U+FFFD, the replacement character, and a
well-formed surrogate pair becomes the character it encodes.
"""

from __future__ import annotations

import math
from typing import Any

REPLACEMENT = "\ufffd"


def valid_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (pairs joined); others unchanged.

    The common case (already valid) costs one UTF-8 encode and returns ``text`` itself.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 keeps pairs as pairs and turns each lone surrogate into two bytes that do not
        # decode, so "replace" yields exactly one U+FFFD for it.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def json_safe(value: Any) -> Any:
    """``value`` ready for strict JSON: strings made valid, NaN and ±Infinity (which
    ``json.dumps`` writes as the invalid tokens ``NaN``/``Infinity``) become None. Dicts, lists
    and tuples are copied; anything else is returned as is."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {json_safe(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value
