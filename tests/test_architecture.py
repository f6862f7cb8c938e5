"""House rules that code review would otherwise have to remember."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("corpus", "index", "rag", "ui", "eval")
#: ui -> rag -> index -> corpus, and eval -> rag. Only ui (the CLI's `planqa eval`) uses eval.
ALLOWED = {
    "corpus": {"corpus"},
    "index": {"corpus", "index"},
    "rag": {"corpus", "index", "rag"},
    "eval": {"corpus", "index", "rag", "eval"},
    "ui": set(PACKAGES),
}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_flow_one_way(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        forbidden = (imported_modules(path) & set(PACKAGES)) - ALLOWED[package]
        assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


def test_nothing_is_pickled() -> None:
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            assert not {"pickle", "dill", "joblib"} & imported_modules(path), path


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
