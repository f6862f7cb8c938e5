"""The on-disk index: round trip, atomic versions, and refusal of damaged or mismatched indexes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.builder import build_index
from planqa.index.search import HybridSearcher
from planqa.index.store import CURRENT_FILE, IndexStore


def current_dir(settings: Settings) -> Path:
    return IndexStore(settings.resolved_index_dir).current_version_dir()[0]


def test_round_trip_keeps_chunks_documents_and_vectors(
    hash_settings: Settings, corpus_dir: Path
) -> None:
    report = build_index(hash_settings, [corpus_dir], progress=False)
    assert report.documents == 5 and report.chunks > 100 and report.embedded == report.chunks
    contents = IndexStore(hash_settings.resolved_index_dir).load()
    assert len(contents.chunks) == report.chunks == contents.vectors.size
    for chunk in contents.chunks:
        assert contents.documents[chunk.doc].text[chunk.start : chunk.end] == chunk.text
    manifest = contents.manifest
    assert manifest["embedding"]["model"] == "hash"
    assert manifest["dimension"] == 256
    assert manifest["chunking"]["max_chars"] == hash_settings.chunk_max_chars
    assert {d["file"] for d in manifest["documents"]} == set(contents.documents)
    assert all(len(d["sha256"]) == 64 for d in manifest["documents"])
    raw = (current_dir(hash_settings) / "manifest.json").read_text(encoding="utf-8")
    assert "南通市经济技术开发区" in raw  # written with ensure_ascii=False


def test_unchanged_corpus_is_not_rebuilt(hash_settings: Settings, corpus_dir: Path) -> None:
    build_index(hash_settings, [corpus_dir], progress=False)
    before = current_dir(hash_settings)
    again = build_index(hash_settings, [corpus_dir], progress=False)
    assert again.up_to_date and again.embedded == 0
    assert current_dir(hash_settings) == before


def test_update_embeds_only_new_chunks_and_equals_full_rebuild(
    tmp_path: Path, corpus_dir: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for path in sorted(corpus_dir.glob("00[0-3]*.txt")):
        shutil.copy(path, docs / path.name)
    shutil.copy(corpus_dir / "manifest.json", docs / "manifest.json")
    settings = Settings(embedding_model="hash", index_dir=tmp_path / "inc")
    build_index(settings, [docs], progress=False)
    shutil.copy(corpus_dir / "004_99a6b245d6293f07.txt", docs)
    (docs / "003_7f17e41e8ac2efc3.txt").unlink()
    update = build_index(settings, [docs], progress=False)
    assert update.added == ["004_99a6b245d6293f07.txt"]
    assert update.removed == ["003_7f17e41e8ac2efc3.txt"]
    assert 0 < update.embedded < update.chunks and update.reused == update.chunks - update.embedded

    full_settings = Settings(embedding_model="hash", index_dir=tmp_path / "full")
    build_index(full_settings, [docs], progress=False)
    incremental = IndexStore(settings.resolved_index_dir).load()
    full = IndexStore(full_settings.resolved_index_dir).load()
    # An update keeps surviving chunks in their old rows and appends new ones, so compare by id.
    assert sorted(incremental.chunks, key=lambda c: c.id) == sorted(full.chunks, key=lambda c: c.id)
    ids = [c.id for c in full.chunks]
    np.testing.assert_allclose(
        incremental.vectors.get_vectors(ids), full.vectors.get_vectors(ids), atol=1e-6
    )
    query = ["南通", "集成电路"]
    scores = incremental.bm25.scores(query)
    by_id = dict(zip([c.id for c in incremental.chunks], scores, strict=True))
    np.testing.assert_allclose([by_id[i] for i in ids], full.bm25.scores(query), rtol=1e-5)


def test_only_the_current_version_is_kept(hash_settings: Settings, corpus_dir: Path) -> None:
    build_index(hash_settings, [corpus_dir], progress=False)
    build_index(hash_settings, [corpus_dir], rebuild=True, progress=False)
    versions = list(hash_settings.resolved_index_dir.glob("v-*"))
    assert versions == [current_dir(hash_settings)]


def test_missing_index_says_how_to_build(hash_settings: Settings) -> None:
    with pytest.raises(IndexStoreError, match="planqa index"):
        HybridSearcher.open(hash_settings)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate_faiss", "truncated|damaged"),
        ("edit_manifest", "edited or damaged"),
        ("drop_chunk_line", "bytes|hash"),
        ("delete_bm25", "missing"),
        ("garble_current", "damaged"),
    ],
)
def test_damaged_index_is_refused_with_the_fix(
    hash_settings: Settings, corpus_dir: Path, damage: str, message: str
) -> None:
    build_index(hash_settings, [corpus_dir], progress=False)
    version = current_dir(hash_settings)
    if damage == "truncate_faiss":
        path = version / "vectors.faiss"
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "edit_manifest":
        path = version / "manifest.json"
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["dimension"] = 384
        path.write_text(json.dumps(manifest), encoding="utf-8")
    elif damage == "drop_chunk_line":
        path = version / "chunks" / "000001.jsonl"
        path.write_text(
            "".join(path.read_text(encoding="utf-8").splitlines(True)[1:]), encoding="utf-8"
        )
    elif damage == "delete_bm25":
        shutil.rmtree(version / "bm25")
    else:
        (hash_settings.resolved_index_dir / CURRENT_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(IndexStoreError, match=message) as error:
        HybridSearcher.open(hash_settings)
    assert "planqa index --rebuild" in str(error.value)
    # A damaged index is replaced by the next build instead of blocking it.
    assert build_index(hash_settings, [corpus_dir], progress=False).chunks > 0
    HybridSearcher.open(hash_settings)


def test_index_built_with_another_model_is_refused(
    hash_settings: Settings, corpus_dir: Path
) -> None:
    build_index(hash_settings, [corpus_dir], progress=False)
    other = Settings(embedding_model="hash:128", index_dir=hash_settings.index_dir)
    with pytest.raises(IndexStoreError, match=r"embedding\.model.*'hash'.*--rebuild"):
        HybridSearcher.open(other)


def test_index_built_with_other_chunking_is_refused(
    hash_settings: Settings, corpus_dir: Path
) -> None:
    build_index(hash_settings, [corpus_dir], progress=False)
    other = Settings(embedding_model="hash", index_dir=hash_settings.index_dir, chunk_max_chars=300)
    with pytest.raises(IndexStoreError, match=r"chunking\.max_chars"):
        HybridSearcher.open(other)
