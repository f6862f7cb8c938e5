"""China's administrative divisions, for finding which place a document is about.

A regex over the text cannot tell 「广东省」 from 「展示湾区」 or 「实现地区」: any Han run
ending in 区 looks like a region. The gazetteer knows the ~3,500 real province, prefecture and
county names (data file ``data/divisions.tsv``, source in its header), their short forms
(广东省 ↔ 广东, 内蒙古自治区 ↔ 内蒙古, 海州区 ↔ 海州) and their parents, so a mention is a real
place or nothing, and 海州区 of 连云港市 is told apart from 海州区 of 阜新市 by the city named
beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).with_name("data") / "divisions.tsv"

#: Longest first, so 广西壮族自治区 loses 壮族自治区, not just 区.
_SUFFIXES = (
    "特别行政区",
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "自治区",
    "自治州",
    "自治县",
    "自治旗",
    "林区",
    "特区",
    "地区",
    "新区",
    "省",
    "市",
    "盟",
    "县",
    "区",
    "旗",
)
#: Suffixes a county-level short name may be written with (海门市 became 海门区 in 2020).
COUNTY_SUFFIXES = ("市", "区", "县")
#: Development zones: named after the place they sit in, with one of these endings.
ZONE_SUFFIXES = (
    "经济技术开发区",
    "高新技术产业开发区",
    "高新技术开发区",
    "经济开发区",
    "经开区",
    "高新区",
    "开发区",
    "工业园区",
    "产业园区",
    "园区",
    "新区",
    "综合保税区",
)
#: Spoken short forms of zone endings, for the aliases a question may use.
_ZONE_SHORT_FORMS = {
    "经济技术开发区": ("经开区", "开发区"),
    "高新技术产业开发区": ("高新区",),
    "高新技术开发区": ("高新区",),
    "经济开发区": ("经开区", "开发区"),
}
LEVELS = ("province", "prefecture", "county")


@dataclass(frozen=True)
class Division:
    code: str
    name: str

    @property
    def level(self) -> str:
        if self.code[2:] == "0000":
            return "province"
        return "prefecture" if self.code[4:] == "00" else "county"

    @property
    def short(self) -> str:
        return short_name(self.name)

    @property
    def parent_code(self) -> str:
        if self.level == "county":
            return self.code[:4] + "00"
        return self.code[:2] + "0000" if self.level == "prefecture" else ""

    def is_within(self, other: Division) -> bool:
        """True when ``other`` is this division or one of its ancestors."""
        prefix = {"province": 2, "prefecture": 4, "county": 6}[other.level]
        return self.code[:prefix] == other.code[:prefix]


def short_name(name: str) -> str:
    """广东省 → 广东, 内蒙古自治区 → 内蒙古, 海州区 → 海州; names that would shrink to one
    character (城区, 沙市) keep their suffix, because one character is no name."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def zone_aliases(name: str) -> tuple[str, ...]:
    """江阴高新技术产业开发区 → 江阴高新区;
    南通市经济技术开发区 → 南通经济技术开发区, 南通经开区…"""
    names = [name]
    for suffix in ZONE_SUFFIXES:
        if name.endswith(suffix):
            place = name[: -len(suffix)]
            bases = [place]
            shorter = short_name(place)
            if shorter != place:
                bases.append(shorter)
            for base in bases:
                names.append(base + suffix)
                names.extend(base + form for form in _ZONE_SHORT_FORMS.get(suffix, ()))
            break
    return tuple(dict.fromkeys(names))


class Gazetteer:
    """Name lookups over the divisions; one instance per process (see :func:`gazetteer`)."""

    def __init__(self, divisions: list[Division]) -> None:
        self.divisions = divisions
        self.by_code = {division.code: division for division in divisions}
        self._by_written: dict[str, list[Division]] = {}
        # Two-character names (城区, 郊区, 矿区) are ordinary words far more often than places.
        for division in (division for division in divisions if len(division.name) > 2):
            for written in self._written_forms(division):
                self._by_written.setdefault(written, []).append(division)
        names = sorted(self._by_written, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, names)))
        self._by_short: dict[str, list[Division]] = {}
        for division in divisions:
            if division.level != "province":
                self._by_short.setdefault(division.short, []).append(division)

    @staticmethod
    def _written_forms(division: Division) -> set[str]:
        """How a text names the division: in full, or (counties, prefectures) by short name with
        any county suffix. A bare short name counts only for provinces (广东, 四川), whose short
        names are never ordinary words; a bare 和平 or 新华 must not become a district."""
        forms = {division.name}
        short = division.short
        if short == division.name:
            return forms
        if division.level == "province":
            forms.add(short)
        else:
            forms.update(short + suffix for suffix in COUNTY_SUFFIXES)
        return forms

    def mentions(self, text: str) -> list[tuple[int, str, list[Division]]]:
        """Every division name in ``text``: (offset, the words written, the candidates)."""
        return [
            (match.start(), match.group(0), self._by_written[match.group(0)])
            for match in self._pattern.finditer(text)
        ]

    def cities_and_counties(self, short: str) -> list[Division]:
        """The prefectures and counties whose short name is ``short`` (苏州 → 苏州市): how a zone
        names its city (苏州工业园区)."""
        return self._by_short.get(short, [])

    def parent(self, division: Division) -> Division | None:
        return self.by_code.get(division.parent_code) if division.parent_code else None


@cache
def gazetteer() -> Gazetteer:
    divisions = []
    for line in DATA_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            code, name = line.split("\t")
            divisions.append(Division(code, name))
    return Gazetteer(divisions)
