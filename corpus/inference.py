"""Metadata for a document outside the manifest: title, region, kind, period, date, issuer.

Read from the places a government document states them — the title line (or the 《…》 of a
「关于印发《…》的通知」), the subtitle 「——2026年1月26日在广东省…会议上」, the 发布机构 line and the
opening paragraphs — with places looked up in the gazetteer, never guessed from a regex. Web-page
furniture (下载, 打印, 【字号…】, 来源 lines) is skipped. A field the text does not settle is
named in ``DocumentMeta.uncertain`` so the user sees it and can fix it in the manifest;
national documents (中共中央, 国务院…) get the national scope instead of a region.

Metadata the file format carries (:class:`~corpus.extracted.FileHints`: a PDF's info title, a
.docx's core properties, a web page's <title> and PubDate) is used where the text settles
nothing: a title the text has no title line for, a date the opening does not state, an issuer
from the author field. The text wins where it speaks, since converters often write a file name
or "Microsoft Word - 文档1" as the title.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from planqa.corpus.documents import DocumentMeta
from planqa.corpus.extracted import FileHints
from planqa.corpus.gazetteer import ZONE_SUFFIXES, Division, Gazetteer, gazetteer, zone_aliases

NATIONAL = "全国"
_HEAD_CHARS = 1500
_TITLE_LINES = 40
_FURNITURE = re.compile(
    r"^(【|来源|时间|发布|分享|当前位置|首页|信息索引|文件编号|公开|有效期|主题|字体|字号|打印|下载|"
    r"全屏|收藏|加大|还原|减小|大$|中$|小$|】)"
)
_TITLE_MARKERS = re.compile(r"规划|纲要|报告|计划|意见|通知|决定|方案|工作要点|重点工作")
_QUOTED_TITLE = re.compile(r"《([^《》]{6,80})》")
_KINDS = (
    ("政府工作报告", "政府工作报告"),
    ("五年规划", "五年规划纲要"),
    ("五规划", "五年规划纲要"),
    ("规划纲要", "五年规划纲要"),
    ("工作计划", "年度工作计划"),
    ("工作要点", "年度工作计划"),
    ("党代会", "党代会报告"),
    ("代表大会报告", "党代会报告"),
    ("意见", "意见"),
    ("规划", "规划"),
    ("报告", "报告"),
)
_NATIONAL_ISSUER = re.compile(
    r"^(中共中央|国务院|全国人民代表大会|全国人大|中华人民共和国|国家[\u4e00-\u9fff]{1,12}(委员会|部|局|署))"
)
_YEAR_RANGE = re.compile(r"(20\d{2})\s*[—–\-~至]\s*(20\d{2})")
_FIVE_YEAR_PLAN = {"十三": "2016—2020", "十四": "2021—2025", "十五": "2026—2030"}
_DELIVERED = re.compile(r"(20\d{2})年(\d{1,2})月(\d{1,2})日[^\n]{0,3}在")
_DATE = re.compile(r"(20\d{2})(?:[-/.]|年)(\d{1,2})(?:[-/.]|月)(\d{1,2})")
_YEAR = re.compile(r"(20\d{2})\s*年")
_ISSUER_LINE = re.compile(r"发布机构\s*[:：]?\s*([\u4e00-\u9fff]{4,30})")
_ISSUER_OF_TITLE = re.compile(r"^([\u4e00-\u9fff ]{2,30}?)关于")


def infer_meta(file: str, text: str, hints: FileHints | None = None) -> DocumentMeta:
    """Best-effort metadata from the document itself, flagged ``inferred``; ``hints`` (what
    the file format states) fill the fields the text leaves open."""
    hints = hints or FileHints()
    head = text[:_HEAD_CHARS]
    uncertain: list[str] = []
    title = find_title(head)
    hinted = _hinted_title(hints.title)
    if not title and hinted:
        title = hinted
        head = f"{hinted}\n{head}"  # the region, kind and period are read from the title too
    if not title:
        lines = [line.strip() for line in head.splitlines()]
        title = next((line for line in lines if _is_title_shaped(line)), Path(file).stem)
        uncertain.append("title")
    region, aliases, scope = infer_region(title, head, gazetteer())
    if scope == "uncertain" or not region:
        uncertain.append("region")
        scope = ""
    region = region or Path(file).stem
    kind = infer_kind(title, head)
    if not kind:
        uncertain.append("kind")
    date = infer_date(head) or hints.date
    period = infer_period(title, head, kind, date)
    if not period:
        uncertain.append("period")
    return DocumentMeta(
        file=file,
        region=region,
        title=title,
        aliases=aliases,
        kind=kind,
        period=period,
        date=date,
        # the text's own statement, then the format's author, then the report's default
        issuer=infer_issuer(title, head, region, "")
        or _hinted_issuer(hints.author)
        or infer_issuer(title, head, region, kind),
        inferred=True,
        scope=scope,
        uncertain=tuple(uncertain),
    )


def _hinted_title(title: str) -> str:
    """A format's title when it reads as a document title (not 「Microsoft Word - x.doc」)."""
    title = re.sub(r"^Microsoft Word\s*-\s*", "", title.strip())
    if re.search(r"\.(docx?|wps|pdf)$", title, re.I) or not _TITLE_MARKERS.search(title):
        return ""
    return title if _is_title_shaped(title) else ""


