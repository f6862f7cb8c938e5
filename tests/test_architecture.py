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


def absolute_imports(path: Path) -> set[str]:
    """Full dotted names of every absolute import in a file, at any depth (a lazy import inside
    a function is a dependency too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every absolute import; planqa's own rooms by their room name."""
    names = set()
    for name in absolute_imports(path):
        parts = name.split(".")
        names.add(parts[1] if parts[0] == "planqa" and len(parts) > 1 else parts[0])
    return names


def source_files() -> list[Path]:
    return [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]


def module_name(path: Path) -> str:
    return "planqa." + ".".join(path.relative_to(ROOT).with_suffix("").parts)


def checkout_only_modules() -> set[str]:
    """Top-level names that exist only in a checkout: bench and the modules in tests/ (the LLM
    harness llm_server, fakes, html_checks, ...), which pytest puts on sys.path."""
    return {"bench", "tests", *(path.stem for path in ROOT.glob("tests/*.py"))}


def test_nothing_in_planqa_imports_the_benchmarks_or_the_tests() -> None:
    """bench/ and tests/ are not in the wheel: an import of them anywhere in planqa, lazy or
    not, would break the installed product (and pass in the checkout, where they are found).
    ``planqa bench`` loads bench through importlib (ui/cli.py bench_module)."""
    assert (ROOT / "bench" / "__init__.py").is_file()
    assert "llm_server" in checkout_only_modules()
    forbidden = checkout_only_modules()
    for path in [*source_files(), ROOT / "__init__.py"]:
        found = {name for name in absolute_imports(path) if name.split(".")[0] in forbidden}
        assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}"


def test_the_benchmarks_use_planqa_as_installed() -> None:
    """bench imports planqa.* (never a bare corpus/index/...), so it measures the product's
    code under the one name a user imports it by."""
    paths = list(ROOT.glob("bench/*.py"))
    assert paths
    for path in paths:
        names = {name.split(".")[0] for name in absolute_imports(path)}
        bare = names & set(PACKAGES)
        assert not bare, f"{path.relative_to(ROOT)} imports {sorted(bare)} without planqa."


def test_the_wheel_ships_planqa_without_the_benchmarks() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = config["tool"]["setuptools"]["packages"]
    assert "planqa.eval" in packages
    assert not [name for name in packages if "bench" in name.split(".")]


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_flow_one_way(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        forbidden = (imported_modules(path) & set(PACKAGES)) - ALLOWED[package]
        assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


def test_one_import_name() -> None:
    """Installed, planqa is planqa.* only: code imports its rooms as planqa.corpus, never as a
    bare top-level corpus (which would collide with any other package of that name)."""
    for path in [*source_files(), *ROOT.glob("tests/*.py")]:
        bare = {name for name in absolute_imports(path) if name.split(".")[0] in PACKAGES}
        assert not bare, f"{path.relative_to(ROOT)} imports {sorted(bare)} without planqa."


def test_no_import_cycles() -> None:
    """Module imports form no cycle, lazy imports included: each module can be read knowing only
    the ones below it."""
    modules = {module_name(path): path for path in source_files()}
    graph = {
        name: {
            target
            for imported in absolute_imports(path)
            for target in (imported, imported.rsplit(".", 1)[0])
            if target in modules and target != name
        }
        for name, path in modules.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


#: Modules whose loading can run code stored in the data.
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "joblib", "cloudpickle", "shelve", "marshal"}


def unsafe_loads(path: Path) -> list[str]:
    """Calls that unpickle or run code from files: torch.load, pandas.read_pickle, and any call
    passing allow_pickle=True, weights_only=False or trust_remote_code=True."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
        if (owner, name) == ("torch", "load") or name in {"read_pickle", "load_pickle"}:
            found.append(f"line {node.lineno}: {owner}.{name}()")
        for keyword in node.keywords:
            risky = {"allow_pickle": True, "weights_only": False, "trust_remote_code": True}
            value = keyword.value
            if (
                keyword.arg in risky
                and isinstance(value, ast.Constant)
                and value.value is risky[keyword.arg]
            ):
                found.append(f"line {node.lineno}: {keyword.arg}={value.value}")
    return found


def test_nothing_is_pickled() -> None:
    """Indexes and models may come from anywhere: loading them must never execute code."""
    for path in source_files():
        assert not UNSAFE_MODULES & imported_modules(path), path
        assert not unsafe_loads(path), (path, unsafe_loads(path))


def test_the_unsafe_load_check_catches_what_it_should(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import numpy as np, torch\n"
        "np.load('a.npy', allow_pickle=True)\n"
        "torch.load('m.pt')\n"
        "np.load('b.npy', allow_pickle=False)\n"
        "AutoModel.from_pretrained('x', trust_remote_code=True)\n",
        encoding="utf-8",
    )
    assert [entry.split(":")[0] for entry in unsafe_loads(sample)] == ["line 2", "line 3", "line 5"]


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_installed_package_carries_its_data_files() -> None:
    """A non-editable install (pip install .) must ship the gold sets and the gazetteer:
    `planqa eval` without a path, `planqa bench` and metadata inference read them."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[1]
    package_data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]
    needed = [*root.glob("eval/gold/*.jsonl"), *root.glob("corpus/data/*")]
    assert needed
    for path in needed:
        package, rest = path.relative_to(root).as_posix().split("/", 1)
        patterns = package_data.get(f"planqa.{package}", [])
        assert any(fnmatch.fnmatch(rest, p) for p in patterns), f"{path} is not package data"


def test_tests_use_a_session_cache_not_the_users(isolated_cache: Path) -> None:
    """conftest's isolated_cache: Settings in this process and in a subprocess a test starts
    both put models, the embedding cache and the default index in the session's folder."""
    from planqa.corpus.settings import Settings, default_cache_dir

    settings = Settings()
    assert settings.cache_dir == isolated_cache != default_cache_dir()
    assert settings.resolved_index_dir == isolated_cache / "index"
    code = "from planqa.corpus.settings import Settings; print(Settings().cache_dir)"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert Path(child.stdout.strip()) == isolated_cache
