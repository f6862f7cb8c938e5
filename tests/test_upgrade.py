"""Searchable at once, better later: a fast-first index answers with the static model, keeps
taking documents, and is upgraded to the configured model in one atomic version, resumably.

The configured model here is the hash embedder, so the upgrade itself takes milliseconds; the
mechanism does not depend on which model it upgrades to.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from planqa.corpus.settings import BUNDLED_CORPUS_DIR, Settings
from planqa.index import upgrade as upgrade_module
from planqa.index.builder import add_documents, build_index
from planqa.index.embedder import HashEmbedder, StaticEmbedder
from planqa.index.search import HybridSearcher
from planqa.index.store import IndexStore
from planqa.index.upgrade import pending_upgrade, upgrade_index
from planqa.ui.cli import app
from planqa.ui.jobs import INDEXED, JobRunner
from planqa.ui.render_knowledge import job_row
from tests.writable_corpus import SMALL_PLANS

TARGET = "hash:64"


def settings_for(root: Path, **overrides: object) -> Settings:
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name in SMALL_PLANS[:1]:
        (corpus / name).write_bytes((BUNDLED_CORPUS_DIR / name).read_bytes())
    values = {"embedding_model": TARGET, "index_dir": root / "index", "corpus_dir": corpus}
    return Settings(**{**values, "cache_dir": root / "cache", **overrides})


def manifest_embedding(settings: Settings) -> dict:
    return IndexStore(settings.resolved_index_dir).read_manifest().embedding


@pytest.fixture
def fast_index(tmp_path: Path) -> Settings:
    settings = settings_for(tmp_path)
    build_index(settings.model_copy(update={"fast_first": True}), progress=False)
    return settings


def test_a_fast_first_index_answers_with_the_fast_model(fast_index: Settings) -> None:
    embedding = manifest_embedding(fast_index)
    assert embedding["model"] == "fast" and embedding["upgrade_to"] == {"model": TARGET}
    assert pending_upgrade(fast_index)
    searcher = HybridSearcher.open(fast_index)
    assert isinstance(searcher.embedder, StaticEmbedder)
    assert searcher.search("产业园", 3, mode="dense")


def test_updates_while_it_waits_keep_the_fast_model(fast_index: Settings, tmp_path: Path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("第一章 总则\n银杏湾新区建设生态廊道和湿地公园。\n", encoding="utf-8")
    add_documents(fast_index, [extra], progress=False)
    build_index(fast_index, progress=False)  # a plain update of the folder: still fast
    embedding = manifest_embedding(fast_index)
    assert embedding["model"] == "fast" and embedding["upgrade_to"] == {"model": TARGET}


def test_the_upgrade_swaps_vectors_only(fast_index: Settings) -> None:
    store = IndexStore(fast_index.resolved_index_dir)
    before = store.load()
    seen: list[tuple[int, int]] = []
    report = upgrade_index(fast_index, progress=False, on_progress=lambda d, t: seen.append((d, t)))
    assert report.upgraded and report.chunks == len(before.chunks) and report.model == TARGET
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] > 0
    after = store.load()
    assert after.manifest.embedding["model"] == TARGET
    assert "upgrade_to" not in after.manifest.embedding
    assert [c.id for c in after.chunks] == [c.id for c in before.chunks]
    assert after.manifest.documents == before.manifest.documents
    assert after.manifest.segments == before.manifest.segments  # linked, not rewritten
    assert np.array_equal(after.bm25.scores(["产业"]), before.bm25.scores(["产业"]))
    assert not pending_upgrade(fast_index)
    searcher = HybridSearcher.open(fast_index, embedder=StaticEmbedder())  # a stale embedder
    assert isinstance(searcher.embedder, HashEmbedder)
    assert searcher.search("产业园", 3)
    assert not upgrade_index(fast_index, progress=False).upgraded  # nothing left to do


def test_a_stopped_upgrade_resumes_where_it_stopped(
    fast_index: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upgrade_module, "UPGRADE_BATCH", 2)
    calls = {"n": 0}

    class Stops(HashEmbedder):
        def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return super().embed_passages(texts)

    with pytest.raises(KeyboardInterrupt):
        upgrade_index(fast_index, embedder=Stops(64), progress=False)
    assert pending_upgrade(fast_index)  # the index still answers with the fast model
    HybridSearcher.open(fast_index).search("产业园", 3)
    report = upgrade_index(fast_index, progress=False)
    assert report.upgraded and report.embedded == report.chunks - 4


def test_a_document_added_during_the_upgrade_is_upgraded_too(
    fast_index: Settings, tmp_path: Path
) -> None:
    extra = tmp_path / "late.txt"
    extra.write_text("第一章 总则\n银杏湾新区建设生态廊道。\n", encoding="utf-8")
    added: list[bool] = []

    def add_once(done: int, total: int) -> None:
        if not added:
            added.append(True)
            add_documents(fast_index, [extra], progress=False)

    report = upgrade_index(fast_index, progress=False, on_progress=add_once)
    contents = IndexStore(fast_index.resolved_index_dir).load()
    assert "late.txt" in contents.documents and report.chunks == len(contents.chunks)
    assert contents.manifest.embedding["model"] == TARGET


def test_without_the_embedding_cache_the_scratch_cache_is_removed(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, embedding_cache=False)
    build_index(settings.model_copy(update={"fast_first": True}), progress=False)
    assert upgrade_index(settings, progress=False).upgraded
    assert not (settings.resolved_index_dir / upgrade_module.UPGRADE_CACHE).exists()


def test_an_index_of_the_configured_model_is_not_rebuilt_fast(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    build_index(settings, progress=False)
    build_index(settings.model_copy(update={"fast_first": True}), progress=False)
    assert manifest_embedding(settings)["model"] == TARGET


def test_the_cli_builds_fast_then_upgrades(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    env = {
        "PLANQA_EMBEDDING_MODEL": TARGET,
        "PLANQA_INDEX_DIR": str(settings.resolved_index_dir),
        "PLANQA_CACHE_DIR": str(settings.cache_dir),
    }
    runner = CliRunner(env=env)
    result = runner.invoke(app, ["index", str(settings.corpus_dir), "--fast-first", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["index"]["chunks"] == body["upgrade"]["chunks"] > 0
    assert body["upgrade"]["upgraded"] is True and "searchable now" in result.stderr
    again = runner.invoke(app, ["index", "--upgrade"])
    assert again.exit_code == 0 and "nothing to upgrade" in again.stdout
    wrong = runner.invoke(app, ["index", "--upgrade", "--rebuild"])
    assert wrong.exit_code == 2 and "--upgrade" in wrong.stderr


def test_the_server_runs_the_upgrade_beside_the_job_queue(fast_index: Settings) -> None:
    runner = JobRunner()
    try:
        job = runner.run_alongside(
            "upgrade", [], lambda job: upgrade_index(fast_index, progress=False).to_dict()
        )
        runner.wait(job, timeout=30)
        assert job.state == INDEXED and job.result["upgraded"] is True
        assert job_row(job, None)[:2] == ["全部文档", "已升级"]
    finally:
        runner.close()


def test_a_server_upgrades_a_fast_first_index_while_it_answers(tmp_path: Path) -> None:
    import time

    import httpx

    from tests.ports import serving

    settings = settings_for(tmp_path)
    build_index(settings.model_copy(update={"fast_first": True}), progress=False)
    with serving(settings) as (url, _app):
        deadline = time.monotonic() + 60
        health = httpx.get(f"{url}api/v1/health").json()
        while health["embedding_model"] != TARGET and time.monotonic() < deadline:
            time.sleep(0.2)
            health = httpx.get(f"{url}api/v1/health").json()
        assert health["upgrade"]["state"] == "indexed" and health["embedding_model"] == TARGET
        found = httpx.get(f"{url}api/v1/search", params={"q": "产业园", "k": 2}).json()
        assert len(found["hits"]) == 2
