"""Run folders typed into the 评测 tab are confined to the runs folder.

The tab opens a run by the folder picked from 已有运行 or typed into 或运行目录路径, and saving a
verdict rewrites that folder's ``report.md``. The text comes from a browser (or from a request
made without one), so it may name any folder on the server: before this check, loading told
whether an arbitrary folder existed and saving rewrote ``report.md`` in any run-shaped folder.

:func:`confine_run_dir` resolves the text (following symlinks) and accepts it only inside the
runs folder: ``..``, an absolute path elsewhere and a link pointing out are refused alike, with
the same message whether or not the target exists and without echoing where it points.
"""

from __future__ import annotations

from pathlib import Path

from planqa.corpus.errors import InputError

#: The refusal names the typed folder's last part only, and says what the tab accepts. It keeps
#: the wording "not an evaluation run" of eval.rundir's own refusal.
OUTSIDE = (
    "{name} is not an evaluation run in the runs folder（只能打开运行文件夹中的运行：从“已有运行”"
    "中选择，或填写运行文件夹下的目录名，例如 ui-dev-…）"
)


def _inside(path: Path, root: Path) -> Path | None:
    """``path`` resolved if it lies strictly inside ``root`` (already resolved), else None."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte, a name too long
        return None
    if resolved != root and resolved.is_relative_to(root):
        return resolved
    return None


def confine_run_dir(text: str, runs_dir: str | Path) -> Path:
    """The run folder ``text`` names, resolved, if it is inside ``runs_dir``; InputError if not.

    A relative name is looked up in the runs folder first (``ui-dev-1a2b``), then in the working
    directory (``runs/ui-dev-1a2b``, the form ``planqa eval --out`` prints); an absolute path must
    itself lie inside. The first candidate that exists is returned, else the first inside one
    (opening it then reports what is missing, relative to the runs folder).
    """
    text = (text or "").strip()
    if not text:
        raise InputError("请选择一个已有运行，或填写运行目录的路径。")
    root = Path(runs_dir).resolve()
    typed = Path(text)
    candidates = [typed] if typed.is_absolute() else [Path(runs_dir) / typed, typed]
    inside = [found for found in (_inside(c, root) for c in candidates) if found is not None]
    for found in inside:
        if found.exists():
            return found
    if inside:
        return inside[0]
    raise InputError(OUTSIDE.format(name=typed.name or "该目录"))


def within_runs(path: str | Path, runs_dir: str | Path) -> bool:
    """Whether ``path`` (a listed run folder) resolves inside the runs folder: a link in it
    pointing elsewhere is not offered in the 已有运行 list."""
    return _inside(Path(path), Path(runs_dir).resolve()) is not None
