"""Metadata edits of the corpus manifest (corpus/manifest_edits.py): checked before anything is
written, written atomically, nothing else in the manifest lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planqa.corpus.documents import DocumentMeta
from planqa.corpus.errors import DocumentError, InputError
from planqa.corpus.manifest_edits import (
    checked_edit,
    edited_meta,
    manifest_entry,
    remove_entry,
    restore,
    write_entry,
)
from planqa.corpus.metadata import load_manifest


def test_an_edit_is_checked_and_cleaned() -> None:
    edit = checked_edit(
        {"region": " 海州区\u202e ", "aliases": "海州、 海州区，海州", "kind": "报告"}
    )
    assert edit == {"region": "海州区", "aliases": ("海州", "海州区"), "kind": "报告"}
    assert checked_edit({"aliases": ["甲", "", "乙"]})["aliases"] == ("甲", "乙")
    for bad, words in (
        ({}, "JSON object"),
        ([], "JSON object"),
        ({"file": "x.txt"}, "editable fields"),
        ({"region": 3}, "must be a string"),
        ({"region": "  "}, "cannot be empty"),
        ({"title": "长" * 201}, "longer than 200"),
        ({"aliases": [1]}, "list of strings"),
        ({"aliases": [f"区{i}" for i in range(21)]}, "at most 20"),
        ({"scope": "planet"}, "'scope' must be one of"),
    ):
        with pytest.raises(InputError, match=words):
            checked_edit(bad)


def test_edited_meta_is_no_longer_inferred() -> None:
    meta = DocumentMeta(file="a.txt", region="甲", title="t", inferred=True, uncertain=("region",))
    edited = edited_meta(meta, {"region": "乙", "aliases": ("乙区",)})
    assert (edited.region, edited.aliases, edited.inferred, edited.uncertain) == (
        "乙",
        ("乙区",),
        False,
        (),
    )
    assert manifest_entry(edited) == {
        "file": "a.txt",
        "region": "乙",
        "aliases": ["乙区"],
        "title": "t",
    }


def test_write_keeps_other_entries_and_unknown_keys(tmp_path: Path) -> None:
    manifest = {
        "version": 1,
        "note": "ours",
        "documents": [
            {"file": "a.txt", "region": "甲", "title": "A", "remark": "keep me"},
            {"file": "b.txt", "region": "乙", "title": "B"},
        ],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
    before = write_entry(tmp_path, {"file": "a.txt", "region": "丙"})
    written = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    assert written["note"] == "ours" and written["documents"][1] == manifest["documents"][1]
    assert written["documents"][0] == {"file": "a.txt", "region": "丙", "remark": "keep me"}
    assert load_manifest(tmp_path)["a.txt"].region == "丙"
    write_entry(tmp_path, {"file": "c.txt", "region": "丁"})
    assert set(load_manifest(tmp_path)) == {"a.txt", "b.txt", "c.txt"}
    assert remove_entry(tmp_path, "c.txt") is not None and remove_entry(tmp_path, "c.txt") is None
    restore(tmp_path, before)
    assert json.loads((tmp_path / "manifest.json").read_text("utf-8")) == manifest
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temporary left


def test_a_new_manifest_and_a_bare_list(tmp_path: Path) -> None:
    assert write_entry(tmp_path, {"file": "a.txt", "region": "甲"}) is None
    assert load_manifest(tmp_path)["a.txt"].region == "甲"
    restore(tmp_path, None)
    assert not (tmp_path / "manifest.json").exists()
    (tmp_path / "manifest.json").write_text('[{"file": "b.txt", "region": "乙"}]', "utf-8")
    write_entry(tmp_path, {"file": "a.txt", "region": "甲"})
    assert isinstance(json.loads((tmp_path / "manifest.json").read_text("utf-8")), list)


def test_a_broken_manifest_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json", "utf-8")
    with pytest.raises(DocumentError, match="not a valid corpus manifest"):
        write_entry(tmp_path, {"file": "a.txt", "region": "甲"})
    assert (tmp_path / "manifest.json").read_text("utf-8") == "{not json"
