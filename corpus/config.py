"""Settings for a user-facing entry point: every configuration mistake is an InputError.

``Settings(...)`` itself raises pydantic's ValidationError (library code and tests rely on that);
the CLI and the UI build their settings here instead, so ``PLANQA_MAX_QUERY_CHARS=abc`` or an
unknown ``PLANQA_LLM_PROVIDER`` is one ``error:`` line (exit 2) naming the variable or key, the
bad value and what is allowed — not a pydantic traceback. TOML syntax errors and unknown TOML keys
are already InputErrors (:class:`corpus.settings.CheckedTomlSource`).
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from planqa.corpus.errors import InputError
from planqa.corpus.settings import Settings, config_file_path

ENV_PREFIX = "PLANQA_"


def load_settings(**values: Any) -> Settings:
    """``Settings(**values)``, with validation errors turned into one InputError."""
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, values)) from None
    except SettingsError as exc:  # an environment value pydantic-settings could not parse
        raise InputError(f"{exc}; fix or unset that PLANQA_* variable") from None


def describe_validation_error(exc: ValidationError, values: dict[str, Any]) -> str:
    """One sentence per failing field: where the value came from, the value, what is allowed
    (pydantic's own "Input should be ..."), the default, and how to fix it."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = error.get("loc") or ()
        field = str(loc[0]) if loc else ""
        if not field:
            parts.append(str(error.get("msg", "invalid settings")))
            continue
        where, fix = _origin(field, error.get("input"), values)
        info = Settings.model_fields.get(field)
        default = ""
        if info is not None and info.default_factory is None:
            default = f" (default: {'unset' if info.default is None else repr(info.default)})"
        parts.append(f"{where}: {error.get('msg')}{default}; {fix}")
    return "; ".join(parts) or str(exc)


def _origin(field: str, value: Any, values: dict[str, Any]) -> tuple[str, str]:
    """``field=value`` as the user wrote it, found in Settings' precedence order (arguments,
    environment, TOML file), and the fix."""
    if field in values:
        return f"{field}={value!r}", "give another value"
    variable = f"{ENV_PREFIX}{field}".upper()
    if any(name.upper() == variable for name in os.environ):
        return f"{variable}={value!r}", f"fix or unset {variable}"
    path = config_file_path()
    if path is not None:
        try:
            with path.open("rb") as handle:
                keys = {str(key).lower(): str(key) for key in tomllib.load(handle)}
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            keys = {}
        if field.lower() in keys:
            key = keys[field.lower()]
            return f"{key} = {value!r} in {path}", f"fix or remove {key} in {path}"
    return f"{field}={value!r}", "fix the value"