def _hinted_issuer(author: str) -> str:
    """An author field naming an organ (政府, 委员会, 办公室…), not a person or a login."""
    author = author.strip()
    return author if re.search(r"(政府|委员会|办公室|办公厅|局|厅|部|院)$", author) else ""


def find_title(head: str) -> str:
    """The first line that reads as a document title; 「关于印发《X》的通知」 gives X."""
    lines = [line.strip() for line in head.splitlines() if line.strip()][:_TITLE_LINES]
    for line in lines:
        quoted = _QUOTED_TITLE.search(line)
        if line.startswith("关于印发") and quoted and _TITLE_MARKERS.search(quoted.group(1)):
            return quoted.group(1)
        if _is_title_shaped(line) and _TITLE_MARKERS.search(line):
            return line
    return ""


def _is_title_shaped(line: str) -> bool:
    """Titles are short and are not sentences: no 。，, no trailing dash."""
    return (
        4 <= len(line) <= 80
        and not _is_furniture(line)
        and not any(mark in line for mark in "。，,")
        and not line.endswith("—")
    )


def _is_furniture(line: str) -> bool:
    return bool(_FURNITURE.match(line)) or len(line) <= 2


def infer_region(title: str, head: str, places: Gazetteer) -> tuple[str, tuple[str, ...], str]:
    """(region, aliases, scope). The title decides when it names a place (its most specific one);
    otherwise the place the opening names most often. Scope is the level, ``national``, or
    ``uncertain`` when the text leaves a choice open."""
    zones = _zones(head, places)
    title_zones = [zone for zone in zones if zone[0] in title]
    if title_zones:
        return _zone_region(title_zones[0], zones)
    title_mentions = places.mentions(title)
    if not title_mentions and _NATIONAL_ISSUER.match(title):
        return NATIONAL, (), "national"
    context = [division for _, _, candidates in places.mentions(head) for division in candidates]
    if title_mentions:
        chosen = [_resolve(written, options, context) for _, written, options in title_mentions]
        written, division, sure = max(chosen, key=lambda item: _LEVEL_RANK[item[1].level])
        return _division_region(written, division, places, sure)
    counts: Counter[tuple[str, str]] = Counter()
    written_of: dict[str, str] = {}
    certain: dict[str, bool] = {}
    # A place in a title-shaped line (「——…在广东省…会议上」) counts twice, one in a sentence once;
    # a single passing mention (「…位于北京」) does not make a document that place's.
    for line in head.splitlines():
        weight = 2 if _is_title_shaped(line.strip()) else 1
        for _, written, candidates in places.mentions(line):
            _, division, sure = _resolve(written, candidates, context)
            counts[(division.code, written)] += weight
            written_of.setdefault(division.code, written)
            certain[division.code] = sure
    if not counts or max(counts.values()) < 2:
        return "", (), ""
    by_division = Counter()
    for (code, _), count in counts.items():
        by_division[code] += count
    ranked = by_division.most_common()
    code, count = ranked[0]
    clear = len(ranked) == 1 or count >= 2 * ranked[1][1]
    return _division_region(written_of[code], places.by_code[code], places, certain[code] and clear)


_LEVEL_RANK = {"province": 0, "prefecture": 1, "county": 2}


def _resolve(
    written: str, candidates: list[Division], context: list[Division]
) -> tuple[str, Division, bool]:
    """Pick among same-named divisions by the others the text names (连云港市 beside 海州区)."""
    if len(candidates) == 1:
        return written, candidates[0], True
    for candidate in candidates:
        if any(other.code != candidate.code and candidate.is_within(other) for other in context):
            return written, candidate, True
    return written, candidates[0], False


