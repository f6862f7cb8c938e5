"""Searchable at once, better later: index with the fast static model, upgrade the vectors after.

With ``fast_first`` (``planqa index --fast-first``) a new index is built with the ``fast`` model
(index/static_embedder.py: thousands of passages a second) and records in its manifest the model
it is to be upgraded to, ``embedding.upgrade_to``: the configured one. Such an index is complete
(BM25, filters, citations) and answers at once; searches embed their questions with the fast
model while it waits, and updates in the meantime keep using the fast model too.

``upgrade_index`` then embeds every chunk with the configured model into the embedding cache,
batch by batch with progress (so a killed upgrade resumes where it stopped), and writes a new
version that keeps every chunk, document and BM25 row of the current one (their segments are
hard-linked, not rewritten) with the new vectors only, switched in atomically like any build.
Searches move over as soon as they see the new version (ui/index_watch.py). The swap is one
version for the whole corpus: the two models' vectors live in different spaces and one index
holds one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.embedder import FAST_MODEL_NAME, Embedder, make_embedder
from planqa.index.embedding_cache import CACHE_FILE, EmbeddingCache
from planqa.index.indexed_text import embedding_text, vector_record
from planqa.index.manifest import Manifest, settings_fingerprint
from planqa.index.milvus_texts import texts_of
from planqa.index.store import IndexStore
from planqa.index.vectorstore import new_vector_store
from planqa.index.versions import IndexContents, StoredVersion

#: Key of the manifest's ``embedding`` section naming the model an index awaits.
UPGRADE_KEY = "upgrade_to"
#: Passages per call of the model and per transaction of the cache.
UPGRADE_BATCH = 64
#: The cache an upgrade resumes from when the embedding cache is switched off.
UPGRADE_CACHE = ".upgrade-embeddings.sqlite3"

Progress = Callable[[int, int], None]


def awaited_model(embedding: Mapping[str, Any] | None) -> str | None:
    """The model an index's ``embedding`` section says it is to be upgraded to, if any."""
    target = (embedding or {}).get(UPGRADE_KEY)
    return target.get("model") if isinstance(target, Mapping) else None


def _fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"embedding_model": FAST_MODEL_NAME})


def settings_for_index(settings: Settings, embedding: Mapping[str, Any] | None) -> Settings:
    """The settings to search or update an index with: the fast model's while it awaits its
    upgrade to the configured model, else ``settings`` as they are."""
    if awaited_model(embedding) == settings.embedding_model:
        return _fast(settings)
    return settings


def settings_for_build(
    settings: Settings, store: IndexStore, rebuild: bool
) -> tuple[Settings, str | None]:
    """(the settings a build uses, the model its manifest is to await, or None).

    An index awaiting its upgrade keeps being updated with the fast model. A build that makes a
    new index (none yet, ``--rebuild``, or one of another model) uses the fast model when
    ``fast_first`` is set; an existing index of the configured model is updated with it.
    """
    current: Mapping[str, Any] | None = None
    if store.exists():
        try:
            current = store.read_manifest().embedding
        except IndexStoreError:
            current = None  # damaged: the build replaces it
    if not rebuild and awaited_model(current) == settings.embedding_model:
        return _fast(settings), settings.embedding_model
    builds_anew = rebuild or current is None or current.get("model") != settings.embedding_model
    if settings.fast_first and builds_anew and settings.embedding_model != FAST_MODEL_NAME:
        return _fast(settings), settings.embedding_model
    return settings, None


def fitting_embedder(
    settings: Settings, embedder: Embedder | None, progress: bool = True
) -> Embedder:
    """``embedder`` when it is ``settings``' model, else a new one of that model: a caller's
    embedder may predate an upgrade (or a fast build) of the index it now reads or updates."""
    name = getattr(embedder, "model_name", settings.embedding_model)
    if embedder is not None and name == settings.embedding_model:
        return embedder
    return make_embedder(settings, progress=progress)


def awaiting_fingerprint(fingerprint: dict[str, dict[str, Any]], target: str | None) -> None:
    """Record in a fast build's fingerprint the model it awaits (none when ``target`` is None)."""
    if target is not None:
        fingerprint["embedding"][UPGRADE_KEY] = {"model": target}


@dataclass
class UpgradeReport:
    model: str
    upgraded: bool
    chunks: int = 0
    embedded: int = 0
    version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def pending_upgrade(settings: Settings) -> bool:
    """Whether the configured index awaits its upgrade to the configured model."""
    store = IndexStore(settings.resolved_index_dir)
    if not store.exists():
        return False
    try:
        return awaited_model(store.read_manifest().embedding) == settings.embedding_model
    except IndexStoreError:
        return False


