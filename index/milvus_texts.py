"""Document texts in Milvus, so an index whose search runs there keeps no text on local disk.

With ``lexical_backend = "milvus"`` the whole hybrid search runs in Milvus (index/milvus_store.py);
this module moves the last texts there too. The local version folder then holds the manifest,
the chunks' keys and positions (document, chapter, character offsets) and the document
catalogue, but no passage or document text: chunk text is the document's text between the
chunk's offsets (chunking guarantees that), and the document texts live in one Milvus collection
``<milvus_collection>_texts`` beside the chunk collections.

Rows are addressed by content: a document's text is stored under its sha256 (the catalogue
records it), split into parts that fit a VARCHAR on every Milvus (16,000 characters are at most
64,000 bytes). So storing a text twice is a no-op, every build of the index shares the
collection, and a text read back is checked against the hash the local catalogue holds: a
missing or altered text is refused with the fix, as a damaged local file is. Texts no longer
referenced by the current version, nor by the version it replaced (readers may still be opening
that one), are deleted after each switch.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from planqa.corpus.documents import Document, text_sha256
from planqa.corpus.errors import IndexStoreError
from planqa.index.manifest import REBUILD_HINT

#: Characters per stored part: at most 64,000 bytes of UTF-8, under Milvus's 65,535 cap.
PART_CHARS = 16_000
#: Documents whose parts one query asks for (a query returns at most 16,384 rows, so documents
#: of up to ~2.6 million characters each).
_FETCH_BATCH = 100
_WRITE_BATCH = 200
#: Milvus collections need a vector field; the texts collection has nothing to search by.
_PLACEHOLDER_VECTOR = [0.0, 0.0]


def texts_of(vectors: object) -> MilvusTexts | None:
    """Where a vector store keeps the index's document texts: Milvus, or None for the version
    folder (FAISS, or Milvus holding vectors only)."""
    return getattr(vectors, "texts", None)


def texts_collection(prefix: str) -> str:
    """The texts collection of every index built under ``milvus_collection = prefix``."""
    return f"{prefix}_texts"


def parts_of(text: str) -> list[str]:
    """The text in stored parts, in order (an empty text is one empty part)."""
    return [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]


class MilvusTexts:
    """The content-addressed document texts of the indexes built under one collection prefix."""

    def __init__(self, client, name: str) -> None:
        self.client = client
        self.name = name

    @classmethod
    def ensure(cls, client, pymilvus, name: str) -> MilvusTexts:
        """The collection ``name``, created on first use."""
        if not client.has_collection(name):
            data_type = pymilvus.DataType
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", data_type.VARCHAR, max_length=80, is_primary=True)
            schema.add_field("sha", data_type.VARCHAR, max_length=64)
            schema.add_field("part", data_type.INT64)
            schema.add_field("parts", data_type.INT64)
            schema.add_field("text", data_type.VARCHAR, max_length=65_535)
            schema.add_field("placeholder", data_type.FLOAT_VECTOR, dim=len(_PLACEHOLDER_VECTOR))
            params = client.prepare_index_params()
            params.add_index("placeholder", index_type="FLAT", metric_type="L2")
            client.create_collection(name, schema=schema, index_params=params)
        client.load_collection(name)
        return cls(client, name)

    @classmethod
    def existing(cls, client, name: str, where: str) -> MilvusTexts:
        if not client.has_collection(name):
            raise IndexStoreError(
                f"{where}: the Milvus collection {name!r} that holds the index's document texts "
                f"is missing; {REBUILD_HINT}"
            )
        client.load_collection(name)
        return cls(client, name)

    # ------------------------------------------------------------------ writing
    def store(self, documents: Iterable[Document]) -> None:
        """Store each document's text under its sha256 (an upsert: storing twice is harmless)."""
        rows: list[dict[str, Any]] = []
        for document in documents:
            parts = parts_of(document.text)
            for number, part in enumerate(parts):
                rows.append(
                    {
                        "id": f"{document.sha256}:{number}",
                        "sha": document.sha256,
                        "part": number,
                        "parts": len(parts),
                        "text": part,
                        "placeholder": _PLACEHOLDER_VECTOR,
                    }
                )
        for start in range(0, len(rows), _WRITE_BATCH):
            self.client.upsert(self.name, rows[start : start + _WRITE_BATCH])
        if rows:
            self.client.flush(self.name)

    def keep_only(self, shas: Collection[str]) -> int:
        """Delete the texts not in ``shas``; how many documents' texts went."""
        stored = {row["sha"]: row["parts"] for row in self._rows(["sha", "parts"], "part == 0")}
        stale = [
            f"{sha}:{number}"
            for sha, parts in stored.items()
            if sha not in shas
            for number in range(parts)
        ]
        for start in range(0, len(stale), _WRITE_BATCH):
            self.client.delete(self.name, ids=stale[start : start + _WRITE_BATCH])
        return len({key.split(":", 1)[0] for key in stale})

    # ------------------------------------------------------------------ reading
    def fetch(self, shas: Collection[str], where: str) -> dict[str, str]:
        """The texts of ``shas``, each checked against its hash; refused when one is missing
        or altered."""
        wanted = sorted(set(shas))
        parts: dict[str, dict[int, str]] = {}
        counts: dict[str, int] = {}
        for start in range(0, len(wanted), _FETCH_BATCH):
            batch = wanted[start : start + _FETCH_BATCH]
            expression = "sha in [" + ", ".join(f'"{sha}"' for sha in batch) + "]"
            fields = ["sha", "part", "parts", "text"]
            for row in self.client.query(self.name, filter=expression, output_fields=fields):
                parts.setdefault(row["sha"], {})[int(row["part"])] = row["text"]
                counts[row["sha"]] = int(row["parts"])
        texts = {}
        for sha in wanted:
            found = parts.get(sha, {})
            if not found or set(found) != set(range(counts[sha])):
                raise self._refused(where, sha, "is missing")
            text = "".join(found[number] for number in range(counts[sha]))
            if text_sha256(text) != sha:
                raise self._refused(where, sha, "does not match its hash")
            texts[sha] = text
        return texts

    def _refused(self, where: str, sha: str, problem: str) -> IndexStoreError:
        return IndexStoreError(
            f"{where}: the text of document {sha[:12]}… in Milvus collection {self.name!r} "
            f"{problem}; {REBUILD_HINT}"
        )

    def _rows(self, fields: list[str], expression: str) -> list[dict[str, Any]]:
        iterator = self.client.query_iterator(
            self.name, batch_size=1_000, filter=expression, output_fields=fields
        )
        found: list[dict[str, Any]] = []
        try:
            while batch := iterator.next():
                found.extend(batch)
        finally:
            iterator.close()
        return found