def _division_region(
    written: str, division: Division, places: Gazetteer, sure: bool
) -> tuple[str, tuple[str, ...], str]:
    """A district or county is named with its city (南通市海门区), as written (海门区, though the
    data still says 海门市); a county-level city (江阴市), provinces and cities by their names."""
    name = division.name
    aliases = [division.name, written, division.short]
    if division.level == "county" and written.endswith("市"):
        name, aliases = written, [division.short]
    elif division.level == "county":
        city = places.by_code.get(division.code[:4] + "00") or places.by_code.get(
            division.code[:2] + "0000"
        )
        name = (city.name if city else "") + written
        aliases = [written, division.short]
        if written != division.name:
            aliases.append(division.name)
    aliases = [alias for alias in dict.fromkeys(aliases) if alias != name and len(alias) >= 2]
    return name, tuple(aliases), division.level if sure else "uncertain"


def _zones(head: str, places: Gazetteer) -> list[tuple[str, str]]:
    """Development zones named in ``head``: (zone name, the place it is named after)."""
    suffixes = "|".join(map(re.escape, ZONE_SUFFIXES))
    found = []
    for name in _place_names(places):
        if name not in head:
            continue
        for match in re.finditer(re.escape(name) + f"(?:市)?(?:{suffixes})", head):
            found.append((match.group(0), name))
    return found


def _place_names(places: Gazetteer) -> set[str]:
    names = set()
    for division in places.divisions:
        if division.level != "province" and len(division.name) >= 3:
            names.add(division.name)
            names.add(division.short)
    return names


def _zone_region(
    zone: tuple[str, str], zones: list[tuple[str, str]]
) -> tuple[str, tuple[str, ...], str]:
    """The longest spelling of the zone in the opening wins
    (江阴高新区 → 江阴高新技术产业开发区)."""
    name, place = zone
    family = [other for other, other_place in zones if place in other_place or other_place in place]
    same_kind = [other for other in family if _zone_key(other) == _zone_key(name)]
    longest = max([name, *same_kind], key=len)
    aliases = {alias for spelling in [name, *same_kind] for alias in zone_aliases(spelling)}
    aliases.discard(longest)
    return longest, tuple(sorted(aliases, key=len, reverse=True)), "zone"


def _zone_key(name: str) -> str:
    """高新区 and 高新技术产业开发区 are one kind of zone; 经开区 and 经济技术开发区 another."""
    if "高新" in name:
        return "high-tech"
    if "经济" in name or "经开" in name:
        return "economic"
    return name


def infer_kind(title: str, head: str) -> str:
    for text in (title, head):
        for marker, kind in _KINDS:
            if marker in text:
                return kind
    return ""


def infer_date(head: str) -> str:
    """The day it was delivered (「2026年2月4日在…会议上」), else the first full date,
    else a year."""
    match = _DELIVERED.search(head) or _DATE.search(head)
    if match:
        year, month, day = match.groups()
        if 1 <= int(month) <= 12 and 1 <= int(day) <= 31:
            return f"{year}-{int(month):02d}-{int(day):02d}"
    year = _YEAR.search(head)
    return year.group(1) if year else ""


def infer_period(title: str, head: str, kind: str, date: str) -> str:
    """A plan covers its range (the title's 2016—2020 or its 第十四个五年); a report or a yearly
    plan covers its year. A report that looks back on 十四五 is not a 十四五 document."""
    span = _YEAR_RANGE.search(title)
    if span:
        return f"{span.group(1)}—{span.group(2)}"
    for ordinal, period in _FIVE_YEAR_PLAN.items():
        if f"第{ordinal}个五年" in title or f"{ordinal}五" in title:
            return period
    year = _YEAR.search(title)
    if year:
        return year.group(1)
    if kind in ("政府工作报告", "年度工作计划") and date:
        return date[:4]
    if kind == "五年规划纲要":
        for ordinal, period in _FIVE_YEAR_PLAN.items():
            if f"第{ordinal}个五年" in head:
                return period
    return ""


def infer_issuer(title: str, head: str, region: str, kind: str) -> str:
    """「X关于…」 names X; a 发布机构 line names the issuer; a government report is the region's
    people's government's."""
    match = _ISSUER_OF_TITLE.match(title)
    if match:
        return match.group(1).strip()
    line = _ISSUER_LINE.search(head)
    if line:
        return line.group(1)
    if kind == "政府工作报告" and region and region != NATIONAL:
        return region + "人民政府"
    return ""
