"""Segments: an update hard-links the chunk and document rows it keeps, rewrites only segments
that lost rows, and an index damaged on disk or of an older format is still refused."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import planqa.index.segments
from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.builder import add_documents, build_index
from planqa.index.search import HybridSearcher
from planqa.index.store import CURRENT_FILE, MANIFEST_FILE, IndexStore
from planqa.ui.cli import app

ROWS_PER_SEGMENT = 3
ADDED = "004_99a6b245d6293f07.txt"
REPLACED = "001_609138391ce5f9ab.txt"


@pytest.fixture(autouse=True)
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few rows per segment, so five documents already make several of each kind."""
    monkeypatch.setattr(planqa.index.segments, "SEGMENT_ROWS", ROWS_PER_SEGMENT)


@pytest.fixture
def docs(tmp_path: Path, corpus_dir: Path) -> Path:
    """Four of the five bundled documents (the fifth is the one added)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for path in sorted(corpus_dir.glob("00[0-3]*.txt")):
        shutil.copy(path, folder / path.name)
    shutil.copy(corpus_dir / "manifest.json", folder / "manifest.json")
    return folder


def settings_for(index_dir: Path) -> Settings:
    return Settings(embedding_model="hash", index_dir=index_dir)


def current(settings: Settings) -> tuple[Path, dict[str, Any]]:
    store = IndexStore(settings.resolved_index_dir)
    return store.current_version_dir()[0], store.read_manifest()


def inodes(version: Path) -> dict[str, int]:
    return {
        p.relative_to(version).as_posix(): p.stat().st_ino
        for kind in ("chunks", "documents")
        for p in (version / kind).iterdir()
    }


def segment_files(kind: str, segment: dict[str, Any]) -> list[str]:
    parts = (".jsonl", ".keys.jsonl") if kind == "chunks" else (".jsonl",)
    return [f"{kind}/{segment['name']}{part}" for part in parts]


def docs_of(version: Path, kind: str, segment: dict[str, Any]) -> set[str]:
    lines = (version / kind / f"{segment['name']}.jsonl").read_text("utf-8").splitlines()
    return {json.loads(line)["doc" if kind == "chunks" else "file"] for line in lines}


def assert_equals_full_build(settings: Settings, folder: Path, tmp_path: Path) -> None:
    full = settings_for(tmp_path / "full")
    build_index(full, [folder], progress=False)
    a = IndexStore(settings.resolved_index_dir).load()
    b = IndexStore(full.resolved_index_dir).load()
    assert {c.id: c for c in a.chunks} == {c.id: c for c in b.chunks}
    assert a.documents == b.documents
    ids = [c.id for c in b.chunks]
    np.testing.assert_allclose(a.vectors.get_vectors(ids), b.vectors.get_vectors(ids), atol=1e-6)


def assert_segments_are_consistent(manifest: dict[str, Any]) -> None:
    for kind in ("chunks", "documents"):
        rows = [s["rows"] for s in manifest["segments"][kind]]
        assert sum(rows) == manifest["counts"][kind] and all(n > 0 for n in rows)


def test_adding_a_document_links_the_segments_it_keeps(
    docs: Path, corpus_dir: Path, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path / "index")
    build_index(settings, [docs], progress=False)
    old_version, old = current(settings)
    assert all(s["rows"] == ROWS_PER_SEGMENT for s in old["segments"]["chunks"][:-1])
    before = inodes(old_version)
    shutil.copy(corpus_dir / ADDED, docs)

    report = add_documents(settings, [docs / ADDED], progress=False)
    assert report.added == [ADDED] and set(report.stages) >= {"load", "write"}
    version, new = current(settings)
    assert version != old_version and not old_version.exists()
    after = inodes(version)
    for kind in ("chunks", "documents"):
        segments = old["segments"][kind]
        full = [s for s in segments if s["rows"] == ROWS_PER_SEGMENT]
        assert full, kind
        # Every full segment is the same file (a hard link), recorded with the same hash.
        for segment in full:
            assert segment in new["segments"][kind]
            for name in segment_files(kind, segment):
                assert after[name] == before[name]
                assert new["files"][name] == old["files"][name]
        # A last segment with room took the new rows: it was rewritten under a new name.
        if segments[-1]["rows"] < ROWS_PER_SEGMENT:
            assert segments[-1] not in new["segments"][kind]
        assert all(s["rows"] == ROWS_PER_SEGMENT for s in new["segments"][kind][:-1])
    assert_segments_are_consistent(new)
    assert_equals_full_build(settings, docs, tmp_path)


def test_a_replaced_document_rewrites_only_the_segments_holding_it(
    docs: Path, corpus_dir: Path, tmp_path: Path
) -> None:
    shutil.copy(corpus_dir / ADDED, docs)
    settings = settings_for(tmp_path / "index")
    build_index(settings, [docs], progress=False)
    old_version, old = current(settings)
    before = inodes(old_version)
    holding = {
        kind: [s for s in old["segments"][kind] if REPLACED in docs_of(old_version, kind, s)]
        for kind in ("chunks", "documents")
    }

    report = add_documents(settings, [edit(docs, REPLACED)], progress=False)
    assert report.changed == [REPLACED] and 0 < report.embedded < report.chunks
    version, new = current(settings)
    after = inodes(version)
    for kind in ("chunks", "documents"):
        segments = old["segments"][kind]
        assert holding[kind] and len(holding[kind]) < len(segments)
        for segment in segments:
            takes_new_rows = segment is segments[-1] and segment["rows"] < ROWS_PER_SEGMENT
            carried = segment not in holding[kind] and not takes_new_rows
            assert (segment in new["segments"][kind]) == carried, segment
            if carried:
                assert all(after[n] == before[n] for n in segment_files(kind, segment))
    assert_segments_are_consistent(new)
    assert_equals_full_build(settings, docs, tmp_path)


def edit(docs: Path, name: str) -> Path:
    path = docs / name
    path.write_text(path.read_text("utf-8") + "\n十、补充说明\n新增测试平台一个。\n", "utf-8")
    return path


def damage(path: Path) -> None:
    """An edit in place: the same size, other bytes."""
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))


def test_damage_to_a_linked_segment_stays_visible(docs: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "index")
    build_index(settings, [docs], progress=False)
    version, manifest = current(settings)
    first = manifest["segments"]["chunks"][0]
    assert REPLACED not in docs_of(version, "chunks", first)
    rows = version / "chunks" / f"{first['name']}.jsonl"
    damage(rows)
    with pytest.raises(IndexStoreError, match=r"recorded hash.*planqa index --rebuild"):
        HybridSearcher.open(settings)

    # An update does not read the rows it keeps: it links the damaged file again under its
    # recorded hash, so the damage stays visible instead of being sealed under a new hash.
    inode = rows.stat().st_ino
    add_documents(settings, [edit(docs, REPLACED)], progress=False)
    assert (current(settings)[0] / "chunks" / rows.name).stat().st_ino == inode
    with pytest.raises(IndexStoreError, match="recorded hash"):
        HybridSearcher.open(settings)
    # `planqa index` loads in full, as a search does, so it rebuilds.
    report = build_index(settings, [docs], progress=False)
    assert "recorded hash" in report.rebuilt_because and report.embedded == report.chunks
    HybridSearcher.open(settings)


def test_an_update_never_copies_rows_out_of_a_damaged_segment(docs: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "index")
    build_index(settings, [docs], progress=False)
    version, manifest = current(settings)
    mixed = next(
        s for s in manifest["segments"]["chunks"] if len(docs_of(version, "chunks", s)) > 1
    )
    owner = sorted(docs_of(version, "chunks", mixed))[0]
    damage(version / "chunks" / f"{mixed['name']}.jsonl")
    with pytest.raises(IndexStoreError, match="recorded hash"):
        add_documents(settings, [edit(docs, owner)], progress=False)


def test_damage_to_a_keys_file_stops_an_update(docs: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "index")
    build_index(settings, [docs], progress=False)
    version, manifest = current(settings)
    damage(version / "chunks" / f"{manifest['segments']['chunks'][0]['name']}.keys.jsonl")
    with pytest.raises(IndexStoreError, match=r"recorded hash.*planqa index --rebuild"):
        add_documents(settings, [edit(docs, REPLACED)], progress=False)


def test_without_hard_links_segments_are_copied(
    docs: Path, corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: Any, target: Any) -> None:
        raise PermissionError(1, "hard links not supported")

    settings = settings_for(tmp_path / "index")
    build_index(settings, [docs], progress=False)
    before = inodes(current(settings)[0])
    monkeypatch.setattr(os, "link", no_links)
    shutil.copy(corpus_dir / ADDED, docs)
    add_documents(settings, [docs / ADDED], progress=False)
    assert not set(before.values()) & set(inodes(current(settings)[0]).values())
    assert_equals_full_build(settings, docs, tmp_path)


def reseal_as_format(index_dir: Path, number: int) -> None:
    """Turn the index into one of another format number, hashes and all (the format is checked
    before anything else is read, so a real format-2 index is refused in the same way)."""
    pointer = json.loads((index_dir / CURRENT_FILE).read_text("utf-8"))
    path = index_dir / pointer["version"] / MANIFEST_FILE
    manifest = json.loads(path.read_text("utf-8"))
    manifest["format"] = number
    data = json.dumps(manifest, ensure_ascii=False).encode()
    path.write_bytes(data)
    pointer["manifest_sha256"] = hashlib.sha256(data).hexdigest()
    (index_dir / CURRENT_FILE).write_text(json.dumps(pointer), "utf-8")


def test_a_format_2_index_is_refused_and_rebuilt_by_planqa_index(
    docs: Path, corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path / "index")
    build_index(settings, [docs], progress=False)
    reseal_as_format(settings.resolved_index_dir, 2)
    refusal = (
        r"index format 2; this planqa reads format 3; rebuild it with `planqa index --rebuild`"
    )
    with pytest.raises(IndexStoreError, match=refusal):
        HybridSearcher.open(settings)
    shutil.copy(corpus_dir / ADDED, docs)
    with pytest.raises(IndexStoreError, match=refusal):
        add_documents(settings, [docs / ADDED], progress=False)

    monkeypatch.setenv("PLANQA_EMBEDDING_MODEL", "hash")
    result = CliRunner().invoke(
        app, ["index", str(docs), "--index", str(settings.resolved_index_dir), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    assert "building the index anew" in result.stderr and "format 2" in result.stderr
    report = json.loads(result.stdout)
    assert "format 2" in report["rebuilt_because"] and report["embedded"] == report["chunks"]
    assert HybridSearcher.open(settings).contents.manifest["format"] == 3