def upgrade_index(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    progress: bool = True,
    on_progress: Progress | None = None,
) -> UpgradeReport:
    """Upgrade the configured index's vectors to the configured model (see the module docstring);
    nothing to do when it does not await that. Embedding runs without the writer lock, so
    uploads and searches carry on; the lock is held only to write the new version."""
    store = IndexStore(settings.resolved_index_dir, lock_timeout=settings.index_lock_timeout)
    report = UpgradeReport(model=settings.embedding_model, upgraded=False)
    if not pending_upgrade(settings):
        return report
    target = embedder or make_embedder(settings, progress=progress)
    cache, scratch = _upgrade_cache(settings, store, target)
    try:
        contents = store.load(settings=_fast(settings))
        report.embedded = _embed_into(cache, target, contents, progress, on_progress)
        with store.writer_lock(purpose="planqa: upgrading the index's vectors"):
            contents = store.load(settings=_fast(settings))  # uploads may have come meanwhile
            if awaited_model(contents.manifest.embedding) != settings.embedding_model:
                return report  # another process upgraded it first
            written, late = _write_upgraded(store, settings, target, contents, cache)
            report.version, report.embedded = written.name, report.embedded + late
    finally:
        cache.close()
    if scratch is not None:
        scratch.unlink(missing_ok=True)
    report.upgraded, report.chunks = True, len(contents.chunks)
    return report


def _upgrade_cache(
    settings: Settings, store: IndexStore, target: Embedder
) -> tuple[EmbeddingCache, Path | None]:
    """The embedding cache, or a scratch one in the index folder when it is switched off (then
    removed after the upgrade): either way a killed upgrade keeps what it embedded."""
    if settings.embedding_cache:
        return EmbeddingCache(
            settings.cache_dir / CACHE_FILE, target.model_id, target.dimension
        ), None
    scratch = store.directory / UPGRADE_CACHE
    return EmbeddingCache(scratch, target.model_id, target.dimension), scratch


def _embed_into(
    cache: EmbeddingCache,
    target: Embedder,
    contents: IndexContents,
    progress: bool,
    on_progress: Progress | None,
) -> int:
    """Embed into ``cache`` every chunk text it lacks; return how many were embedded."""
    texts = list(dict.fromkeys(embedding_text(c) for c in contents.chunks))
    cached = cache.lookup(texts)
    missing = [t for i, t in enumerate(texts) if i not in cached]
    done = len(texts) - len(missing)
    with tqdm(
        total=len(texts), initial=done, desc="upgrading vectors", unit="chunk", disable=not progress
    ) as bar:
        if on_progress is not None:
            on_progress(done, len(texts))
        for start in range(0, len(missing), UPGRADE_BATCH):
            batch = missing[start : start + UPGRADE_BATCH]
            cache.store(batch, target.embed_passages(batch))
            done += len(batch)
            bar.update(len(batch))
            if on_progress is not None:
                on_progress(done, len(texts))
    return len(missing)


def _write_upgraded(
    store: IndexStore,
    settings: Settings,
    target: Embedder,
    contents: IndexContents,
    cache: EmbeddingCache,
) -> tuple[Path, int]:
    """The current version with the target model's vectors: every row kept, nothing re-chunked.
    Chunks the cache lacks (documents added while the upgrade embedded) are embedded here, in
    the one lookup of the cache made under the lock. Returns the version and how many those were."""
    texts = [embedding_text(c) for c in contents.chunks]
    found = cache.lookup(texts)
    late = list(dict.fromkeys(t for i, t in enumerate(texts) if i not in found))
    for start in range(0, len(late), UPGRADE_BATCH):
        batch = late[start : start + UPGRADE_BATCH]
        cache.store(batch, target.embed_passages(batch))
    if late:
        found = cache.lookup(texts)
    matrix = np.stack([found[i] for i in range(len(texts))]).astype(np.float32)
    vectors = new_vector_store(settings, target.dimension, len(texts))
    vectors.add([vector_record(c) for c in contents.chunks], matrix)
    stored_texts = texts_of(vectors)
    if stored_texts is not None and "texts" not in contents.manifest.vector_description:
        stored_texts.store(contents.documents.values())  # built before texts moved to Milvus
    manifest = Manifest.new(
        settings_fingerprint(settings, target),
        dimension=target.dimension,
        tokenizer=contents.manifest.tokenizer,
        vector_index=vectors.describe(),
        documents=contents.manifest.documents,
        chunks=len(texts),
    )
    written = store.write(
        manifest,
        vectors,
        contents.bm25,
        documents=[],
        chunks=[],
        previous=StoredVersion.of(contents),
        kept_documents=np.ones(len(contents.documents), dtype=bool),
        kept_chunks=np.ones(len(texts), dtype=bool),
    )
    if vectors.backend == "milvus":
        vectors.drop_others(settings.milvus_collection)  # type: ignore[attr-defined]
    return written, len(late)
