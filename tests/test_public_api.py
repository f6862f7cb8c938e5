"""The public API is ``planqa`` itself: every exported name resolves, and importing it is cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import planqa


def test_every_exported_name_resolves_to_its_defining_module() -> None:
    assert sorted(planqa.__all__) == sorted(planqa._EXPORTS)
    for name in planqa.__all__:
        value = getattr(planqa, name)
        assert value.__module__ == planqa._EXPORTS[name], name
    with pytest.raises(AttributeError):
        _ = planqa.no_such_name


def test_importing_planqa_loads_no_model_library() -> None:
    """The CLI's --help and the web server's start import planqa first: it must stay light."""
    code = (
        "import sys, planqa; heavy = {'torch', 'transformers', 'faiss', 'gradio', 'langchain_core'}"
        "; print(sorted(heavy & set(sys.modules)))"
    )
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
