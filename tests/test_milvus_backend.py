"""planqa end to end on the Milvus backend (Milvus Lite): build, search, update, full text.

The same corpus indexed with FAISS and with Milvus must rank identically, since both are exact
at this size and everything else (BM25, fusion) is shared.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.builder import add_documents, build_index
from planqa.index.search import HybridSearcher
from planqa.index.store import IndexStore

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pymilvus") is None or importlib.util.find_spec("milvus_lite") is None,
    reason="pip install 'planqa[milvus]'",
)

QUESTIONS = ["集成电路产业发展目标", "港开 研究生院建设", "海州区 现代服务业"]


def milvus_settings(tmp_path: Path, index: str = "index") -> Settings:
    return Settings(
        embedding_model="hash",
        index_dir=tmp_path / index,
        vector_backend="milvus",
        milvus_uri=str(tmp_path / "milvus.db"),
        milvus_collection="planqa_test",
    )


def test_milvus_backend_ranks_like_faiss_and_updates_in_place(
    tmp_path: Path, corpus_dir: Path, hash_index_settings: Settings
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for path in sorted(corpus_dir.glob("00[0-3]*.txt")):
        shutil.copy(path, docs / path.name)
    shutil.copy(corpus_dir / "manifest.json", docs / "manifest.json")
    settings = milvus_settings(tmp_path)
    build_index(settings, [docs], progress=False)
    manifest = IndexStore(settings.resolved_index_dir).read_manifest()
    assert manifest["vector_index"]["backend"] == "milvus"
    assert manifest["vector_index"]["collection"].startswith("planqa_test_")

    # Adding one document updates the collection in place (same collection, more rows).
    report = add_documents(settings, [corpus_dir / "004_99a6b245d6293f07.txt"], progress=False)
    assert report.added == ["004_99a6b245d6293f07.txt"] and report.embedded < report.chunks
    after = IndexStore(settings.resolved_index_dir).read_manifest()
    assert after["vector_index"]["collection"] == manifest["vector_index"]["collection"]

    milvus = HybridSearcher.open(settings)
    faiss = HybridSearcher.open(hash_index_settings)
    assert milvus.contents.vectors.size == len(milvus.contents.chunks) == len(faiss.contents.chunks)
    for question in QUESTIONS:
        for mode in ("dense", "hybrid"):
            got = [h.chunk.id for h in milvus.search(question, 8, mode=mode)]
            assert got == [h.chunk.id for h in faiss.search(question, 8, mode=mode)], question
        got = [h.chunk.id for h in milvus.search(question, 5, region="海州区", mode="dense")]
        expected = [h.chunk.id for h in faiss.search(question, 5, region="海州区", mode="dense")]
        assert got == expected

    # Milvus's own full-text search (BM25 over its jieba analyzer) works on Chinese text.
    found = milvus.contents.vectors.text_search("集成电路", 5)
    assert found and all(score > 0 for _, score in found)
    rows = {c.id: c for c in milvus.contents.chunks}
    assert any("集成电路" in rows[i].text for i, _ in found)


def test_a_rebuild_drops_the_old_collection(tmp_path: Path, corpus_dir: Path) -> None:
    settings = milvus_settings(tmp_path)
    build_index(settings, [corpus_dir / "000_7b8cb340e9bca2f6.txt"], progress=False)
    first = IndexStore(settings.resolved_index_dir).read_manifest()["vector_index"]["collection"]
    build_index(settings, [corpus_dir / "000_7b8cb340e9bca2f6.txt"], rebuild=True, progress=False)
    searcher = HybridSearcher.open(settings)
    client = searcher.contents.vectors.client
    assert first not in client.list_collections()
    assert searcher.contents.vectors.collection in client.list_collections()


def test_backend_mismatch_and_missing_collection_are_refused(
    tmp_path: Path, corpus_dir: Path
) -> None:
    settings = milvus_settings(tmp_path)
    build_index(settings, [corpus_dir / "000_7b8cb340e9bca2f6.txt"], progress=False)
    with pytest.raises(IndexStoreError, match="PLANQA_VECTOR_BACKEND='milvus'"):
        HybridSearcher.open(settings.model_copy(update={"vector_backend": "faiss"}))
    searcher = HybridSearcher.open(settings)
    searcher.contents.vectors.drop()
    with pytest.raises(IndexStoreError, match=r"collection .* is missing"):
        HybridSearcher.open(settings)


def test_the_whole_hybrid_search_runs_in_milvus(tmp_path: Path, corpus_dir: Path) -> None:
    settings = milvus_settings(tmp_path)
    build_index(settings, [corpus_dir], progress=False)
    engine = HybridSearcher.open(settings.model_copy(update={"lexical_backend": "milvus"}))
    local = HybridSearcher.open(settings)
    for question in QUESTIONS:
        hits = engine.search(question, 5)
        assert len(hits) == 5 and all(h.retriever == "hybrid" for h in hits)
        # Milvus's BM25 and planqa's agree on what a plain keyword query is about.
        ours = {h.chunk.id for h in local.search(question, 10, mode="bm25")}
        assert {h.chunk.id for h in engine.search(question, 5, mode="bm25")} & ours
    # Filters become Milvus expressions: a region, and a document.
    region_hits = engine.search("产业发展", 5, region="港闸经济开发区")
    assert region_hits and {h.chunk.region for h in region_hits} == {"港闸经济开发区"}
    doc_hits = engine.search("产业发展", 5, doc="001_609138391ce5f9ab.txt")
    assert doc_hits and {h.chunk.doc for h in doc_hits} == {"001_609138391ce5f9ab.txt"}
    # A question naming a region boosts it inside the same request.
    assert engine.search("港开 研究生院建设", 3)[0].chunk.region == "港闸经济开发区"


def test_lexical_search_in_milvus_needs_milvus_vectors(hash_index_settings: Settings) -> None:
    with pytest.raises(IndexStoreError, match="PLANQA_VECTOR_BACKEND=milvus"):
        HybridSearcher.open(hash_index_settings.model_copy(update={"lexical_backend": "milvus"}))


@pytest.mark.slow  # three builds and four gold sets scored three times: ~40 s
def test_the_milvus_bench_scores_both_hybrids(tmp_path: Path) -> None:
    from bench.milvus_bench import format_table, run_milvus_bench

    settings = Settings(embedding_model="hash", cache_dir=tmp_path / "cache")
    result = run_milvus_bench(settings, more_docs=None, say=lambda _m: None)
    assert len(result["rows"]) == 3 and set(result["sets"]) == {"dev", "probes"}
    faiss, milvus_vectors, engine = result["rows"].values()
    assert faiss["recall_at_5"] == milvus_vectors["recall_at_5"]  # same vectors, same fusion
    assert all(0 < v <= 1 for v in engine["recall_at_5"].values())
    assert format_table(result).count("\n") == 4


def test_an_index_with_its_bm25_in_milvus_skips_jieba_and_is_refused_locally(
    tmp_path: Path, corpus_dir: Path
) -> None:
    settings = milvus_settings(tmp_path).model_copy(update={"lexical_backend": "milvus"})
    build_index(settings, [corpus_dir], progress=False)
    contents = IndexStore(settings.resolved_index_dir).load(settings=settings)
    assert contents.manifest.fingerprint()["vectors"]["lexical"] == "milvus"
    assert contents.bm25.scores(["产业"]).sum() == 0  # no local BM25 terms were made
    hits = HybridSearcher.open(settings).search("港开 研究生院建设", 3)
    assert hits[0].chunk.region == "港闸经济开发区"
    local = settings.model_copy(update={"lexical_backend": "local"})
    with pytest.raises(IndexStoreError, match="PLANQA_LEXICAL_BACKEND='milvus'"):
        HybridSearcher.open(local)
    build_index(local, [corpus_dir], progress=False)  # a local build makes its arrays anew
    rebuilt = IndexStore(settings.resolved_index_dir).load(settings=local)
    assert "lexical" not in rebuilt.manifest.fingerprint()["vectors"]
    assert rebuilt.bm25.scores(["产业"]).sum() > 0


def _files_holding(directory: Path, needle: str) -> list[Path]:
    """The files under ``directory`` whose bytes contain ``needle`` (as UTF-8 or JSON-escaped)."""
    forms = (needle.encode(), needle.encode("unicode_escape"))
    return [
        path
        for path in directory.rglob("*")
        if path.is_file() and any(form in path.read_bytes() for form in forms)
    ]


def test_with_the_whole_search_in_milvus_no_text_is_kept_on_local_disk(
    tmp_path: Path, corpus_dir: Path, hash_index_settings: Settings
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("000_7b8cb340e9bca2f6.txt", "001_609138391ce5f9ab.txt"):
        shutil.copy(corpus_dir / name, docs / name)
    settings = milvus_settings(tmp_path).model_copy(update={"lexical_backend": "milvus"})
    build_index(settings, [docs], progress=False)
    searcher = HybridSearcher.open(settings)
    texts = searcher.contents.vectors.texts
    assert texts is not None and texts.name == "planqa_test_texts"

    # Not one passage of either document is in the index folder, yet every chunk has its text,
    # the same as a local build makes.
    local = {c.id: c for c in HybridSearcher.open(hash_index_settings).contents.chunks}
    for chunk in searcher.contents.chunks[::7]:
        assert chunk.text == local[chunk.id].text
        assert not _files_holding(settings.resolved_index_dir, chunk.text[:20])
    hit = searcher.search("海州区 现代服务业", 3)[0]
    document = searcher.documents[hit.chunk.doc]
    assert hit.chunk.text == document.text[hit.chunk.start : hit.chunk.end]

    # A replaced document's old text stays while the version that replaced it is current (a
    # reader may still open the one before), and goes with the next change.
    edited = docs / "001_609138391ce5f9ab.txt"
    original = edited.read_text(encoding="utf-8")
    edited.write_text(original + "\n港口物流园区扩容。\n", encoding="utf-8")
    build_index(settings, [docs], progress=False)
    stored = {row["sha"] for row in texts._rows(["sha"], "part == 0")}
    assert len(stored) == 3
    (docs / "000_7b8cb340e9bca2f6.txt").unlink()
    build_index(settings, [docs], progress=False)
    updated = HybridSearcher.open(settings)
    assert set(updated.documents) == {"001_609138391ce5f9ab.txt"}
    assert updated.documents["001_609138391ce5f9ab.txt"].text.endswith("港口物流园区扩容。\n")
    stored = {row["sha"] for row in texts._rows(["sha"], "part == 0")}
    assert stored == {updated.documents["001_609138391ce5f9ab.txt"].sha256} | {
        searcher.documents["000_7b8cb340e9bca2f6.txt"].sha256
    }

    # A text altered or lost in Milvus is refused with the fix, like a damaged local file.
    sha = updated.documents["001_609138391ce5f9ab.txt"].sha256
    row = texts.client.get(texts.name, ids=[f"{sha}:0"])[0]
    texts.client.upsert(texts.name, [{**row, "text": "改" + row["text"][1:]}])
    with pytest.raises(IndexStoreError, match=r"does not match its hash.*planqa index --rebuild"):
        HybridSearcher.open(settings)
    texts.client.delete(texts.name, ids=[f"{sha}:0"])
    with pytest.raises(IndexStoreError, match="is missing"):
        HybridSearcher.open(settings)
    build_index(settings, [docs], rebuild=True, progress=False)  # the fix the message names
    assert HybridSearcher.open(settings).documents["001_609138391ce5f9ab.txt"].sha256 == sha


def test_long_texts_are_stored_in_parts() -> None:
    from planqa.index.milvus_texts import PART_CHARS, parts_of

    text = "规" * (2 * PART_CHARS + 5)
    assert [len(p) for p in parts_of(text)] == [PART_CHARS, PART_CHARS, 5]
    assert "".join(parts_of(text)) == text and parts_of("") == [""]


def test_a_fast_first_index_in_milvus_upgrades_with_its_texts_in_milvus(
    tmp_path: Path, corpus_dir: Path
) -> None:
    from planqa.index.upgrade import upgrade_index

    settings = milvus_settings(tmp_path).model_copy(
        update={"lexical_backend": "milvus", "embedding_model": "hash:64"}
    )
    paths = [corpus_dir / "001_609138391ce5f9ab.txt"]
    build_index(settings.model_copy(update={"fast_first": True}), paths, progress=False)
    before = HybridSearcher.open(settings).contents
    assert upgrade_index(settings, progress=False).upgraded
    after = HybridSearcher.open(settings).contents
    assert after.manifest.embedding["model"] == "hash:64"
    assert after.vectors.collection != before.vectors.collection
    assert after.vectors.texts.name == before.vectors.texts.name
    assert [c.text for c in after.chunks] == [c.text for c in before.chunks]
    assert not _files_holding(settings.resolved_index_dir, before.chunks[0].text[:20])
