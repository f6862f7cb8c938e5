"""Page furniture: the lines of a document that are not its content.

Tables of contents (a 目录 block, or a run of page-numbered heading lines), web-page
headers (breadcrumbs, 来源/发布时间 lines, 政府信息公开 metadata), page chrome (收藏/打印/关闭),
page numbers and bylines. The structure parser drops them before it reads headings, so that
no section and no chunk contains them; each dropped span keeps its reason for the document
view.
"""

from __future__ import annotations

import re

from planqa.corpus.heading_forms import (
    Line,
    has_marker,
    looks_like_heading,
)

#: Front-matter metadata fields are only looked for among the first lines of a document.
FRONT_MATTER_LINES = 20
#: Page chrome, web info lines and bylines are short; a long line matching their words is prose.
MAX_CHROME_CHARS = 60
MAX_SOURCE_LINE_CHARS = 120
MAX_BYLINE_CHARS = 40

#: ``目录`` / ``目 录`` / ``目次`` on a line of its own opens a table of contents.
TOC_HEADER_RE = re.compile(r"^(?:目\s*录|目\s*次)$")
#: A TOC page number printed between dashes at the end of a line: ``-11-``, ``- 2-``, ``—3—``.
DASH_PAGE_RE = re.compile(r"\s*[-—–－]\s*\d{1,3}\s*[-—–－]$")
#: A TOC page number after dot leaders: ``……5``, ``.......12``, ``··· 7``.
LEADER_PAGE_RE = re.compile(r"\s*(?:[.．·…]{2,}|…)\s*\d{1,3}$")
#: A TOC page number after a space: ``一、发展基础 1`` (only trusted inside a TOC).
SPACE_PAGE_RE = re.compile(r"(?<=\S)\s+\d{1,3}$")
#: A line that is only a page number: ``- 12 -``, ``第3页``, ``第 3 页 共 40 页``, ``3/40``.
PAGE_ONLY_RE = re.compile(
    r"^(?:[-—–－]\s*\d{1,4}\s*[-—–－]"
    r"|第\s*\d{1,4}\s*页(?:\s*[,，/]?\s*共\s*\d{1,4}\s*页)?"
    r"|\d{1,4}\s*/\s*\d{1,4})$"
)

#: Web breadcrumb: ``当前位置: 首页 > 信息公开 > …``.
BREADCRUMB_RE = re.compile(r"^(?:当前位置|您的位置|你的位置|您现在的位置|所在位置)\s*[:：]")
#: Article info line of a web page: ``来源: … 发布时间:… 累计次数: 字体:[ ]``.
SOURCE_LINE_RE = re.compile(
    r"(?:来源|发布机构|作者)\s*[:：].*(?:发布(?:时间|日期)|(?:浏览|点击|访问|累计)次数|字体\s*[:：])"
)
#: Font-size switcher left over from a web page: ``字体:[ 大 中 小 ]``, ``【字体：大 中 小】``.
FONT_SWITCH_RE = re.compile(
    r"^[【\[]?\s*字体\s*[:：]?\s*[\[【]?\s*(?:大\s*中\s*小)?\s*[\]】]?\s*[】\]]?$"
)
#: 政府信息公开 metadata fields (``文件编号 澄高管〔2016〕11号``); a label then a space or colon.
DISCLOSURE_FIELD_RE = re.compile(
    r"^(?:信息索引号|索引号|文件编号|发文字号|发文机关|发布机构|生成日期|成文日期|发布日期|公开日期"
    r"|公开形式|公开方式|公开范围|公开时限|公开程序|有效期|主题分类|主题\s*[（(][一二]级[）)]|体裁"
    r"|效力状况|内容概述|关键词|所属机构)(?:\s|[:：])"
)
#: Page chrome at the foot of a web page: ``• 收藏``, ``【打印本页】``, ``关闭窗口``.
CHROME_RE = re.compile(
    r"^[•·\-*]?\s*[【\[]?(?:收藏|打印|关闭|打印本页|关闭窗口|返回顶部|分享到?|扫一扫在手机打开当前页)"
    r"[】\]]?$"
)
#: Reporter credit of a news article: ``本报记者 陈静``, ``本报通讯员 俞新美``.
BYLINE_RE = re.compile(
    r"^(?:本报)?(?:特约)?(?:记者|通讯员)\s*[\u4e00-\u9fff]{2,4}(?:[\s、,，]+[\u4e00-\u9fff]{2,4})*$"
)
#: Photo credit: ``叠石桥家纺城三期 陆冰摄`` — a caption, a space, a 2–4 character name, 摄.
PHOTO_CREDIT_RE = re.compile(r"^.{0,30}\s[\u4e00-\u9fff]{2,4}\s*摄$")




