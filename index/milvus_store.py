"""Vectors in Milvus: the distributed backend (``vector_backend = "milvus"``).

One collection holds every chunk of an index, keyed by chunk id, with its document, region and
lexical text. The text feeds a Milvus BM25 function over the jieba analyzer, so the same
collection also answers Chinese full-text queries (``text_search``) and hybrid searches on a
Milvus cluster. An update adds and deletes chunks in place; the local index version that lists the
chunks is still swapped atomically, and the searcher ignores ids its version does not know.

``milvus_uri`` is a file path for Milvus Lite (embedded, ``pip install planqa[milvus]``, used by the
tests) or ``http://host:19530`` for a Milvus server or cluster; the token comes from the
environment variable named by ``milvus_token_env``. Needs ``pymilvus`` (imported lazily, so the
FAISS default works without it).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from planqa.corpus.errors import IndexStoreError
from planqa.corpus.settings import Settings
from planqa.index.milvus_texts import MilvusTexts, texts_collection
from planqa.index.vector_base import VectorRecord, check_batch, check_dimension

DESCRIPTOR_FILE = "milvus.json"
#: Milvus caps VARCHAR lengths; chunk ids are 16 hex characters, the rest are generous.
_MAX_ID, _MAX_NAME, _MAX_TEXT = 64, 1024, 65_535
_INSERT_BATCH = 2_000
_QUERY_BATCH = 1_000


def _import_pymilvus():
    try:
        import pymilvus
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise IndexStoreError(
            "vector_backend='milvus' needs pymilvus: pip install 'planqa[milvus]' "
            "(or set PLANQA_VECTOR_BACKEND=faiss)"
        ) from exc
    # Milvus Lite cannot hand an iterator a server timestamp; pymilvus then uses the client's,
    # which is correct, and warns on stderr at every listing. Only that warning is silenced.
    logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
    return pymilvus


def connect(settings: Settings, uri: str | None = None):
    """A MilvusClient for ``uri`` (default: the configured one) with the token from the env."""
    pymilvus = _import_pymilvus()
    uri = uri or settings.resolved_milvus_uri
    kwargs: dict[str, Any] = {"uri": uri}
    token = os.environ.get(settings.milvus_token_env, "")
    if token:
        kwargs["token"] = token
    if settings.milvus_db != "default":
        kwargs["db_name"] = settings.milvus_db
    if "://" not in uri:
        Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        return pymilvus.MilvusClient(**kwargs)
    except Exception as exc:  # connection, auth and URI errors all mean "cannot use Milvus"
        raise IndexStoreError(
            f"cannot connect to Milvus at {uri!r} ({type(exc).__name__}: {exc}); check "
            f"PLANQA_MILVUS_URI and the token in ${settings.milvus_token_env}"
        ) from exc


def quote(value: str) -> str:
    """A Milvus string literal (JSON escaping is what its expression parser accepts).

    >>> quote('南通"市')
    '"南通\\\\"市"'
    """
    return json.dumps(value, ensure_ascii=False)


def filter_expression(
    docs: Collection[str] | None = None, regions: Collection[str] | None = None
) -> str:
    """``doc in [...] and region in [...]``; empty when nothing is restricted."""
    parts = []
    if docs is not None:
        parts.append(f"doc in [{', '.join(quote(d) for d in sorted(docs))}]")
    if regions is not None:
        parts.append(f"region in [{', '.join(quote(r) for r in sorted(regions))}]")
    return " and ".join(parts)


class MilvusVectorStore:
    """One Milvus collection per build, shared by every process that opens the index; the
    version directory keeps only its description (``milvus.json``)."""

    backend = "milvus"

    def __init__(
        self,
        client,
        collection: str,
        dimension: int,
        uri: str,
        index: dict[str, Any],
        texts: MilvusTexts | None = None,
    ) -> None:
        self.client = client
        self.collection = collection
        self._dimension = dimension
        self.uri = uri
        self.index = index
        #: Where the index's document texts live when its whole search runs in Milvus
        #: (index/milvus_texts.py); None when the version folder holds them.
        self.texts = texts

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    def create(
        cls, settings: Settings, dimension: int, n_vectors: int, name: str | None = None
    ) -> MilvusVectorStore:
        """A new, empty collection ``<milvus_collection>_<random>`` (a rebuild never writes into
        the collection the current index version still uses). With ``lexical_backend =
        "milvus"`` the document texts go to Milvus too."""
        pymilvus = _import_pymilvus()
        client = connect(settings)
        name = name or f"{settings.milvus_collection}_{uuid.uuid4().hex[:8]}"
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        data_type = pymilvus.DataType
        schema.add_field("id", data_type.VARCHAR, max_length=_MAX_ID, is_primary=True)
        schema.add_field("doc", data_type.VARCHAR, max_length=_MAX_NAME)
        schema.add_field("region", data_type.VARCHAR, max_length=_MAX_NAME)
        # The "jieba" tokenizer exists in Milvus Lite and Milvus 2.5+ alike ("chinese" only in
        # the server), so one schema serves both.
        schema.add_field(
            "text",
            data_type.VARCHAR,
            max_length=_MAX_TEXT,
            enable_analyzer=True,
            analyzer_params={"tokenizer": "jieba"},
        )
        schema.add_field("vector", data_type.FLOAT_VECTOR, dim=dimension)
        schema.add_field("sparse", data_type.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            pymilvus.Function(
                name="text_bm25",
                function_type=pymilvus.FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        index = cls._index_spec(settings, n_vectors)
        params = client.prepare_index_params()
        params.add_index("vector", **{k: v for k, v in index.items() if k != "ef_search"})
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(name, schema=schema, index_params=params)
        texts = None
        if settings.lexical_backend == "milvus":
            name_of_texts = texts_collection(settings.milvus_collection)
            texts = MilvusTexts.ensure(client, pymilvus, name_of_texts)
        return cls(client, name, dimension, settings.resolved_milvus_uri, index, texts)

    @staticmethod
    def _index_spec(settings: Settings, n_vectors: int) -> dict[str, Any]:
        """Same rule as FAISS: exact below ``ann_min_vectors``, HNSW above."""
        if settings.ann_min_vectors and n_vectors >= settings.ann_min_vectors:
            return {
                "index_type": "HNSW",
                "metric_type": "IP",
                "params": {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction},
                "ef_search": settings.hnsw_ef_search,
            }
        return {"index_type": "FLAT", "metric_type": "IP", "params": {}}

    @classmethod
    def open(
        cls, directory: Path, description: dict[str, Any], settings: Settings | None
    ) -> MilvusVectorStore:
        settings = settings or Settings()
        uri = settings.milvus_uri or description.get("uri") or settings.resolved_milvus_uri
        client = connect(settings, uri)
        name = description["collection"]
        if not client.has_collection(name):
            raise IndexStoreError(
                f"{directory}: the index's Milvus collection {name!r} is missing at {uri!r}; "
                "rebuild with `planqa index --rebuild`"
            )
        client.load_collection(name)
        texts = None
        if description.get("texts"):
            texts = MilvusTexts.existing(client, str(description["texts"]), str(directory))
        index = description.get("index", {})
        return cls(client, name, int(description["dimension"]), uri, index, texts)

    def drop_others(self, prefix: str) -> list[str]:
        """Drop the collections of earlier builds (``<prefix>_*``), keeping this one and the
        texts every build shares."""
        dropped = []
        keep = {self.collection, texts_collection(prefix)}
        for name in self.client.list_collections():
            if name not in keep and name.startswith(prefix + "_"):
                self.client.drop_collection(name)
                dropped.append(name)
        return dropped

    def drop(self) -> None:
        self.client.drop_collection(self.collection)

    # ------------------------------------------------------------------ reading
    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def size(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _search_params(self, k: int) -> dict[str, Any]:
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.index.get("index_type") == "HNSW":
            params["params"] = {"ef": max(k, self.index.get("ef_search", 768))}
        return params

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        docs: Collection[str] | None = None,
        regions: Collection[str] | None = None,
    ) -> list[tuple[str, float]]:
        query = check_dimension(np.asarray(query)[None, :], self.dimension, "query")[0]
        if k <= 0 or (docs is not None and not docs) or (regions is not None and not regions):
            return []
        result = self.client.search(
            self.collection,
            data=[query.tolist()],
            anns_field="vector",
            filter=filter_expression(docs, regions),
            limit=k,
            search_params=self._search_params(k),
        )
        return [(str(hit["id"]), float(hit["distance"])) for hit in result[0]]

    def text_search(
        self,
        text: str,
        k: int,
        *,
        docs: Collection[str] | None = None,
        regions: Collection[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Milvus full-text search: BM25 over its jieba analyzer (not planqa's tokenizer)."""
        result = self.client.search(
            self.collection,
            data=[text],
            anns_field="sparse",
            filter=filter_expression(docs, regions),
            limit=k,
            search_params={"metric_type": "BM25"},
        )
        # Milvus Lite 3.x reports BM25 as a negated distance; a server reports the score.
        return [(str(hit["id"]), abs(float(hit["distance"]))) for hit in result[0]]

    def hybrid_search(
        self,
        query: np.ndarray,
        text: str,
        k: int,
        *,
        scopes: Sequence[tuple[Collection[str] | None, Collection[str] | None]],
        pool: int,
        rrf_k: int,
    ) -> list[tuple[str, float]]:
        """Dense and BM25 full-text search in one request, fused by reciprocal rank in Milvus:
        a dense and a sparse sub-request per scope ``(docs, regions)``, each filtered by its
        Milvus expression and ``pool`` deep; the ``k`` best by fused score."""
        pymilvus = _import_pymilvus()
        query = check_dimension(np.asarray(query)[None, :], self.dimension, "query")[0]
        requests = []
        for docs, regions in scopes:
            expression = filter_expression(docs, regions)
            requests.append(
                pymilvus.AnnSearchRequest(
                    data=[query.tolist()],
                    anns_field="vector",
                    param=self._search_params(pool),
                    limit=pool,
                    expr=expression or None,
                )
            )
            requests.append(
                pymilvus.AnnSearchRequest(
                    data=[text],
                    anns_field="sparse",
                    param={"metric_type": "BM25"},
                    limit=pool,
                    expr=expression or None,
                )
            )
        if not requests or k <= 0:
            return []
        result = self.client.hybrid_search(
            self.collection, reqs=requests, ranker=pymilvus.RRFRanker(rrf_k), limit=k
        )
        return [(str(hit["id"]), float(hit["distance"])) for hit in result[0]]

    def ids(self) -> list[str]:
        iterator = self.client.query_iterator(
            self.collection, batch_size=_QUERY_BATCH, filter="", output_fields=["id"]
        )
        found: list[str] = []
        try:
            while batch := iterator.next():
                found.extend(str(row["id"]) for row in batch)
        finally:
            iterator.close()
        return found

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        by_id: dict[str, list[float]] = {}
        for start in range(0, len(ids), _QUERY_BATCH):
            batch = list(ids[start : start + _QUERY_BATCH])
            for row in self.client.get(self.collection, ids=batch, output_fields=["vector"]):
                by_id[str(row["id"])] = row["vector"]
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(f"chunk ids not in Milvus collection {self.collection}: {missing[:5]}")
        if not ids:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        # The URI is recorded without credentials (tokens never leave the environment).
        return {
            "backend": self.backend,
            "collection": self.collection,
            "uri": self.uri,
            "dimension": self.dimension,
            "index": self.index,
            "metric": "inner_product",
            "normalized": True,
        } | ({"texts": self.texts.name} if self.texts is not None else {})

    # ------------------------------------------------------------------ writing
    def add(self, records: Sequence[VectorRecord], vectors: np.ndarray) -> None:
        vectors = check_batch(records, vectors, self.dimension)
        for start in range(0, len(records), _INSERT_BATCH):
            rows = [
                {
                    "id": record.id,
                    "doc": record.doc,
                    "region": record.region,
                    "text": record.text,
                    "vector": vector.tolist(),
                }
                for record, vector in zip(
                    records[start : start + _INSERT_BATCH],
                    vectors[start : start + _INSERT_BATCH],
                    strict=True,
                )
            ]
            self.client.upsert(self.collection, rows)

    def delete(self, ids: Collection[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), _QUERY_BATCH):
            self.client.delete(self.collection, ids=ids[start : start + _QUERY_BATCH])

    def save(self, directory: Path) -> None:
        self.client.flush(self.collection)
        (directory / DESCRIPTOR_FILE).write_text(
            json.dumps(self.describe(), ensure_ascii=False, indent=2), encoding="utf-8"
        )
