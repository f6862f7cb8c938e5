"""The chat model an LLM answer is written by: a registry from provider name to factory.

Each provider's SDK is imported inside its factory, so extraction-only runs never load
``langchain_openai`` or ``langchain_ollama``. Adding a provider means adding a factory to
:data:`CHAT_MODEL_FACTORIES` and its name to ``Settings.llm_provider``; the configuration check
(:func:`require_config`) runs before any question, so a missing setting is reported at once, not
when the first answer is due.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from planqa.corpus.errors import InputError
from planqa.corpus.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = [
    "CHAT_MODEL_FACTORIES",
    "MAX_ANSWER_TOKENS",
    "ChatModelFactory",
    "make_chat_model",
    "require_config",
]

#: A cap on generated tokens: answers are ≤ 3 sentences, and a looping small model must stop.
MAX_ANSWER_TOKENS = 384

_CONFIG_HELP = (
    "set PLANQA_LLM_PROVIDER=openai (any OpenAI-compatible server: vLLM, DeepSeek, "
    "Qwen/DashScope, llama.cpp) or PLANQA_LLM_PROVIDER=ollama, PLANQA_LLM_MODEL=<model name>, "
    "PLANQA_LLM_BASE_URL=<server URL, e.g. http://127.0.0.1:8012/v1> and, if the server needs "
    "a key, PLANQA_LLM_API_KEY_ENV=<name of the environment variable that holds it> "
    "(or the same keys, lower-case without the prefix, in planqa.toml)"
)

#: Builds a provider's chat model from checked settings (``llm_model`` is set).
ChatModelFactory = Callable[[Settings], "BaseChatModel"]


def _openai(settings: Settings) -> BaseChatModel:
    """Every OpenAI-compatible server (vLLM, DeepSeek, DashScope, llama.cpp). A local server
    needs no key, so a placeholder is sent when the key variable is unset."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=os.environ.get(settings.llm_api_key_env) or "not-needed",
        timeout=settings.llm_timeout_s,
        temperature=settings.llm_temperature,
        max_retries=1,
        max_tokens=MAX_ANSWER_TOKENS,
    )


def _ollama(settings: Settings) -> BaseChatModel:
    from langchain_ollama import ChatOllama

    return ChatOllama(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        temperature=settings.llm_temperature,
        num_predict=MAX_ANSWER_TOKENS,
        client_kwargs={"timeout": settings.llm_timeout_s},
    )


#: Provider name (``Settings.llm_provider``) → the factory that builds its chat model.
CHAT_MODEL_FACTORIES: dict[str, ChatModelFactory] = {"openai": _openai, "ollama": _ollama}


def require_config(settings: Settings) -> None:
    """Fail before any question is asked, with the exact settings that are missing."""
    if settings.llm_provider is None:
        raise InputError(f"LLM answering is not configured: {_CONFIG_HELP}")
    if settings.llm_provider not in CHAT_MODEL_FACTORIES:
        raise InputError(
            f"unknown LLM provider {settings.llm_provider!r}; choose one of "
            f"{', '.join(CHAT_MODEL_FACTORIES)}"
        )
    if not settings.llm_model:
        raise InputError(
            f"PLANQA_LLM_PROVIDER is {settings.llm_provider!r} but PLANQA_LLM_MODEL is not set; "
            f"{_CONFIG_HELP}"
        )
    if (
        settings.llm_provider == "openai"
        and not settings.llm_base_url
        and not os.environ.get(settings.llm_api_key_env)
    ):
        raise InputError(
            "PLANQA_LLM_BASE_URL is not set, so the OpenAI API itself would be used, but the "
            f"environment variable {settings.llm_api_key_env} (PLANQA_LLM_API_KEY_ENV) holds no "
            "key; set PLANQA_LLM_BASE_URL to your server (e.g. http://127.0.0.1:8012/v1) or "
            f"export {settings.llm_api_key_env}"
        )


def make_chat_model(settings: Settings) -> BaseChatModel:
    """The configured chat model, built by its provider's factory once the settings check out."""
    require_config(settings)
    assert settings.llm_provider is not None  # checked above; narrows the type
    return CHAT_MODEL_FACTORIES[settings.llm_provider](settings)