def dropped_lines(lines: list[Line]) -> dict[int, str]:
    """Index of each dropped line -> reason. Page furniture first, so a TOC scan never sees it."""
    reasons: dict[int, str] = {}
    reasons.update(_front_matter_lines(lines))
    for i, line in enumerate(lines):
        if i in reasons:
            continue
        reason = _furniture_reason(line.text)
        if reason:
            reasons[i] = reason
    reasons.update(_toc_lines(lines, reasons))
    return reasons


def _furniture_reason(text: str) -> str | None:
    """Reasons that hold wherever the line is: chrome, page numbers, bylines, stray TOC lines."""
    if len(text) <= MAX_CHROME_CHARS and (CHROME_RE.match(text) or FONT_SWITCH_RE.match(text)):
        return "boilerplate"
    if len(text) <= MAX_SOURCE_LINE_CHARS and SOURCE_LINE_RE.search(text):
        return "front_matter"
    if PAGE_ONLY_RE.match(text):
        return "page_number"
    if len(text) <= MAX_BYLINE_CHARS and (BYLINE_RE.match(text) or PHOTO_CREDIT_RE.match(text)):
        return "byline"
    stripped = _strip_page_number(text, trust_space=False)
    if stripped != text and has_marker(stripped) and looks_like_heading(stripped):
        return "toc"
    return None


def _front_matter_lines(lines: list[Line]) -> dict[int, str]:
    """Web-page header: everything up to a breadcrumb near the top, and disclosure metadata."""
    head = lines[:FRONT_MATTER_LINES]
    reasons: dict[int, str] = {}
    crumb = next((i for i, line in enumerate(head[:5]) if BREADCRUMB_RE.match(line.text)), None)
    if crumb is not None:
        reasons.update(dict.fromkeys(range(crumb + 1), "front_matter"))
    for i, line in enumerate(head):
        if DISCLOSURE_FIELD_RE.match(line.text):
            reasons[i] = "front_matter"
    return reasons


def _strip_page_number(text: str, *, trust_space: bool) -> str:
    """The line without a trailing TOC page number; space-separated numbers only inside a TOC."""
    patterns = [DASH_PAGE_RE, LEADER_PAGE_RE] + ([SPACE_PAGE_RE] if trust_space else [])
    for pattern in patterns:
        match = pattern.search(text)
        if match and match.start() > 0:
            return text[: match.start()].rstrip()
    return text


def _toc_key(text: str) -> str:
    """A TOC entry equals its heading in the body: no page number, spaces or paren width."""
    bare = _strip_page_number(text, trust_space=True)
    return re.sub(r"\s+", "", bare).replace("（", "(").replace("）", ")")


def _toc_lines(lines: list[Line], dropped: dict[int, str]) -> dict[int, str]:
    """Lines of each table of contents: a 目录 block, or a run of ≥3 page-numbered heading lines."""
    reasons: dict[int, str] = {}
    for i, line in enumerate(lines):
        if i in dropped or i in reasons or not TOC_HEADER_RE.match(line.text):
            continue
        last = _toc_extent(lines, i, dropped)
        if last is not None:
            reasons.update(dict.fromkeys(range(i, last + 1), "toc"))
    reasons.update(_headerless_toc_lines(lines, {**dropped, **reasons}))
    return reasons


def _toc_extent(lines: list[Line], header: int, dropped: dict[int, str]) -> int | None:
    """Index of a TOC's last line. The TOC ends where its first entry repeats (the body begins),
    else after its last page-numbered line; without either signal the 目录 line is not a TOC."""
    first_key: str | None = None
    last_paged: int | None = None
    for j in range(header + 1, len(lines)):
        if j in dropped:
            continue
        text = lines[j].text
        key = _toc_key(text)
        if first_key is None:
            first_key = key
        elif key == first_key:
            return j - 1
        if _strip_page_number(text, trust_space=True) != text:
            last_paged = j
        elif not looks_like_heading(text):
            break
    return last_paged


def _headerless_toc_lines(lines: list[Line], dropped: dict[int, str]) -> dict[int, str]:
    """A TOC without a 目录 line: three or more consecutive ``heading + page number`` lines."""
    reasons: dict[int, str] = {}
    run: list[int] = []
    for i, line in enumerate([*lines, Line(0, 0, "")]):
        stripped = _strip_page_number(line.text, trust_space=True)
        if i not in dropped and stripped != line.text and has_marker(stripped):
            run.append(i)
            continue
        if len(run) >= 3:
            reasons.update(dict.fromkeys(run, "toc"))
        run = []
    return reasons


def merge_drops(
    text: str, lines: list[Line], reasons: dict[int, str]
) -> list[tuple[int, int, str]]:
    """Adjacent dropped lines with the same reason (only whitespace between) become one span."""
    spans: list[tuple[int, int, str]] = []
    for i in sorted(reasons):
        line, reason = lines[i], reasons[i]
        if spans and spans[-1][2] == reason and not text[spans[-1][1] : line.start].strip():
            spans[-1] = (spans[-1][0], line.end, reason)
        else:
            spans.append((line.start, line.end, reason))
    return spans
