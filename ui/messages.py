"""Text the server sends to a browser: no server paths, and toasts that render as text.

* **No absolute paths.** Library errors name the file they are about (``/srv/planqa/runs/x is not a
  directory``), which is right on the command line and wrong in a web page: it tells whoever can
  reach the UI how the server's disk is laid out. :func:`scrub_paths` shows a path under the
  runs folder relative to it and any other absolute path as its last part.
* **Toasts are text.** gradio renders a ``gr.Error``/``gr.Warning``/``gr.Info`` message as
  (sanitised) HTML; a message quoting a question id from an uploaded gold file, or a user's
  input, would otherwise show its markup as formatting. :func:`toast_text` escapes it, so the
  toast shows ``<b>`` literally.
"""

from __future__ import annotations

import html
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

#: An absolute path of two or more parts (POSIX, or Windows with a drive). Not one right after
#: a word character, ``/``, ``:``, ``.`` or ``~``: "1/2", "和/或", URLs and relative paths stay.
_PART = r"[^\s/\\'\"`<>|，。；：、（）()\[\]]"
_POSIX_PATH = re.compile(rf"(?<![\w/:.~\\-])/{_PART}+(?:/{_PART}*)+")
_WINDOWS_PATH = re.compile(rf"(?<!\w)[A-Za-z]:\\(?:{_PART}|\\)+")
_TRAILING = ".,;:!?"


def _resolved(path: Path | None) -> Path | None:
    if path is None:
        return None
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return None


def shown_path(path: str | Path, runs_dir: str | Path | None = None) -> str:
    """How the UI names a server path: relative to the runs folder if inside it, else its name."""
    text = str(path)
    candidate = PureWindowsPath(text) if _WINDOWS_PATH.fullmatch(text) else Path(text)
    root = _resolved(Path(runs_dir)) if runs_dir is not None else None
    if root is not None and isinstance(candidate, Path):
        for form in (candidate, _resolved(candidate)):
            if form is not None and form.is_absolute() and form.is_relative_to(root):
                relative = form.relative_to(root)
                return relative.as_posix() if relative.parts else "."
    return candidate.name or PurePosixPath(text).name or "?"


def scrub_paths(message: str, runs_dir: str | Path | None = None) -> str:
    """``message`` with every absolute path replaced by :func:`shown_path`."""

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        stripped = found.rstrip(_TRAILING)
        return shown_path(stripped, runs_dir) + found[len(stripped) :]

    return _WINDOWS_PATH.sub(replace, _POSIX_PATH.sub(replace, str(message)))


def toast_text(message: str, runs_dir: str | Path | None = None) -> str:
    """A message for ``gr.Error``/``gr.Warning``/``gr.Info``: paths scrubbed, markup escaped
    (``<``, ``>`` and ``&``; quotes stay readable, they are not special in element text)."""
    return html.escape(scrub_paths(message, runs_dir), quote=False)
