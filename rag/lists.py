"""The members of an enumerated group, for "哪些 / 包括什么 / 三大…是哪几个" questions.

Plans announce a group in one sentence and list it in the next ones: 「重点抓好五个方面：
一是…；二是…；」 or 「主要任务：（一）…（二）…」. The sentence that best matches the question is
usually the announcement, which names the group but not its members; a list question wants the
members. So after the best sentence, the sentences that follow it in its passage and open with an
enumeration marker are quoted too — as many as the question's count says (三大 → 3) when it gives
one.
"""

from __future__ import annotations

import re

from planqa.corpus.chunking import split_sentences

#: 一是 / （一） / (一) / 1. / 1、 / 第一，— the ways plans number the members of a group.
_MEMBER = re.compile(
    r"^\s*(?:[一二三四五六七八九十]+是|[（(][一二三四五六七八九十\d]+[）)]|\d+\s*[.．、]"
    r"|第[一二三四五六七八九十]+[，,、：:])"
)
_COUNT = re.compile(r"([两二三四五六七八九十]|\d+)\s*(?:大|个|项|条|类|种|片|张|网|区|方面|化|新)")
_DIGITS = dict(zip("两二三四五六七八九十", (2, 2, 3, 4, 5, 6, 7, 8, 9, 10), strict=True))
#: A member marker anywhere in a sentence: the announcement may already hold the first member.
_MEMBER_INSIDE = re.compile(r"[一二三四五六七八九十]+是|[（(][一二三四五六七八九十]+[）)]")
#: Without a count, at most this many members are quoted (the answer stays short).
MAX_MEMBERS = 6


def asked_count(question: str) -> int | None:
    """三大地标产业 → 3, "四网融合" → 4, 哪些 → None."""
    match = _COUNT.search(question)
    if not match:
        return None
    word = match.group(1)
    return int(word) if word.isdigit() else _DIGITS[word]


def members_after(
    text: str, offset: int, sentence: tuple[int, int], question: str
) -> list[tuple[int, int]]:
    """Spans (document offsets) of the numbered sentences right after ``sentence`` in a passage
    ``text`` starting at ``offset``; the first unnumbered sentence ends the list, and the
    question's count (less a member the sentence itself holds) bounds it."""
    start, end = sentence
    count = asked_count(question)
    if count is not None and _MEMBER_INSIDE.search(text[start - offset : end - offset]):
        count -= 1
    limit = count if count is not None else MAX_MEMBERS
    members: list[tuple[int, int]] = []
    for begin, finish in split_sentences(text, offset):
        if begin < end:
            continue
        if len(members) >= limit or not _MEMBER.match(text[begin - offset : finish - offset]):
            break
        members.append((begin, finish))
    return members
