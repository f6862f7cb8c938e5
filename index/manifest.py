"""The manifest of an index version (``manifest.json``): what the index was built with, the
document catalogue, its segments and the size and hash of every file.

One typed ``Manifest`` instead of a dict that the builder wrote and the store, the builder and the
searcher each read their own way: the keys, their types and the rules about them (which format
this planqa reads, when an index fits the current settings) live here, once. The JSON on disk is
unchanged: ``to_json`` writes the keys in the order they always had, so a manifest is the same
bytes it was before this class existed, and older indexes open (or are refused) as they did.

Writer and reader share the compatibility check: the builder refuses to update, and the searcher
to open, an index built with another model, prompts, chunking or vector backend
(``check_compatible``), with the same message naming both ways out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Required, TypedDict

import orjson

from planqa.corpus.chunking import CHUNKER_VERSION
from planqa.corpus.documents import Document, DocumentMeta
from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.embedder_base import Embedder, passage_backend_of
from planqa.index.indexed_text import INDEXED_TEXT_VERSION

#: 3: hard-linked segments, document catalogue in the manifest (2: one chunks.jsonl and one
#: documents.jsonl per version; own BM25 arrays, vector stores keyed by chunk id).
FORMAT_VERSION = 3
REBUILD_HINT = "rebuild it with `planqa index --rebuild`"
#: Key of the fingerprint's ``vectors`` section: where BM25 lives, when not in planqa's arrays.
LEXICAL_KEY = "lexical"


class Segment(TypedDict):
    """One segment of rows (index/segments.py): its file name stem and how many rows it holds."""

    name: str
    rows: int


class FileEntry(TypedDict, total=False):
    """A file of the version: its size, and its hash when it was small enough to hash."""

    bytes: Required[int]
    sha256: str


class TokenizerInfo(TypedDict):
    """The lexical tokenizer: its signature and the region words added to jieba's dictionary."""

    signature: str
    user_words: list[str]


class Counts(TypedDict):
    documents: int
    chunks: int


#: A document's catalogue entry (see ``catalogue_entry``): metadata, encoding, hash, chunks, time.
CatalogueEntry = dict[str, Any]
#: The settings an index depends on, by section (see ``settings_fingerprint``).
Fingerprint = dict[str, dict[str, Any]]


