"""The heading tree on synthetic documents: every heading form and level, boxes, CRLF and NBSP
text, tables of contents, and the lines that only look like headings."""

from __future__ import annotations

from structure_checks import section_paths, section_text, texts

from planqa.corpus.structure import parse_structure

# --- synthetic documents ---

EVERY_FORM = """规划纲要
序 言
序言的正文。
第一章 总体要求
本章导语。
第一节发展基础
节的正文。
一、主要成就
成就的正文。
（一）经济增长
增长的正文。
1、工业
工业的正文。
（1）制造业
制造业的正文。
(2)服务业
服务业的正文。
2.农业
农业的正文。
3．渔业
渔业的正文。
(二)发展不足。不足之处在于结构。
专栏1 重大项目
1. 项目甲
甲的正文。
2. 项目乙
乙的正文。
第二节 发展形势
形势的正文。
专栏 2
专栏二的正文。
第 2 章 主要任务
任务的正文。
结 语
结语的正文。
"""


def test_every_heading_form() -> None:
    """Both 第X节 and 一、 occur here, so 一、 and everything below sit one level deeper."""
    structure = parse_structure(EVERY_FORM)
    levels = {h.text: h.level for h in structure.headings}
    assert levels == {
        "序 言": 0,
        "第一章 总体要求": 0,
        "第一节发展基础": 1,
        "一、主要成就": 2,
        "（一）经济增长": 3,
        "1、工业": 4,
        "（1）制造业": 5,
        "(2)服务业": 5,
        "2.农业": 4,
        "3．渔业": 4,
        "(二)发展不足": 3,
        "专栏1 重大项目": 4,
        "1. 项目甲": 4,
        "2. 项目乙": 4,
        "第二节 发展形势": 1,
        "专栏 2": 2,
        "第 2 章 主要任务": 0,
        "结 语": 0,
    }
    paths = {section_text(EVERY_FORM, structure, s.path): s.path for s in structure.sections}
    achievements = ("第一章 总体要求", "第一节发展基础", "一、主要成就")
    assert paths["制造业的正文。"] == (*achievements, "（一）经济增长", "1、工业", "（1）制造业")
    assert paths["渔业的正文。"] == (*achievements, "（一）经济增长", "3．渔业")
    assert paths["甲的正文。"] == (*achievements, "(二)发展不足", "专栏1 重大项目", "1. 项目甲")
    assert paths["专栏二的正文。"] == ("第一章 总体要求", "第二节 发展形势", "专栏 2")
    assert paths["(二)发展不足。不足之处在于结构。"][-1] == "(二)发展不足"
    assert "规划纲要" not in paths  # an unpunctuated title outside chapters is a cover
    assert paths["结语的正文。"] == ("结 语",)


def test_nominal_levels_and_preface_as_sibling() -> None:
    """Without chapters the preface is a sibling of 一、, not its parent."""
    text = "前 言\n前言正文。\n一、甲\n（一）乙\n1、丙\n（1）丁\n正文。\n二、戊\n正文。"
    structure = parse_structure(text)
    assert [(h.level, h.text) for h in structure.headings] == [
        (1, "前 言"),
        (1, "一、甲"),
        (2, "（一）乙"),
        (3, "1、丙"),
        (4, "（1）丁"),
        (1, "二、戊"),
    ]
    assert ("一、甲", "（一）乙", "1、丙", "（1）丁") in section_paths(structure)


def test_a_box_closes_at_the_next_structural_heading() -> None:
    text = "一、甲\n正文。\n专栏:工程\n1. 项目。说明。\n2. 项目二。说明。\n（一）乙\n乙的正文。"
    structure = parse_structure(text)
    assert section_paths(structure) == {
        ("一、甲",),
        ("一、甲", "专栏:工程", "1. 项目"),
        ("一、甲", "专栏:工程", "2. 项目二"),
        ("一、甲", "（一）乙"),
    }


