"""Hybrid search over a loaded index: dense (FAISS) and lexical (BM25) candidates fused by RRF.

Each retriever proposes ``candidate_pool`` passages within the filters; reciprocal rank fusion then
orders the union. Dense search finds paraphrases, BM25 finds exact names and numbers (653亿元, 港开)
that embeddings blur; fusing ranks rather than scores needs no calibration between the two.

``search`` takes a :class:`~index.query.SearchQuery` (the text already checked and its regions
already found, as ``rag``'s question analysis produces) or plain text, which it analyses once
itself; region names are found by :class:`~index.query.RegionNames` alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from planqa.corpus.chunking import Chunk
from planqa.corpus.documents import Document
from planqa.corpus.errors import IndexStoreError, InputError
from planqa.corpus.settings import Settings
from planqa.index.bm25 import rank_scores
from planqa.index.embedder import Embedder
from planqa.index.manifest import check_compatible
from planqa.index.query import QueryAnalyzer, RegionNames, SearchQuery
from planqa.index.ranking import reciprocal_rank_fusion
from planqa.index.store import IndexContents, IndexStore
from planqa.index.text_tokenizer import ChineseTokenizer, normalise_text
from planqa.index.upgrade import fitting_embedder, settings_for_index
from planqa.index.vectors import set_search_threads
from planqa.index.vectorstore import FaissVectorStore

RETRIEVAL_MODES = ("hybrid", "dense", "bm25")
#: Shorter shared runs are ordinary words, not phrases (see HybridSearcher._phrase_ranking).
MIN_PHRASE_CHARS = 8


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk. ``score`` is the fused score in hybrid mode, else the retriever's own."""

    chunk: Chunk
    score: float
    retriever: str
    dense_score: float | None = None
    bm25_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self.chunk)
        row.update(
            score=self.score,
            retriever=self.retriever,
            dense_score=self.dense_score,
            bm25_score=self.bm25_score,
        )
        return row


#: The most results one Milvus request may return.
MILVUS_MAX_LIMIT = 16_384


def longest_shared_run(query: str, text: str) -> int:
    """Length of the longest substring of ``query`` that occurs in ``text``.

    Grows the length while some substring of that length still occurs (if none of length L
    does, none of length L + 1 can), so the cost stays near linear in practice.

    >>> longest_shared_run("支持南通理工学院建设", "全力支持南通理工学院研究生院")
    8
    """
    best = 0
    length = 1
    while length <= len(query):
        if any(query[i : i + length] in text for i in range(len(query) - length + 1)):
            best = length
            length += 1
        else:
            break
    return best


