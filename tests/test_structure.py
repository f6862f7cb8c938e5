"""The heading tree, body sections and dropped spans of the five real documents (synthetic ones:
test_structure_synthetic.py).

Heading texts asserted here were read off the files in ``corpus/documents``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from structure_checks import section_paths, section_text, texts

from planqa.corpus.structure import DocumentStructure, Heading, parse_structure

DOCUMENTS = Path(__file__).resolve().parent.parent / "corpus" / "documents"
PREFIXES = ("000", "001", "002", "003", "004")
#: A heading line ending in a TOC page number: ``-11-``, ``- 2-``, ``……5``.
TOC_LINE_RE = re.compile(r"(?:[-—–－]\s*\d{1,3}\s*[-—–－]|[.．·…]{2,}\s*\d{1,3})\s*$")


def read_document(prefix: str) -> str:
    """The text exactly as decoded: ``newline=""`` keeps ``\\r\\n`` so offsets match the loader."""
    (path,) = DOCUMENTS.glob(f"{prefix}_*.txt")
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


@pytest.fixture(scope="module", params=PREFIXES)
def parsed(request: pytest.FixtureRequest) -> tuple[str, DocumentStructure]:
    text = read_document(request.param)
    return text, parse_structure(text)


def dropped_reason_at(structure: DocumentStructure, offset: int) -> str | None:
    return next((r for s, e, r in structure.dropped if s <= offset < e), None)


def is_run_in(structure: DocumentStructure, heading: Heading) -> bool:
    """A run-in title opens the body of its own section."""
    return any(s.start == heading.start and s.path[-1] == heading.text for s in structure.sections)


# --- invariants on every real document ---


def test_sections_are_ordered_trimmed_and_disjoint(parsed: tuple[str, DocumentStructure]) -> None:
    text, structure = parsed
    previous_end = 0
    for section in structure.sections:
        assert previous_end <= section.start < section.end <= len(text)
        assert not text[section.start].isspace() and not text[section.end - 1].isspace()
        previous_end = section.end


def test_no_section_touches_a_dropped_span(parsed: tuple[str, DocumentStructure]) -> None:
    _, structure = parsed
    for section in structure.sections:
        for start, end, _reason in structure.dropped:
            assert end <= section.start or start >= section.end


def test_standalone_heading_lines_are_outside_sections(
    parsed: tuple[str, DocumentStructure],
) -> None:
    _, structure = parsed
    for heading in structure.headings:
        if is_run_in(structure, heading):
            continue
        for section in structure.sections:
            assert heading.end <= section.start or heading.start >= section.end, heading


def test_every_character_is_body_heading_or_dropped(parsed: tuple[str, DocumentStructure]) -> None:
    text, structure = parsed
    covered = bytearray(len(text))
    spans = [(s.start, s.end) for s in structure.sections]
    spans += [(h.start, h.end) for h in structure.headings]
    spans += [(s, e) for s, e, _ in structure.dropped]
    for start, end in spans:
        covered[start:end] = b"\x01" * (end - start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, repr(text[missing[0] : missing[0] + 40])


def test_no_toc_line_inside_a_section(parsed: tuple[str, DocumentStructure]) -> None:
    text, structure = parsed
    for section in structure.sections:
        for line in text[section.start : section.end].splitlines():
            assert not TOC_LINE_RE.search(line), line


def test_heading_offsets_are_exact(parsed: tuple[str, DocumentStructure]) -> None:
    text, structure = parsed
    for heading in structure.headings:
        span = text[heading.start : heading.end]
        assert span.startswith(heading.text)
        assert span in (heading.text, heading.text + "。")


# --- 000 南通开发区: 一、 / (一) run-in headings, a TOC with and without page numbers ---


def test_000_top_level_chapters() -> None:
    structure = parse_structure(read_document("000"))
    top = texts(structure.headings, level=1)
    assert top[:4] == ["前 言", "一、发展基础", "二、宏观形势和阶段特征", "三、发展定位和发展目标"]
    assert "七、建设现代产业体系,力促经济高质量发展" in top
    assert top[-1] == "十五、健全保障机制,强化规划组织实施"
    assert len(top) == 16


def test_000_run_in_subheadings_keep_their_paragraph() -> None:
    text = read_document("000")
    structure = parse_structure(text)
    path = ("七、建设现代产业体系,力促经济高质量发展", "(一)做大做强先进制造业")
    assert path in section_paths(structure)
    assert section_text(text, structure, path).startswith(
        "(一)做大做强先进制造业。一是优化产业结构"
    )
    first = ("一、发展基础", "(一)综合实力稳步提升")
    assert section_text(text, structure, first).startswith("(一)综合实力稳步提升。坚持把")
    assert len(texts(structure.headings, level=2)) == 54


def test_000_toc_is_dropped_up_to_the_repeated_first_entry() -> None:
    text = read_document("000")
    structure = parse_structure(text)
    for toc_line in ("目录", "(一)综合实力稳步提升 - 2-", "(四)全面加强规划实施 -42-"):
        assert dropped_reason_at(structure, text.index(toc_line)) == "toc"
    # TOC entries without page numbers are dropped too ...
    assert dropped_reason_at(structure, text.index("(四)优化中心区结构")) == "toc"
    # ... and the body starts at the second 前 言.
    first, second = (m.start() for m in re.finditer("前 言", text))
    assert dropped_reason_at(structure, first) == "toc"
    assert structure.headings[0] == Heading(1, "前 言", second, second + 3)


def test_000_web_info_line_is_front_matter() -> None:
    text = read_document("000")
    structure = parse_structure(text)
    assert dropped_reason_at(structure, text.index("来源: 南通经济技术开发区")) == "front_matter"
    # The title page has no finished sentence: it is a cover, not a passage to retrieve.
    assert dropped_reason_at(structure, text.index("南通市经济技术开发区国民经济")) == "cover"
    assert all(s.path for s in structure.sections)


# --- 001 海州区: 第X章 / 第X节, 序 言, 专栏 boxes ---


def test_001_chapters_and_sections() -> None:
    structure = parse_structure(read_document("001"))
    chapters = texts(structure.headings, level=0)
    assert chapters[:3] == ["序 言", "第一章发展基础与形势", "第二章发展战略与目标"]
    assert "第三章 不断提高发展质效 着力打造实力海州" in chapters
    assert chapters[-1] == "第十章 突出管理评估 强化实施保障"
    assert len(chapters) == 11
    paths = section_paths(structure)
    assert ("第一章发展基础与形势", "第一节发展基础") in paths
    assert ("第九章 筑牢安全稳定底线 着力打造平安海州", "第一节 加强公共安全保障") in paths
    assert ("第二章发展战略与目标", "第三节“十四五”经济社会发展目标") in paths


def test_001_boxes_sit_below_their_section() -> None:
    text = read_document("001")
    structure = parse_structure(text)
    boxes = [h for h in structure.headings if h.text.startswith("专栏")]
    assert len(boxes) == 19
    assert all(h.level == 2 for h in boxes)
    # A box title glued to the end of a paragraph line starts a section of its own.
    glued = "专栏:服务业重点工程、重点项目"
    service = ("第三章 不断提高发展质效 着力打造实力海州", "第二节提升现代服务业发展水平")
    assert section_text(text, structure, service).endswith("综合性仓储物流园区。")
    assert section_text(text, structure, (*service, glued)).startswith("1. 生活性服务业提质工程")
    path = (
        "第三章 不断提高发展质效 着力打造实力海州",
        "第三节推动工业经济扩量提质",
        "专栏:工业高质发展重点工程、重点项目",
    )
    assert section_text(text, structure, path).startswith("1. 重大产业项目:生物药研发基地")


def test_001_numbered_box_items_nest_in_the_box() -> None:
    structure = parse_structure(read_document("001"))
    box = "专栏:重点群体保障重点项目"
    item_paths = [p for p in section_paths(structure) if len(p) == 4 and p[2] == box]
    assert (
        "第七章 推动民生事业发展 着力打造幸福海州",
        "第四节 推动重点群体共享发展",
        box,
        "1. 青少年社会主义核心价值观引领工程",
    ) in item_paths
    assert len(item_paths) == 12


def test_001_list_items_are_not_headings() -> None:
    structure = parse_structure(read_document("001"))
    headings = texts(structure.headings)
    # A list starting at 6 (items 1-5 are "name:detail" lines) is out of sequence.
    assert not any(h.startswith("6. 实施“智汇海州人才计划”") for h in headings)
    # Short list lines that are sentences, and "name:detail" items.
    assert not any(h.startswith(("5. 工业企业绩效评价", "1. 重大产业项目")) for h in headings)


# --- 002 江阴高新区: web header, 目 录 with " 1" page numbers, NBSP lines, an indicator table ---


def test_002_web_header_and_footer_are_dropped() -> None:
    text = read_document("002")
    structure = parse_structure(text)
    for line in ("高新区\n当前位置", "当前位置: 首页", "信息索引号 014040900", "内容概述 根据"):
        assert dropped_reason_at(structure, text.index(line)) == "front_matter", line
    assert dropped_reason_at(structure, text.index("• 收藏")) == "boilerplate"
    root = section_text(text, structure, ())
    assert root.startswith("关于印发《江阴高新区国民经济和社会发展第十三个五年规划")


def test_002_toc_ends_at_its_last_page_number() -> None:
    text = read_document("002")
    structure = parse_structure(text)
    assert dropped_reason_at(structure, text.index("目 录")) == "toc"
    assert dropped_reason_at(structure, text.index("八、确保规划的全面实施 50")) == "toc"
    # 序 言 is not listed in the TOC: it is the body's first heading, not a TOC line.
    preface = text.index("序 言")
    assert dropped_reason_at(structure, preface) is None
    assert section_text(text, structure, ("序 言",)).startswith(
        "“十二五”时期,江阴高新技术产业开发区"
    )


def test_002_three_levels() -> None:
    text = read_document("002")
    structure = parse_structure(text)
    top = texts(structure.headings, level=1)
    assert top[:2] == ["序 言", "一、发展基础"]
    assert top[-1] == "八、确保规划的全面实施"
    assert len(top) == 9
    path = ("一、发展基础", "(一)取得的主要成就", "1、经济快速增长")
    assert section_text(text, structure, path).startswith("1、经济快速增长。面对国际金融危机")
    assert ("一、发展基础", "(二)发展中存在的突出问题") in section_paths(structure)


def test_002_indicator_table_groups_are_not_headings() -> None:
    text = read_document("002")
    structure = parse_structure(text)
    headings = texts(structure.headings)
    for label in ("一、总量与结构", "四、产业发展与外向型经济", "五、人民生活与社会保障"):
        assert label not in headings
    goals = ("三、“十三五”期间发展的指导思想、基本定位与发展目标", "(四)主要发展目标")
    body = section_text(text, structure, goals)
    assert "一、总量与结构" in body and "30 亿元GDP安全生产事故死亡率" in body
    assert "四、全面实施创新驱动发展战略与构建具有区域特色的产业集群" in headings


# --- 003 港闸 annual plan: four 一、 headings ending in 。, 一是 paragraphs ---


def test_003_headings() -> None:
    text = read_document("003")
    structure = parse_structure(text)
    assert texts(structure.headings) == [
        "一、 突出创新引领,在加快转型升级上持续发力。",
        "二、 坚持项目支撑,在壮大实体经济上持续发力。",
        "三、 强化用户思维,在优化营商环境上持续发力。",
        "四、 聚焦民生关切,在提升城市品质上持续发力。",
    ]
    assert section_text(text, structure, ()).startswith("港闸经济开发区2022年度工作计划\n今年是")
    body = section_text(text, structure, ("二、 坚持项目支撑,在壮大实体经济上持续发力。",))
    assert "一是更大力度招引重大项目。" in body and "三是更高质量打造企业旗舰。" in body


# --- 004 海门 news article: no numbered headings, subtitle lines, bylines ---


def test_004_falls_back_to_subtitles() -> None:
    text = read_document("004")
    structure = parse_structure(text)
    assert texts(structure.headings) == [
        "聚焦科技赋能 催生创新驱动的强劲动力",
        "聚焦实业振兴 增强现代产业的硬核支撑",
        "聚焦开发开放 形成融通四海的生动局面",
        "聚焦城乡提质 建设宜居宜业的幸福家园",
        "聚焦生态建设 绘就绿色怡人的秀美画卷",
        "聚焦民生关切 创造富足安康的美好生活",
    ]
    # The paragraph broken mid-word after a subtitle is body, not a title.
    body = section_text(text, structure, ("聚焦生态建设 绘就绿色怡人的秀美画卷",))
    assert body.startswith("良好生态环境是人民对美好生\n\n活的向往。")
    # The banner lines before the first paragraph stay in the root section.
    assert section_text(text, structure, ()).startswith("未来五年\n\n重点\n\n奋进赶考路 当好领跑者")


def test_004_bylines_and_photo_credits_are_dropped() -> None:
    text = read_document("004")
    structure = parse_structure(text)
    for line in (
        "本报记者 陈静",
        "本报通讯员 俞新美",
        "叠石桥家纺城三期 陆冰摄",
        "生态临江 陆冰摄",
    ):
        assert dropped_reason_at(structure, text.index(line)) == "byline"