def planqa_version() -> str:
    try:
        return version("planqa")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class Manifest:
    """A version's manifest. Fields are in the order of the JSON keys; an optional key missing
    from the file is None here and stays missing when written back, unknown keys ride in
    ``extra`` (so reading and writing a manifest never changes what it says)."""

    format: int
    planqa_version: str | None
    created: str | None
    embedding: dict[str, Any] | None
    chunking: dict[str, Any] | None
    vectors: dict[str, Any] | None
    dimension: int | None
    tokenizer: TokenizerInfo
    #: ``VectorStore.describe()`` of the version's store.
    vector_index: dict[str, Any] | None
    counts: Counts
    #: The document catalogue, in row order.
    documents: list[CatalogueEntry]
    #: Segments by kind ("documents", "chunks"), in row order; filled in by the store's write.
    segments: dict[str, list[Segment]]
    #: Every file of the version but the manifest, by path; filled in by the store's write.
    files: dict[str, FileEntry]
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ making
    @classmethod
    def new(
        cls,
        fingerprint: Fingerprint,
        *,
        dimension: int,
        tokenizer: TokenizerInfo,
        vector_index: dict[str, Any],
        documents: list[CatalogueEntry],
        chunks: int,
    ) -> Manifest:
        """The manifest of a version being built; the store adds its segments and files."""
        return cls(
            format=FORMAT_VERSION,
            planqa_version=planqa_version(),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            embedding=fingerprint["embedding"],
            chunking=fingerprint["chunking"],
            vectors=fingerprint["vectors"],
            dimension=dimension,
            tokenizer=tokenizer,
            vector_index=vector_index,
            counts={"documents": len(documents), "chunks": chunks},
            documents=documents,
            segments={},
            files={},
        )

    def sealed(self, segments: dict[str, list[Segment]], files: dict[str, FileEntry]) -> Manifest:
        """This manifest with the segments and files of the version as written."""
        return replace(self, segments=segments, files=files)

    # ------------------------------------------------------------------ JSON
    @classmethod
    def from_json(cls, data: bytes, path: Path) -> Manifest:
        """Parse a manifest, refusing another format before anything else is read.

        The directory may come from anyone: malformed contents raise KeyError, TypeError or
        ValueError, which the store reports as a malformed index (never executing anything).
        """
        raw = orjson.loads(data)
        found = raw.get("format")
        if found != FORMAT_VERSION:
            raise IndexStoreError(
                f"{path} has index format {found!r}; this planqa reads format "
                f"{FORMAT_VERSION}; {REBUILD_HINT}"
            )
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Manifest:
        required = {name: raw[name] for name in _REQUIRED}  # KeyError names a missing key
        if not isinstance(required["tokenizer"]["user_words"], list):
            raise TypeError("tokenizer.user_words is not a list")  # HybridSearcher reads it
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            **required,
            **{name: raw.get(name) for name in known - set(required)},
            extra={k: v for k, v in raw.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, keys in their written order."""
        document = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "extra" and getattr(self, f.name) is not None
        }
        return {**document, **self.extra}

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)

    def __getitem__(self, key: str) -> Any:
        """The JSON document's ``key``, for code that reads the manifest as the document it is
        (tests, reports); planqa's own code reads the fields."""
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    # ------------------------------------------------------------------ reading
    @property
    def user_words(self) -> list[str]:
        return self.tokenizer["user_words"]

    @property
    def vector_description(self) -> dict[str, Any]:
        """What ``load_vector_store`` needs (an old manifest without one means FAISS)."""
        return self.vector_index or {}

    def catalogue(self) -> dict[str, CatalogueEntry]:
        """The catalogue entries by file name, in row order."""
        return {entry["file"]: entry for entry in self.documents}

    def fingerprint(self) -> Fingerprint:
        """The recorded settings the index depends on (a missing section is empty)."""
        return {
            "embedding": self.embedding or {},
            "chunking": self.chunking or {},
            "vectors": self.vectors or {},
        }

    def check_compatible(self, settings: Settings, embedder: Embedder) -> None:
        check_compatible(self, settings, embedder)


#: Keys every manifest must have, in the order a load used to need them.
_REQUIRED = ("format", "files", "segments", "documents", "counts", "tokenizer")


def catalogue_entry(document: Document, chunks: int) -> CatalogueEntry:
    """A document's entry in the manifest's catalogue: everything but its text, and when its
    rows were made (UTC; a kept document keeps its entry, so this is when it last changed)."""
    return {
        **vars(document.meta),
        "encoding": document.encoding,
        "sha256": document.sha256,
        "chunks": chunks,
        "indexed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def document_meta(entry: CatalogueEntry) -> DocumentMeta:
    """The metadata of a catalogue entry, as the loader would give it."""
    values = {k: entry[k] for k in DocumentMeta.__dataclass_fields__ if k in entry}
    values["aliases"] = tuple(values.get("aliases", ()))
    values["uncertain"] = tuple(values.get("uncertain", ()))
    return DocumentMeta(**values)


def settings_fingerprint(settings: Settings, embedder: Embedder) -> Fingerprint:
    """The settings an index depends on; any difference makes an existing index unusable."""
    return {
        "embedding": {"model": settings.embedding_model, "model_id": embedder.model_id},
        "chunking": {
            "chunker": CHUNKER_VERSION,
            "indexed_text": INDEXED_TEXT_VERSION,
            "max_chars": settings.chunk_max_chars,
            "overlap_chars": settings.chunk_overlap_chars,
        },
        # Recorded only when BM25 lives in Milvus, so indexes from before the setting still open.
        "vectors": {"backend": settings.vector_backend}
        | ({LEXICAL_KEY: "milvus"} if settings.lexical_backend == "milvus" else {}),
    }


def check_compatible(
    manifest: Manifest | Mapping[str, Any],
    settings: Settings,
    embedder: Embedder,
    *,
    searching: bool = False,
) -> None:
    """Refuse an index built with another model, prompts, chunking or lexical backend, naming
    both ways out; ``searching``: for a search, which may read more than it needs.

    ``manifest`` is a Manifest or just its fingerprint sections (``settings_fingerprint``).
    """
    recorded = manifest.fingerprint() if isinstance(manifest, Manifest) else manifest
    expected = settings_fingerprint(settings, embedder)
    for section, wanted in expected.items():
        found = recorded.get(section, {})
        for key, value in wanted.items():
            if key != LEXICAL_KEY and found.get(key) != value:
                hint = ""
                built = passage_backend_of(str(found.get("model_id")), embedder.model_id)
                if section == "embedding" and built is not None:  # other passage vectors only
                    hint = f", or set PLANQA_PASSAGE_BACKEND={built!r} to use it as built"
                elif section == "embedding":
                    hint = (
                        f", or set PLANQA_EMBEDDING_MODEL={found.get('model')!r} to use it as built"
                    )
                elif section == "vectors":
                    hint = f", or set PLANQA_VECTOR_BACKEND={found.get(key)!r} to use it as built"
                raise IndexStoreError(
                    f"the index was built with {section}.{key}={found.get(key)!r} but the current "
                    f"configuration has {value!r}; rebuild it with `planqa index --rebuild`{hint}"
                )
    built = recorded.get("vectors", {}).get(LEXICAL_KEY, "local")
    # A search in Milvus ignores local BM25 arrays, so it may read an index that has them.
    if built != settings.lexical_backend and not (searching and built == "local"):
        raise IndexStoreError(
            f"the index was built with lexical_backend={built!r} (where its BM25 lives) but the "
            f"current configuration has {settings.lexical_backend!r}; rebuild it with `planqa "
            f"index --rebuild`, or set PLANQA_LEXICAL_BACKEND={built!r} to use it as built"
        )
