"""Guards that keep one hostile or broken file from hurting the load of a whole corpus.

The loader's only size check was the file on disk, yet a 148 KB .docx whose ``word/document.xml``
inflates to 50 MB took 101 s and 1 GB of memory to read. So before a parser sees a file this
module checks what the file would grow into: the inflated size of every zip member (declared in
the central directory, then counted while actually inflating, since the declaration may lie), the
characters extracted, and the seconds spent. Exceeding one is a DocumentError naming the file,
the limit and the setting that raises it; the loader then skips that file like any unreadable one.

File names reach one-line messages here too (:func:`shown`): a name holding a newline printed as
two "skipped" lines, one of them looking like a message of its own.

These live apart from corpus/loader.py so that the loader stays a readable list of steps.
"""

from __future__ import annotations

import copy
import io
import signal
import threading
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from pathlib import PurePath
from typing import TYPE_CHECKING, TypeVar

from planqa.corpus.errors import DocumentError

if TYPE_CHECKING:
    from planqa.corpus.settings import Settings

T = TypeVar("T")

#: Members are inflated in blocks of this size, so a bomb costs one block of memory to refuse.
_BLOCK = 1 << 20
#: Unicode categories never printed as they are: controls, format characters (e.g. U+202E, which
#: reverses the rest of a line), surrogates (undecodable bytes of a name), private and unassigned
#: code points, and the line and paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def shown(name: str | PurePath) -> str:
    """``name`` made safe for a one-line message: control and other invisible characters are
    written as ``repr`` writes them (``\\n``, ``\\x1b``, ``\\u202e``); Chinese and spaces stay.

    Backslashes are left alone, so ``shown(shown(x)) == shown(x)`` and a reason that already
    holds a shown name can be passed through again safely.
    """
    text = str(name)
    if text.isprintable():
        return text
    # repr escapes these as \n, \x1b, \u202e, \udcff (an undecodable byte of the name)...
    return "".join(
        repr(ch)[1:-1] if unicodedata.category(ch) in _ESCAPED_CATEGORIES else ch for ch in text
    )


# --- zip-based formats (.docx) ---------------------------------------------------------------