def interleave(rankings: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
    """Round-robin merge of ranked lists, skipping repeats: [[a, b], [c]] -> [a, c, b]."""
    merged: list[Hit] = []
    seen: set[str] = set()
    for depth in range(max((len(r) for r in rankings), default=0)):
        for ranking in rankings:
            if depth < len(ranking) and ranking[depth].chunk.id not in seen:
                seen.add(ranking[depth].chunk.id)
                merged.append(ranking[depth])
    return merged[:k]


class HybridSearcher:
    """Search over one loaded index version: its chunks, vectors, BM25 and region names.

    Built once per index and reused for every query, because opening maps the index and builds
    the per-document and per-region row maps that filters and remote vector stores need.
    """

    def __init__(self, settings: Settings, contents: IndexContents, embedder: Embedder) -> None:
        self.settings = settings
        self.contents = contents
        self.embedder = embedder
        self.tokenizer = ChineseTokenizer.for_queries(
            contents.manifest.user_words, settings.cache_dir
        )
        self._doc_rows = self._rows_by_document(contents.chunks)
        # Row -> document number, and the inverse maps a remote vector store needs (its hits
        # are chunk ids; its filters are documents or regions, not rows).
        self._doc_names = list(self._doc_rows)
        doc_number = {name: i for i, name in enumerate(self._doc_names)}
        self._row_doc = np.asarray([doc_number[c.doc] for c in contents.chunks], dtype=np.int64)
        self._row_of_id = {c.id: row for row, c in enumerate(contents.chunks)}
        self._region_doc_counts: dict[str, int] = {}
        for name in self._doc_names:
            region = contents.documents[name].meta.region
            self._region_doc_counts[region] = self._region_doc_counts.get(region, 0) + 1
        self._scopes: dict[tuple[str | None, str | None], np.ndarray | None] = {}
        set_search_threads(settings.search_threads)
        self.region_names = RegionNames({n: d.meta for n, d in contents.documents.items()})
        self.queries = QueryAnalyzer(self.tokenizer, self.region_names, settings.max_query_chars)

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> HybridSearcher:
        """Load and verify the configured index; refuse one built with other settings."""
        # Memory-mapped: a 100K-chunk index opens in about a second and processes share its pages.
        contents = IndexStore(settings.resolved_index_dir).load(mmap=True, settings=settings)
        if settings.lexical_backend == "milvus" and contents.vectors.backend != "milvus":
            raise IndexStoreError(
                "lexical_backend = 'milvus' runs the search in Milvus, but this index keeps its "
                "vectors in FAISS: set PLANQA_VECTOR_BACKEND=milvus and rebuild, or "
                "PLANQA_LEXICAL_BACKEND=local"
            )
        # An index built fast first is searched with the fast model until it is upgraded.
        index_settings = settings_for_index(settings, contents.manifest.embedding)
        embedder = fitting_embedder(index_settings, embedder)
        check_compatible(contents.manifest, index_settings, embedder, searching=True)
        return cls(settings, contents, embedder)

    @staticmethod
    def _rows_by_document(chunks: list[Chunk]) -> dict[str, np.ndarray]:
        rows: dict[str, list[int]] = {}
        for row, chunk in enumerate(chunks):
            rows.setdefault(chunk.doc, []).append(row)
        return {doc: np.asarray(r, dtype=np.int64) for doc, r in rows.items()}

    @property
    def documents(self) -> dict[str, Document]:
        return self.contents.documents

    def regions(self) -> list[str]:
        """Canonical region names of the indexed documents, sorted (for choices and errors)."""
        return self.region_names.regions()

    def documents_for_region(self, region: str) -> list[str]:
        """Documents whose region is ``region`` or has it as an alias (exact, else substring)."""
        return self.region_names.documents_for(region)

    def allowed_rows(self, region: str | None = None, doc: str | None = None) -> np.ndarray | None:
        """Rows passing the filters, or None for "everything" (cached: with tens of thousands of
        documents, resolving a region costs milliseconds, and the same ones recur)."""
        if region is None and doc is None:
            return None
        key = (region, doc)
        if key not in self._scopes:
            if len(self._scopes) > 1024:
                self._scopes.clear()
            self._scopes[key] = self._allowed_rows(region, doc)
        return self._scopes[key]

    def _allowed_rows(self, region: str | None, doc: str | None) -> np.ndarray:
        docs = set(self.documents)
        if region:
            docs &= set(self.documents_for_region(region))
        if doc:
            if doc not in self.documents:
                raise InputError(
                    f"unknown document {doc!r}; documents: {', '.join(sorted(self.documents))}"
                )
            docs &= {doc}
        rows = [self._doc_rows[d] for d in sorted(docs) if d in self._doc_rows]
        return np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)

    def validate_query(self, query: str) -> str:
        """The query as matched: checked (InputError with the fix), cleaned, simplified."""
        return self.queries.validate(query)

    def mentioned_regions(self, text: str) -> list[str]:
        """Regions named in ``text`` by full name or alias (see :class:`RegionNames`)."""
        return self.region_names.mentioned(text)

    def analyse_query(self, query: str) -> SearchQuery:
        """``query`` checked and its regions found, once: pass the result to :meth:`search`."""
        return self.queries.analyse(query)

    def search(
        self,
        query: str | SearchQuery,
        k: int = 10,
        *,
        region: str | None = None,
        doc: str | None = None,
        mode: str = "hybrid",
        region_aware: bool | None = None,
    ) -> list[Hit]:
        """Rank passages. In hybrid mode, regions named in the query steer the ranking: one named
        region adds its own ranked lists to the fusion (a boost, not a filter, so a question that
        names a region but is answered elsewhere still finds the answer); several named regions
        are searched one by one and interleaved, so a comparison gets the best passages of each
        rather than of whichever region dominates the wording.

        ``query`` is a :class:`SearchQuery` from :meth:`analyse_query` (or ``rag``'s question
        analysis), or plain text, analysed here.
        """
        if mode not in RETRIEVAL_MODES:
            raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(RETRIEVAL_MODES)}")
        if k < 1:
            raise InputError(f"k={k} must be at least 1")
        # Asking for more passages than the index holds (the default --k 10 on a small index)
        # simply returns all there are.
        k = min(k, len(self.contents.chunks))
        if not isinstance(query, SearchQuery):
            query = self.analyse_query(query)
        text = query.text
        if region_aware is None:
            region_aware = self.settings.region_aware
        named = list(query.regions) if region is None and doc is None else []
        if mode != "hybrid" or not region_aware or not named:
            return self._search_scope(text, k, mode, self.allowed_rows(region, doc))
        if len(named) == 1:
            return self._search_scope(text, k, mode, None, [self.allowed_rows(named[0])])
        per_region = [self._search_scope(text, k, mode, self.allowed_rows(name)) for name in named]
        return interleave(per_region, k)

    def _search_scope(
        self,
        text: str,
        k: int,
        mode: str,
        scope: np.ndarray | None,
        boosts: Sequence[np.ndarray] = (),
    ) -> list[Hit]:
        """One ranked list within ``scope``; each boost scope adds its own lists to the fusion."""
        scopes = [scope, *boosts]
        pool = max(k, self.settings.candidate_pool)
        if self._in_engine and mode != "dense":
            return self._engine_search(text, k, mode, scopes, pool)
        dense: list[list[tuple[int, float]]] = []
        lexical: list[list[tuple[int, float]]] = []
        if mode in ("hybrid", "dense"):
            query_vector = self.embedder.embed_queries([text])[0]
            dense = [self._dense(query_vector, pool, s) for s in scopes]
        if mode in ("hybrid", "bm25"):
            scores = self.contents.bm25.scores(self.tokenizer.tokenize(text))
            lexical = [rank_scores(scores, pool, s) for s in scopes]
        if mode == "dense":
            return [self._hit(r, s, "dense", dense_score=s) for r, s in dense[0][:k]]
        if mode == "bm25":
            return [self._hit(r, s, "bm25", bm25_score=s) for r, s in lexical[0][:k]]
        dense_scores = {row: score for ranking in dense for row, score in ranking}
        bm25_scores = {row: score for ranking in lexical for row, score in ranking}
        rankings = [[row for row, _ in ranking] for ranking in dense + lexical]
        if self.settings.phrase_ranking:
            rankings.append(self._phrase_ranking(text, dense_scores.keys() | bm25_scores.keys()))
        fused = reciprocal_rank_fusion(rankings, k=self.settings.rrf_k)
        return [
            self._hit(row, score, "hybrid", dense_scores.get(row), bm25_scores.get(row))
            for row, score in fused[:k]
        ]

    def _dense(
        self, vector: np.ndarray, k: int, rows: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """Dense (row, cosine) pairs within ``rows``, from whichever vector store holds them."""
        store = self.contents.vectors
        if isinstance(store, FaissVectorStore):
            # Local FAISS rows are the chunk rows (checked on load): no id round trip needed.
            return store.search_rows(vector, k, rows)
        if rows is not None and len(rows) == 0:
            return []
        docs, regions = self._store_filter(rows)
        return self._known_rows(store.search(vector, k, docs=docs, regions=regions))

    def _store_filter(self, rows: np.ndarray | None) -> tuple[set[str] | None, set[str] | None]:
        """A remote store's filter for ``rows``: (documents, regions), None meaning any."""
        if rows is None:
            return None, None
        docs = {self._doc_names[i] for i in np.unique(self._row_doc[rows])}
        regions = {self.documents[d].meta.region for d in docs}
        if sum(self._region_doc_counts[r] for r in regions) == len(docs):
            return None, regions  # whole regions: a short region filter, not a long doc list
        return docs, None

    def _known_rows(self, found: Iterable[tuple[str, float]]) -> list[tuple[int, float]]:
        """A remote store's (id, score) hits as rows; ids the loaded version does not know
        belong to an update in progress and are skipped."""
        return [(self._row_of_id[i], s) for i, s in found if i in self._row_of_id]

    @property
    def _in_engine(self) -> bool:
        """Whether the lexical side runs in the vector store (``lexical_backend = "milvus"``)."""
        return self.settings.lexical_backend == "milvus"

    def _engine_search(
        self, text: str, k: int, mode: str, scopes: Sequence[np.ndarray | None], pool: int
    ) -> list[Hit]:
        """BM25 (mode "bm25") or the whole hybrid search in Milvus, in one request: its BM25
        over its jieba analyzer, its dense search and its reciprocal-rank fusion, with planqa's
        phrase ranking over the candidates (chunk text planqa has); planqa's BM25 arrays are
        not used."""
        store = self.contents.vectors
        filters = [self._store_filter(s) for s in scopes if s is None or len(s)]
        if not filters:
            return []
        if mode == "bm25":
            docs, regions = filters[0]
            found = self._known_rows(store.text_search(text, k, docs=docs, regions=regions))
            return [self._hit(r, s, "bm25", bm25_score=s) for r, s in found]
        vector = self.embedder.embed_queries([text])[0]
        # Every candidate of the sub-requests, with its RRF score: Milvus ranks from 1 with
        # score sum(1 / (k + rank)), as planqa does, so the phrase ranking adds its own term
        # exactly as it would to planqa's own fusion.
        limit = min(MILVUS_MAX_LIMIT, 2 * pool * len(filters))
        rrf_k = self.settings.rrf_k
        fused = dict(
            self._known_rows(
                store.hybrid_search(vector, text, limit, scopes=filters, pool=pool, rrf_k=rrf_k)
            )
        )
        if self.settings.phrase_ranking:
            for rank, row in enumerate(self._phrase_ranking(text, fused), start=1):
                fused[row] += 1.0 / (rrf_k + rank)
        best = sorted(fused.items(), key=lambda pair: -pair[1])[:k]
        return [self._hit(r, s, "hybrid") for r, s in best]

    def _phrase_ranking(self, text: str, candidates: Iterable[int]) -> list[int]:
        """Candidates ordered by the longest run of the query they contain verbatim.

        BM25 scores words independently and embeddings blur names; a passage that repeats
        "全力支持南通理工学院研究生院建设" word for word is strong evidence neither captures.
        Only runs of at least MIN_PHRASE_CHARS count, so ordinary two-character words do not.
        """
        query = normalise_text(text)
        if len(query) < MIN_PHRASE_CHARS:
            return []
        # One regex over the query's runs of exactly the minimum length finds the few passages
        # worth measuring; most candidates share none (3.8 of 22.8 ms of a search before).
        shortest = {
            query[i : i + MIN_PHRASE_CHARS] for i in range(len(query) - MIN_PHRASE_CHARS + 1)
        }
        holds_one = re.compile("|".join(map(re.escape, shortest))).search
        lengths = {}
        for row in candidates:
            passage = normalise_text(self.contents.chunks[row].text)
            if holds_one(passage):
                lengths[row] = longest_shared_run(query, passage)
        return sorted(lengths, key=lambda row: (-lengths[row], row))

    def _hit(
        self,
        row: int,
        score: float,
        retriever: str,
        dense_score: float | None = None,
        bm25_score: float | None = None,
    ) -> Hit:
        return Hit(self.contents.chunks[row], float(score), retriever, dense_score, bm25_score)
