"""Text the server sends to a browser: no server paths, and toasts that render as text.

* **No absolute paths.** Library errors name the file they are about (``/srv/planqa/runs/x is not a
  directory``), which is right on the command line and wrong in a web page: it tells whoever can
  reach the UI how the server's disk is laid out. :func:`scrub_paths` shows a path under the
  runs folder relative to it and any other absolute path as its last part.
* **Toasts are text.** gradio renders a ``gr.Error``/``gr.Warning``/``gr.Info`` message as
  (sanitised) HTML; a message quoting a question id from an uploaded gold file, or a user's
  input, would otherwise show its markup as formatting. :func:`toast_text` escapes it, so the
  toast shows ``<b>`` literally.
* **Chinese only.** Core errors carry English text for the command line (with option and
  environment-variable names); :func:`user_message` gives the page Chinese text chosen by the
  error's class, or by a known case such as a too-long question.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath

from planqa.corpus.errors import DocumentError, IndexStoreError, InputError, ModelError, PlanqaError

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


# --------------------------------------------------------------------------- errors in Chinese

#: What a user can do about each kind of core error, when no known case below says more.
#: The core's messages are English and meant for the command line (they name options and
#: environment variables); the web page shows these instead, and the server log keeps the
#: original for staff.
CLASS_MESSAGES: dict[type[PlanqaError], str] = {
    InputError: "输入无法使用，请检查后重试。",
    DocumentError: "这份文件无法读取（可能已损坏、为空或不是文本），请联系管理员。",
    IndexStoreError: "索引暂不可用（缺失、损坏或与当前设置不符），请联系管理员重建索引。",
    ModelError: "检索模型无法加载，请联系管理员。",
}
GENERIC_MESSAGE = "请求未能完成，请重试或换个问法。"


def query_too_long(length: int, limit: int) -> str:
    """The message for a question over the length limit (checked before the core sees it)."""
    return f"问题过长（{length} 字，上限 {limit} 字），请缩短后重试。"


#: Why an uploaded document was not indexed (the loader's and ui/corpus_writer.py's refusals),
#: for the 文档 tab's 知识库 status table: each tells staff what to change in the file.
_DOCUMENT_CASES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"the file is empty|has no text after decoding"),
        lambda m: "文件是空的（没有文字），请检查后重新上传。",
    ),
    (
        re.compile(r"cannot detect the text encoding|bytes are not valid"),
        lambda m: "无法识别文件的文字编码，请另存为 UTF-8 编码后重新上传。",
    ),
    (re.compile(r"looks binary"), lambda m: "这不是文本文件（内容像是二进制数据），请检查文件。"),
    (
        re.compile(r"no extractable text in this PDF|a scanned \.pdf|scanned page\(s\) without"),
        lambda m: "这份 PDF 没有文字层（可能是扫描件），请先转成可复制文字的 PDF 再上传。",
    ),
    (
        re.compile(r"cannot (?:extract text from|read) (?:this )?\.?pdf"),
        lambda m: "这份 PDF 已损坏或无法读取，请检查文件后重新上传。",
    ),
    (
        re.compile(r"\.docx file|not a valid \.docx|not a Word \.docx"),
        lambda m: "无法从这份 DOCX 文件中提取文字（可能已损坏），请检查文件后重新上传。",
    ),
    (
        re.compile(r"web page|\.mhtml archive|characters of markup"),
        lambda m: "没有从网页文件中提取到正文，请检查文件后重新上传。",
    ),
    (
        re.compile(r"no body text, only a table of contents"),
        lambda m: "文件只有目录、标题或封面，没有正文，请上传完整的文件。",
    ),
    (
        re.compile(r"MiB is over the (\d+) MiB limit|larger than the ([\d,]+)-byte limit"),
        lambda m: "文件过大，请拆分后上传。",
    ),
    (
        re.compile(r"unsupported file type|cannot store an upload named"),
        lambda m: "不支持这种文件类型，请上传文本、DOCX、PDF 或网页文件。",
    ),
    (
        re.compile(r"is the corpus manifest, not a document"),
        lambda m: "这是知识库的清单文件，不能作为文件上传。",
    ),
    (
        re.compile(r"a document named (.+?) already exists"),
        lambda m: f"已有同名文件「{m.group(1)}」；要替换它，请勾选“替换同名文件”后重新上传。",
    ),
    (
        re.compile(r"(.+?) is already being indexed or removed"),
        lambda m: f"文件「{m.group(1)}」正在入库或删除，请等这项任务完成后再试。",
    ),
    (
        re.compile(r"is the index's only document"),
        lambda m: "这是知识库中唯一的文件，不能删除（知识库至少要有一份文件）。",
    ),
    (
        re.compile(r"no document named (.+?) in the index"),
        lambda m: f"知识库中没有文件{_quoted(m.group(1))}（可能已被删除），请刷新页面。",
    ),
    (
        re.compile(r"cannot write to the corpus folder"),
        lambda m: "无法写入文件夹（磁盘已满或没有写入权限），请联系管理员。",
    ),
]

#: Known core messages with their Chinese text; a fallback only — the UI checks the common
#: cases (an empty or too-long query) itself before calling the core.
_KNOWN_CASES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"the query has (\d+) characters, over the limit of (\d+)"),
        lambda m: query_too_long(int(m.group(1)), int(m.group(2))),
    ),
    (re.compile(r"the (?:query|question) is empty"), lambda m: "请输入问题或关键词。"),
    (
        re.compile(r"the query (.+) has no words to search for"),
        lambda m: f"{_quoted(m.group(1))}中没有可检索的词，请换个说法。",
    ),
    (
        re.compile(r"unknown region (.+?); regions"),
        lambda m: f"没有名为{_quoted(m.group(1))}的地区，请从列表中选择。",
    ),
    (
        re.compile(r"unknown document (.+?); documents"),
        lambda m: f"找不到文件{_quoted(m.group(1))}（索引可能已更新），请刷新页面。",
    ),
    (re.compile(r"unknown mode"), lambda m: "不支持这种检索方式，请刷新页面后重试。"),
    # The 评测 tab's sources (ui.paths, eval.gold, eval.review).
    (
        re.compile(r"^(\S+) is not an evaluation run"),
        lambda m: (
            f"{_quoted(m.group(1))}不是评测运行：只能打开运行文件夹中的运行"
            "（从“已有运行”中选择，或填写运行文件夹下的目录名）。"
        ),
    ),
    (
        re.compile(r"(\d+) problem\(s\) in the gold file"),
        lambda m: (
            f"金标文件有 {m.group(1)} 处问题：每行应是一个含 id、question 等字段的"
            " JSON 对象，请修改后重新上传。"
        ),
    ),
    (re.compile(r"the gold file has no items"), lambda m: "金标文件里没有题目。"),
    (re.compile(r"cannot read gold file"), lambda m: "金标文件无法读取，请保存为 UTF-8 编码。"),
    (
        re.compile(r"(\d+) evidence quote\(s\) are not in the indexed documents"),
        lambda m: (
            f"金标文件中有 {m.group(1)} 条证据引文不在已索引的文件中，"
            "请修改金标文件或先索引它引用的文件。"
        ),
    ),
    (re.compile(r"is not a complete run"), lambda m: "这个运行不完整，请删除后重新载入。"),
    (re.compile(r"has no questions to review"), lambda m: "这个运行没有可评的题目。"),
    (
        re.compile(r"question (.+?) is not in run"),
        lambda m: f"题目{_quoted(m.group(1))}不在本次运行中。",
    ),
    *_DOCUMENT_CASES,
]
#: Markup and file names are data in a message; what is left decides whether it is Chinese.
_DATA_IN_MESSAGE = re.compile(r"<[^>]*>|\S+\.[A-Za-z]{2,5}\b")


def is_chinese(message: str) -> bool:
    """Whether ``message`` is already Chinese text for a user (the UI's own errors are): it
    has Han characters and, less markup and file names, no Latin word of three letters."""
    rest = _DATA_IN_MESSAGE.sub(" ", scrub_paths(message))
    return bool(re.search(r"[\u4e00-\u9fff]", rest)) and not re.search(r"[A-Za-z]{3,}", rest)


def _quoted(python_repr: str) -> str:
    text = python_repr.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return f"「{text}」"


def user_message(exc: PlanqaError) -> str:
    """A core error as Chinese text for the page: a known case, the message itself when it is
    Chinese already (the UI's own errors), else its class's message."""
    message = str(exc)
    for pattern, render in _KNOWN_CASES:
        match = pattern.search(message)
        if match:
            return render(match)
    if is_chinese(message):  # raised by the UI itself, already for a user
        return message
    for cls in type(exc).__mro__:
        if cls in CLASS_MESSAGES:
            return CLASS_MESSAGES[cls]
    return GENERIC_MESSAGE