def check_zip(data: bytes, source: str, settings: Settings) -> None:
    """Refuse a zip whose members would inflate past the limits, before any parser reads it.

    Every member counts towards ``max_unzipped_bytes`` (python-docx holds every part in memory,
    images included); members that are XML, which the parser turns into a tree about twenty
    times their size, also face ``max_unzipped_xml_bytes`` each. The declared sizes are checked
    first (free: the central directory); then each member is inflated block by block, up to the
    limits and no further than it declares, which catches a header that lies about its size.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DocumentError(f"{source}: not a valid {_suffix(source)} (zip) file ({exc})") from exc
    declared = sum(member.file_size for member in members)
    if declared > settings.max_unzipped_bytes:
        raise _too_big(
            source, f"its parts declare {_mib(declared)} inflated", settings, "max_unzipped_bytes"
        )
    for member in members:
        _inflate(archive, member, source, settings)


def _inflate(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, source: str, settings: Settings
) -> None:
    """Inflate ``member``, discarding the bytes, and refuse it at the first block past its
    declared size. Declared sizes are within the limits (the XML one is
    checked here, on the first block, which tells XML apart), so the actual bytes are too.
    """
    name = shown(member.filename)
    xml_limit = settings.max_unzipped_xml_bytes
    # A copy declaring more than the limit, so that zipfile does not stop at the declared size
    # (and blame the CRC): the actual bytes are counted here, not taken on trust.
    unbounded = copy.copy(member)
    unbounded.file_size = max(member.file_size, settings.max_unzipped_bytes) + _BLOCK
    size = 0
    is_xml = False
    try:
        with archive.open(unbounded) as stream:
            while block := stream.read(_BLOCK):
                if size == 0:
                    is_xml = _looks_like_xml(block)
                    if is_xml and member.file_size > xml_limit:
                        detail = f"XML part {name} declares {_mib(member.file_size)} inflated"
                        raise _too_big(source, detail, settings, "max_unzipped_xml_bytes")
                size += len(block)
                if size > member.file_size:
                    raise DocumentError(
                        f"{source}: part {name} inflates past the {member.file_size:,} bytes its "
                        "zip header declares, so the file is damaged or crafted; not read "
                        "(re-save it from Word if it is a real document)"
                    )
    except _UNREADABLE_MEMBER as exc:
        raise DocumentError(
            f"{source}: cannot read part {name} of this {_suffix(source)} file ({exc})"
        ) from exc


#: What zipfile raises for damaged, encrypted or unsupported (e.g. Deflate64) members.
_UNREADABLE_MEMBER = (
    zipfile.BadZipFile,
    RuntimeError,
    NotImplementedError,
    ValueError,
    OSError,
    EOFError,
    zlib.error,
)


def _looks_like_xml(head: bytes) -> bool:
    """XML whatever the member is called (a part's content type, not its name, decides how
    python-docx parses it): after any BOM and whitespace, the first byte is ``<``."""
    return head.lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n")[:1] == b"<"


def _too_big(source: str, detail: str, settings: Settings, setting: str) -> DocumentError:
    limit = getattr(settings, setting)
    return DocumentError(
        f"{source}: {detail}, over the {_mib(limit)} limit ({setting}); not read (a zip bomb?). "
        f"If the file is genuine, raise {setting} (PLANQA_{setting.upper()})"
    )


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _suffix(source: str) -> str:
    return PurePath(source).suffix.lower() or "zip"


# --- extracted text and parse time -----------------------------------------------------------


class TextBudget:
    """Characters extracted so far, refused past ``max_text_chars`` while extraction runs,
    so that a file yielding gigabytes of text stops at the limit instead of at the end."""

    def __init__(self, source: str, settings: Settings) -> None:
        self.source = source
        self.limit = settings.max_text_chars
        self.used = 0

    def add(self, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            raise DocumentError(
                f"{self.source}: over {self.limit:,} characters of text, above the "
                "max_text_chars limit; raise max_text_chars (PLANQA_MAX_TEXT_CHARS) or split "
                "the file"
            )


class _Expired(BaseException):
    """Raised by the alarm inside a parser. A BaseException, so that the parsers' own broad
    ``except Exception`` blocks (pypdf has many) cannot swallow it."""


class Deadline:
    """The end of one file's parse time; extraction loops call :meth:`check` between items."""

    def __init__(self, source: str, seconds: float) -> None:
        self.source = source
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.armed = False

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise self.error()

    def error(self) -> DocumentError:
        return DocumentError(
            f"{self.source}: parsing took over {self.seconds:g} s, the max_parse_seconds limit; "
            "raise max_parse_seconds (PLANQA_MAX_PARSE_SECONDS) if the file is genuine"
        )


def within_time(source: str, settings: Settings, work: Callable[[Deadline], T]) -> T:
    """``work(deadline)`` within ``max_parse_seconds``, else a DocumentError.

    ``work`` checks the deadline between paragraphs or pages. One page can be slow on its own,
    so where a signal can interrupt it (the main thread, no other SIGALRM user) an alarm also
    interrupts the parser at the deadline; elsewhere (the web UI's worker threads) the checks
    between items are the limit.
    """
    deadline = Deadline(source, settings.max_parse_seconds)
    previous = _arm_alarm(deadline)
    try:
        try:
            return work(deadline)
        finally:
            if previous is not None:
                deadline.armed = False  # a late alarm is ignored from here on
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
    except _Expired:
        raise deadline.error() from None


def _arm_alarm(deadline: Deadline) -> signal.Handlers | None:
    """Install a one-shot SIGALRM for ``deadline``; the previous handler, or None when unarmed."""
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGALRM) != signal.SIG_DFL
        or signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0)
    ):
        return None
    previous = signal.SIG_DFL

    def on_alarm(signum: int, frame: object) -> None:
        signal.signal(signal.SIGALRM, previous)  # restored even if the raise lands in a finally
        if deadline.armed:
            deadline.armed = False
            raise _Expired

    signal.signal(signal.SIGALRM, on_alarm)
    deadline.armed = True
    signal.setitimer(signal.ITIMER_REAL, deadline.seconds)
    return previous
