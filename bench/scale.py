"""Scale data for benchmarks and ANN tests: real text at 10K-100K chunks, realistic vectors to 1M.

The text side is real: the CRUD-RAG news articles in ``shared/scale`` (one article per line) plus
the bundled planning documents, repeated under new file names when more chunks are wanted. The
vector side cannot be real at scale on a 2-core machine (the default model embeds ~4 chunks/s, so
100K chunks would take ~6 hours). Instead a few thousand chunks are embedded for real, cached as
``.npy``, and larger vector sets are drawn from a kernel density estimate of that sample: each
synthetic vector is a real vector plus Gaussian noise shaped by the sample's own covariance, then
normalised. That keeps the anisotropy and clustering of real e5 embeddings, which matter for HNSW
and IVF recall; uniform random unit vectors would not (they have no neighbourhood structure).
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from planqa.corpus.chunking import CHUNKER_VERSION, Chunk
from planqa.corpus.documents import Document, DocumentMeta
from planqa.corpus.loader import load_corpus
from planqa.corpus.settings import BUNDLED_CORPUS_DIR, Settings
from planqa.index.builder import chunk_documents, embedding_text
from planqa.index.embedder import Embedder, make_embedder

#: ``shared/scale`` beside the repository (a fresh CI clone has ``shared/`` next to it).
DEFAULT_SCALE_DIR = Path(__file__).resolve().parents[2] / "shared" / "scale"
#: News articles get one pseudo-region per source file, so a region filter keeps ~8% of rows.
NEWS_REGION_PREFIX = "新闻语料"


def bench_cache_dir(settings: Settings) -> Path:
    return settings.cache_dir / "bench"


def news_documents(scale_dir: Path = DEFAULT_SCALE_DIR, copy: int = 0) -> list[Document]:
    """One Document per article line; ``copy`` > 0 renames them so repeated text gets new ids."""
    files = sorted(Path(scale_dir).glob("*.txt"))
    if not files:
        raise FileNotFoundError(
            f"no scale corpus in {scale_dir}; pass --scale-dir pointing at shared/scale"
        )
    documents = []
    for number, path in enumerate(files, start=1):
        region = f"{NEWS_REGION_PREFIX}{number:02d}"
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle):
                text = line.strip()
                if not text:
                    continue
                name = f"{path.stem}/{line_no:05d}" + (f"~{copy}" if copy else "")
                title = text.split("正文：", 1)[-1][:24]
                meta = DocumentMeta(file=name, region=region, title=title)
                documents.append(Document(meta, text))
    return documents


def planning_documents() -> list[Document]:
    return load_corpus([BUNDLED_CORPUS_DIR]).documents


@dataclass
class ScaleCorpus:
    documents: list[Document]
    chunks: list[Chunk]
    chunk_seconds: float


def iter_scale_documents(scale_dir: Path) -> Iterator[Document]:
    """Planning documents first, then the news corpus again and again under new names."""
    yield from planning_documents()
    copy = 0
    while True:
        yield from news_documents(scale_dir, copy)
        copy += 1


def scale_corpus(target_chunks: int, settings: Settings, scale_dir: Path) -> ScaleCorpus:
    """Whole documents, in order, until at least ``target_chunks`` chunks (timed chunking)."""
    documents: list[Document] = []
    chunks: list[Chunk] = []
    started = time.perf_counter()
    for document in iter_scale_documents(scale_dir):
        if len(chunks) >= target_chunks:
            break
        documents.append(document)
        chunks.extend(chunk_documents([document], settings))
    return ScaleCorpus(documents, chunks, time.perf_counter() - started)


def _cache_key(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12]


def sample_embeddings(
    settings: Settings,
    scale_dir: Path = DEFAULT_SCALE_DIR,
    n: int = 3000,
    seed: int = 0,
    progress: bool = True,
) -> tuple[np.ndarray, float]:
    """Real-model vectors of ``n`` random news chunks, cached; also the measured chunks/s.

    ``settings.max_seq_length`` applies (the bench embeds the sample at 128 tokens to keep it to a
    few minutes; the vector *distribution* barely depends on it, throughput is measured apart).
    """
    embedder = make_embedder(settings, progress=progress)
    key = _cache_key(
        embedder.model_id,
        settings.max_seq_length,
        CHUNKER_VERSION,
        settings.chunk_max_chars,
        n,
        seed,
    )
    cache = bench_cache_dir(settings) / f"sample-{key}.npy"
    rate_file = cache.with_suffix(".rate.txt")
    if cache.is_file() and rate_file.is_file():
        return np.load(cache, allow_pickle=False), float(rate_file.read_text())
    # One random chunk of each of n random articles: cheap (no need to chunk the whole corpus).
    documents = news_documents(scale_dir)
    rng = np.random.default_rng(seed)
    texts = []
    for doc_row in rng.choice(len(documents), size=min(n, len(documents)), replace=False):
        chunks = chunk_documents([documents[int(doc_row)]], settings)
        texts.append(embedding_text(chunks[int(rng.integers(len(chunks)))]))
    embedder.embed_queries(["预热"])
    started = time.perf_counter()
    vectors = embedder.embed_passages(texts, progress=progress)
    rate = len(texts) / (time.perf_counter() - started)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors.astype(np.float32), allow_pickle=False)
    rate_file.write_text(f"{rate:.4f}")
    return vectors, rate


class KernelDensity:
    """A kernel density estimate of a sample of unit vectors, to draw realistic synthetic ones.

    x = normalise(sample[j] + noise * L z), z ~ N(0, I), L L^T = covariance of the sample.
    ``noise`` = 0.6 is calibrated on the real sample (3,000 e5 vectors of news chunks): between
    2,500 synthetic vectors and 500 synthetic queries the mean nearest-neighbour cosine is 0.92,
    as between 2,500 real vectors and 500 held-out real ones (0.916); 0.5 gives 0.934 (too
    clustered, which flatters ANN recall), 0.7 gives 0.906.
    """

    def __init__(self, sample: np.ndarray, noise: float = 0.6) -> None:
        self.sample = np.asarray(sample, dtype=np.float32)
        self.noise = noise
        centred = self.sample - self.sample.mean(axis=0)
        # Covariance square root through the SVD of the centred sample (no inverse needed).
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        self.scale = ((singular / np.sqrt(max(len(sample) - 1, 1)))[:, None] * vt).astype(
            np.float32
        )

    @property
    def dimension(self) -> int:
        return int(self.sample.shape[1])

    def draw(self, anchors: np.ndarray, z: np.ndarray) -> np.ndarray:
        rows = self.sample[anchors] + self.noise * (z.astype(np.float32) @ self.scale)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        return rows

    def vectors(self, n: int, seed: int = 1, batch: int = 65_536) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dimension), dtype=np.float32)
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            anchors = rng.integers(0, len(self.sample), size=stop - start)
            out[start:stop] = self.draw(
                anchors, rng.standard_normal((stop - start, len(self.scale)))
            )
        return out

    def for_texts(self, texts: list[str]) -> np.ndarray:
        """One vector per text, the same every time for the same text (seeded by its hash)."""
        anchors = np.empty(len(texts), dtype=np.int64)
        z = np.empty((len(texts), len(self.scale)), dtype=np.float32)
        for i, text in enumerate(texts):
            rng = np.random.default_rng(zlib.crc32(text.encode("utf-8")))
            anchors[i] = rng.integers(0, len(self.sample))
            z[i] = rng.standard_normal(len(self.scale))
        return self.draw(anchors, z)


def synthetic_vectors(sample: np.ndarray, n: int, seed: int = 1, noise: float = 0.6) -> np.ndarray:
    return KernelDensity(sample, noise).vectors(n, seed)


class SyntheticPassageEmbedder:
    """The real model for queries, kernel-density vectors for passages (``real_passages`` off).

    Lets a benchmark build 100K-chunk indexes with every other stage real (chunking, BM25, FAISS,
    the store) and search them with real query embeddings. Its model id says "synthetic", so such
    an index can never be mistaken for a real one.
    """

    def __init__(self, real: Embedder, density: KernelDensity) -> None:
        self.real = real
        self.density = density
        self.real_passages = False

    @property
    def model_id(self) -> str:
        return f"{self.real.model_id}|synthetic-passages"

    @property
    def dimension(self) -> int:
        return self.real.dimension

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.real.embed_queries(texts)

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if self.real_passages:
            return self.real.embed_passages(texts, progress=progress)
        return self.density.for_texts(texts)


def main() -> None:
    """``python -m bench.scale`` embeds and caches the real sample (minutes; run it niced)."""
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    seq = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    settings = Settings(max_seq_length=seq)
    vectors, rate = sample_embeddings(settings, n=n)
    print(f"{len(vectors)} vectors at max_seq_length={seq}: {rate:.2f} chunks/s")


if __name__ == "__main__":
    main()
