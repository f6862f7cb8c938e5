"""Metadata inference outside the manifest: the nine real documents and texts of our own."""

from __future__ import annotations

from pathlib import Path

import pytest

from planqa.corpus.inference import infer_meta
from planqa.corpus.settings import BUNDLED_CORPUS_DIR

MORE_DOCS = Path(__file__).resolve().parents[2] / "shared" / "more-docs"

#: file → (region, kind, period) a reader of the document's first page would write down.
EXPECTED = {
    "000_7b8cb340e9bca2f6.txt": ("南通市经济技术开发区", "五年规划纲要", "2021—2025"),
    "001_609138391ce5f9ab.txt": ("连云港市海州区", "五年规划纲要", "2021—2025"),
    "002_9687ff92bf81c162.txt": ("江阴高新技术产业开发区", "五年规划纲要", "2016—2020"),
    "003_7f17e41e8ac2efc3.txt": ("港闸经济开发区", "年度工作计划", "2022"),
    "004_99a6b245d6293f07.txt": ("南通市海门区", "党代会报告", ""),
    "ext_guangdong_2026_gwr.txt": ("广东省", "政府工作报告", "2026"),
    "ext_neimenggu_2026_gwr.txt": ("内蒙古自治区", "政府工作报告", "2026"),
    "ext_sichuan_2026_gwr.txt": ("四川省", "政府工作报告", "2026"),
    "ext_xiangcun_2018_opinion.txt": ("全国", "意见", ""),
}


def _path(name: str) -> Path:
    return (BUNDLED_CORPUS_DIR if name[0].isdigit() else MORE_DOCS) / name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_documents_get_region_kind_and_period(name: str) -> None:
    path = _path(name)
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    meta = infer_meta(name, path.read_text(encoding="utf-8"))
    region, kind, period = EXPECTED[name]
    assert (meta.region, meta.kind, meta.period) == (region, kind, period)
    assert "region" not in meta.uncertain
    if not period:
        assert "period" in meta.uncertain


def test_provinces_get_short_name_aliases_and_national_documents_a_scope() -> None:
    opening = "政府工作报告\n——2026年1月20日在江西省第十四届人民代表大会上\n正文"
    province = infer_meta("a.txt", opening)
    assert province.region == "江西省" and "江西" in province.aliases
    assert province.scope == "province" and province.date == "2026-01-20"
    assert province.issuer == "江西省人民政府"
    national = infer_meta("b.txt", "国务院关于加快建设全国统一大市场的意见\n各省、自治区：")
    assert (national.region, national.scope, national.issuer) == ("全国", "national", "国务院")


def test_same_named_districts_are_told_apart_by_their_city() -> None:
    liaoning = infer_meta("c.txt", "阜新市海州区2023年工作计划\n正文")
    jiangsu = infer_meta("d.txt", "海州区2023年工作计划\n连云港市海州区人民政府")
    assert liaoning.region == "阜新市海州区" and jiangsu.region == "连云港市海州区"


def test_ordinary_words_ending_in_qu_are_not_regions() -> None:
    meta = infer_meta("e.txt", "实现地区协调发展的意见\n展示湾区形象，推动城区更新。")
    assert "region" in meta.uncertain and meta.region == "e"


def test_a_report_looking_back_on_a_five_year_plan_is_not_that_plan() -> None:
    text = "2026年某省政府工作报告\n“十四五”时期工作回顾\n第十四个五年规划圆满完成。"
    assert infer_meta("f.txt", text).period == "2026"


def test_a_passing_mention_in_a_sentence_does_not_make_the_region() -> None:
    text = "某某区关于产业园建设的通知\n一、总体要求\n产业园位于北京，规划面积3平方公里。"
    meta = infer_meta("g.txt", text)
    assert "region" in meta.uncertain and meta.region == "g"
