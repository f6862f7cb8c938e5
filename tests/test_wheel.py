"""The wheel as a user gets it: built, installed into a fresh virtualenv, run outside the checkout.

An editable install hides packaging mistakes (a data file left out of package-data, a module that
imports the checkout's bench/ or tests/, a path computed from the repository layout): everything
is found in /work/main anyway. Here the wheel is built from a copy of the tracked files, installed
with ``pip install --no-deps --no-index`` into a new venv, and ``planqa index``, ``eval`` and
``ask`` run from a temporary folder. No network: the new venv borrows the project venv's
dependencies through a ``.pth`` path line (path lines only extend sys.path; the project venv's
editable finder, which a ``.pth`` *import* line would run, is never loaded).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
IC_QUESTION = "哪个区规划了集成电路测试产业园？"
#: The repository's folders that must only exist inside the wheel as planqa.* (or not at all).
NOT_TOP_LEVEL = {"corpus", "index", "rag", "ui", "eval", "bench", "tests"}


def source_copy(target: Path) -> Path:
    """Tracked and untracked-but-not-ignored files only: a stale build/ or egg-info in the
    checkout (which setuptools would reuse) cannot leak into the wheel."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: int = 600):
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = source_copy(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), "."],
        cwd=source,
        env=dict(os.environ),
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = out.glob("planqa-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel, its dependencies borrowed from the project venv."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The wheel first, with nothing else on the new venv's path, so pip sees no planqa to replace.
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    install = run([*pip, "install", "--no-deps", "--no-index", str(wheel)], cwd=venv, env=env)
    assert install.returncode == 0, install.stdout + install.stderr
    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=venv,
            env=env,
        ).stdout.strip()
    )
    (site / "zz_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_the_wheel_holds_planqa_and_its_data_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert not top & NOT_TOP_LEVEL, sorted(top & NOT_TOP_LEVEL)
    assert not [name for name in names if name.startswith(("planqa/bench/", "planqa/tests/"))]
    for prefix, suffix in (
        ("planqa/eval/gold/", ".jsonl"),
        ("planqa/corpus/data/", ""),
        ("planqa/ui/static/", ""),
    ):
        assert [n for n in names if n.startswith(prefix) and n.endswith(suffix)], prefix
    assert "planqa/eval/gold/dev.jsonl" in names
    # The benchmarks and the LLM test harness stay in the checkout.
    for moved in ("bench", "backend_bench", "scale", "scale_bench", "load_test", "llm_server"):
        assert f"planqa/eval/{moved}.py" not in names


def test_the_installed_wheel_indexes_evaluates_and_answers(
    installed: Path, tmp_path: Path
) -> None:
    python, planqa = installed / "bin" / "python", installed / "bin" / "planqa"
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {
        "PLANQA_EMBEDDING_MODEL": "hash",
        "PLANQA_INDEX_DIR": str(tmp_path / "index"),
        "PLANQA_CACHE_DIR": str(tmp_path / "cache"),
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
    }
    where = run([str(python), "-c", "import planqa; print(planqa.__file__)"], cwd=work, env=env)
    assert where.returncode == 0, where.stderr
    origin = Path(where.stdout.strip()).resolve()
    assert origin.is_relative_to(installed.resolve()), origin  # not the editable checkout
    assert not origin.is_relative_to(REPO_ROOT)

    indexed = run([str(planqa), "index", "--json"], cwd=work, env=env)
    assert indexed.returncode == 0, indexed.stderr
    report = json.loads(indexed.stdout)
    assert report["documents"] == 5 and report["chunks"] > 0

    evaluated = run([str(planqa), "eval", "--json", "--out", str(work / "run")], cwd=work, env=env)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["directory"] == str(work / "run")
    assert (work / "run" / "report.md").is_file() and (work / "run" / "metrics.json").is_file()

    asked = run([str(planqa), "ask", IC_QUESTION, "--json"], cwd=work, env=env)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["citations"] and not answer["abstained"]

    bench = run([str(planqa), "bench", "--json"], cwd=work, env=env)
    assert bench.returncode == 2 and bench.stdout == ""
    assert "source checkout" in bench.stderr and "Traceback" not in bench.stderr
