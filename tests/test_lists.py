"""List questions quote the members of the group, not only the sentence announcing it."""

from __future__ import annotations

from planqa.rag.lists import asked_count, members_after

TEXT = "重点抓好三个方面：一是稳增长；二是促改革；三是惠民生。四是另一组的开头。此外还要抓落实。"


def test_the_count_comes_from_the_question() -> None:
    assert asked_count("海门区精心培育的三大地标产业是哪几个？") == 3
    assert asked_count("轨道交通“四网融合”是哪四张网？") == 4
    assert asked_count("主要任务包括哪些？") is None


def test_the_numbered_sentences_after_the_announcement_are_its_members() -> None:
    first = (0, TEXT.index("；") + 1)  # 「重点抓好三个方面：一是稳增长；」 holds the first member
    spans = members_after(TEXT, 0, first, "重点抓好哪三个方面？")
    assert [TEXT[a:b] for a, b in spans] == ["二是促改革；", "三是惠民生。"]
    # Without a count, every numbered sentence that follows is taken, up to MAX_MEMBERS.
    unbounded = members_after(TEXT, 0, first, "重点抓好哪些方面？")
    assert [TEXT[a:b] for a, b in unbounded][-1] == "四是另一组的开头。"


def test_an_unnumbered_sentence_ends_the_list() -> None:
    text = "主要任务：（一）建设产业园。（二）发展服务业。本章完。（三）不是这一组的。"
    first = (0, text.index("。") + 1)
    spans = members_after(text, 0, first, "主要任务有哪些？")
    assert [text[a:b] for a, b in spans] == ["（二）发展服务业。"]