def test_crlf_text_gives_the_same_tree_with_exact_offsets() -> None:
    crlf = EVERY_FORM.replace("\n", "\r\n")
    lf_structure, structure = parse_structure(EVERY_FORM), parse_structure(crlf)
    assert texts(structure.headings) == texts(lf_structure.headings)
    for heading in structure.headings:
        assert crlf[heading.start : heading.end].startswith(heading.text)
    for section in structure.sections:
        body = crlf[section.start : section.end]
        assert body == body.strip() and "\r" not in body[-1:]
    assert [s.path for s in structure.sections] == [s.path for s in lf_structure.sections]


def test_nbsp_only_lines_are_blank() -> None:
    text = "\xa0\n一、总则\n\xa0\xa0\n正文第一段。\n\u3000\n正文第二段。\n\xa0"
    structure = parse_structure(text)
    assert texts(structure.headings) == ["一、总则"]
    (section,) = structure.sections
    assert text[section.start : section.end] == "正文第一段。\n\u3000\n正文第二段。"


def test_empty_and_blank_text() -> None:
    for text in ("", "\n\n", "\xa0\r\n \u3000"):
        assert parse_structure(text) == parse_structure("")
        structure = parse_structure(text)
        assert not structure.headings and not structure.sections and not structure.dropped


def test_text_without_headings_is_one_root_section() -> None:
    text = "第一段,说明情况。\n\n第二段继续说明。\n第三段"
    structure = parse_structure(text)
    assert structure.headings == ()
    assert structure.sections[0].path == ()
    assert section_text(text, structure, ()) == text


def test_paragraphs_that_start_with_markers_are_body() -> None:
    long_item = "一、" + "坚持创新驱动,推动高质量发展," * 4 + "取得明显成效。"
    text = f"一是加强领导。要高度重视。\n{long_item}\n5. 工业企业绩效评价体系建设。\n"
    structure = parse_structure(text)
    assert structure.headings == ()


def test_out_of_sequence_numbers_are_body() -> None:
    text = "一、甲\n正文。\n二、乙\n正文。\n一、误排\n正文。\n三、丙\n正文。\n（二）无头\n正文。"
    structure = parse_structure(text)
    assert texts(structure.headings) == ["一、甲", "二、乙", "三、丙"]
    assert "一、误排" in section_text(text, structure, ("二、乙",))
    assert "（二）无头" in section_text(text, structure, ("三、丙",))


def test_root_may_start_at_any_number() -> None:
    structure = parse_structure("三、节选\n正文。\n四、续\n正文。")
    assert texts(structure.headings) == ["三、节选", "四、续"]


def test_toc_without_header_and_page_number_lines() -> None:
    text = (
        "一、总则……1\n二、目标……3\n三、任务……5\n"
        "一、总则\n总则正文。\n- 2 -\n总则续。\n二、目标\n目标正文。\n三、任务\n任务正文。"
    )
    structure = parse_structure(text)
    assert [r for _, _, r in structure.dropped] == ["toc", "page_number"]
    assert texts(structure.headings) == ["一、总则", "二、目标", "三、任务"]
    # The page number splits the section into two pieces with the same path.
    assert [text[s.start : s.end] for s in structure.sections if s.path == ("一、总则",)] == [
        "总则正文。",
        "总则续。",
    ]


def test_toc_with_space_page_numbers_but_no_repeat() -> None:
    text = "目录\n一、总则 1\n二、目标 3\n前言\n前言正文很长,不在目录里。\n一、总则\n正文。"
    structure = parse_structure(text)
    toc_end = text.index("二、目标 3") + len("二、目标 3")
    assert structure.dropped == ((0, toc_end, "toc"),)
    assert texts(structure.headings) == ["前言", "一、总则"]


def test_a_lone_toc_word_is_not_a_toc() -> None:
    text = "目录\n本文没有目录,只是正文。"
    structure = parse_structure(text)
    assert structure.dropped == ()
    assert section_text(text, structure, ()) == text
