"""Citation parsing and verification of an LLM reply against the passages it was given.

:func:`verify_reply` parses the reply's [n] markers, drops markers that point at no passage,
renumbers the rest 1..k in order of first appearance, flags every statement without a marker
(``uncited``) and checks every figure of a cited statement against the passages it cites
(:mod:`rag.grounding`). With ``withhold_ungrounded`` a statement whose figure is not in its
cited passages leaves the answer text for the ``uncited`` list: a citation is a promise that the
passage says so, and a changed figure breaks it.

Split out of :mod:`rag.llm`, which had grown past the ≈400-line module guideline: this is the
pure text side (no model, no threads); ``rag.llm`` re-exports what it exported before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from planqa.corpus.chunking import split_sentences
from planqa.index.search import Hit
from planqa.rag.answer import NOT_FOUND, Citation
from planqa.rag.grounding import missing_figures

_NUMBER = r"\d{1,3}(?:\s*[-–~～]\s*\d{1,3})?"
_LABEL = r"(?:段落|来源|资料|passage)?\s*"
#: One citation marker: [1], ［1］, 【1】, [1,3], [1、3], [1-3], [段落1].
_MARKER = rf"[\[［【]\s*{_LABEL}{_NUMBER}(?:\s*[,，、;；]\s*{_LABEL}{_NUMBER})*\s*[\]］】]"
_MARKER_RE = re.compile(_MARKER, re.IGNORECASE)
#: Adjacent markers ([1][2], [1] [3]) are one run, so a run renumbers as a unit without repeats.
_MARKER_RUN_RE = re.compile(rf"{_MARKER}(?:[ \t]*{_MARKER})*", re.IGNORECASE)
_NUMBER_RE = re.compile(_NUMBER)
_CANONICAL_MARKER_RE = re.compile(r"\[\d+\]")
#: A statement ends at 。！？ (with closing quotes and any markers right after it) or a newline,
#: so "…80%。[1]" keeps its marker.
_STATEMENT_END_RE = re.compile(r"[。！？!?]+[”’」』）)】》\"']*(?:[ \t]*\[\d+\])*|\n")
_THINK_RE = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_SPACE_BEFORE_PUNCT_RE = re.compile(r"[ \t]+(?=[。！？，；：,;:!?])")
_WORD_RE = re.compile(r"\w")


@dataclass(frozen=True)
class VerifiedReply:
    """What is left of a model reply after checking it against the passages it was given.

    ``text`` carries canonical markers [1]..[k] that match ``citations``; ``dropped`` lists the
    model's numbers that pointed at no passage; ``renumbered`` maps the model's numbers to ours.
    """

    text: str
    citations: tuple[Citation, ...]
    uncited: tuple[str, ...]
    dropped: tuple[int, ...]
    renumbered: dict[int, int]
    abstained: bool
    #: Some statements are cited and another says NOT_FOUND (e.g. one region of a comparison).
    partial_refusal: bool = False
    #: Cited statements with numbers that none of their cited passages contain (a likely
    #: hallucinated figure): statement -> the missing numbers, as written in the statement.
    ungrounded_numbers: dict[str, list[str]] = field(default_factory=dict)
    #: Those statements, when ``withhold_ungrounded`` took them out of ``text`` (they are in
    #: ``uncited`` instead, markers kept so the passage they misquote can be looked up).
    withheld: tuple[str, ...] = ()

    @property
    def supported(self) -> bool:
        """A refusal, or an answer whose text keeps at least one valid citation."""
        return self.abstained or bool(_CANONICAL_MARKER_RE.search(self.text))


def _marker_numbers(marker: str, limit: int) -> list[int]:
    """Numbers in one marker, ranges expanded (capped at ``limit`` so [1-999] stays small)."""
    numbers: list[int] = []
    for match in _NUMBER_RE.finditer(marker):
        parts = re.split(r"\s*[-–~～]\s*", match.group(0))
        low, high = int(parts[0]), int(parts[-1])
        if high < low or high - low > limit:
            high = low
        numbers.extend(range(low, high + 1))
    return numbers


def strip_reasoning(reply: str) -> str:
    """Remove <think>…</think> blocks that reasoning models (Qwen3, DeepSeek-R1) put in content."""
    return _THINK_RE.sub("", reply).strip()


def _is_refusal(statement: str) -> bool:
    return NOT_FOUND in re.sub(r"\s+", "", statement)


def _segments(text: str) -> list[tuple[str, bool]]:
    """``text`` cut into consecutive raw slices, each flagged whether it is a statement.

    Cuts fall at 。！？ (keeping the markers right after the full stop) and line ends. A slice
    that is only markers ("……。\n[1]") joins the statement before it (at the very start, the one
    after it): the model put the citation on its own line. Slices without words are filler.
    Joining the slices gives back ``text`` exactly, so the answer can be rewritten slice by slice.
    """
    pieces: list[str] = []
    cursor = 0
    for match in _STATEMENT_END_RE.finditer(text):
        pieces.append(text[cursor : match.end()])
        cursor = match.end()
    pieces.append(text[cursor:])
    segments: list[tuple[str, bool]] = []
    pending = ""
    for piece in pieces:
        if _WORD_RE.search(_CANONICAL_MARKER_RE.sub("", piece)):
            segments.append((pending + piece, True))
            pending = ""
        elif _CANONICAL_MARKER_RE.search(piece) and _attachable(segments):
            while not segments[-1][1]:  # blank lines between statement and marker
                blank = segments.pop()[0]
                piece = blank + piece
            segments[-1] = (segments[-1][0] + piece, True)
        elif _CANONICAL_MARKER_RE.search(piece):
            pending += piece
        else:
            segments.append((piece, False))
    if pending:
        segments.append((pending, False))
    return segments


def _attachable(segments: list[tuple[str, bool]]) -> bool:
    """A statement exists with nothing but whitespace after it."""
    for segment, is_statement in reversed(segments):
        if is_statement:
            return True
        if segment.strip():
            return False
    return False


def split_statements(text: str) -> list[str]:
    """The statements of ``text`` (see :func:`_segments`), whitespace-trimmed."""
    return [segment.strip() for segment, is_statement in _segments(text) if is_statement]


def _is_lead_in(statement: str) -> bool:
    """ "各地区情况如下：" states nothing, so it needs no citation."""
    return statement.rstrip().endswith(("：", ":"))


def _bigrams(text: str) -> set[str]:
    compact = re.sub(r"\s+", "", _CANONICAL_MARKER_RE.sub("", text))
    return {compact[i : i + 2] for i in range(len(compact) - 1)}


def _best_quote(hit: Hit, statements: Sequence[str]) -> tuple[int, int] | None:
    """The passage sentence sharing most character bigrams with the statements citing it, as
    document offsets, so the UI highlights the supporting sentence rather than the whole chunk."""
    chunk = hit.chunk
    wanted = set().union(*(_bigrams(s) for s in statements)) if statements else set()
    best: tuple[int, tuple[int, int]] | None = None
    for start, end in split_sentences(chunk.text, chunk.start):
        overlap = len(wanted & _bigrams(chunk.text[start - chunk.start : end - chunk.start]))
        if overlap and (best is None or overlap > best[0]):
            best = (overlap, (start, end))
    return best[1] if best else None


def verify_reply(
    reply: str, passages: Sequence[Hit], *, withhold_ungrounded: bool = False
) -> VerifiedReply:
    """Check a reply against the numbered ``passages`` it was written from (1-based).

    Markers may be [n], ［n］, 【n】, [n,m], [n][m] or ranges; numbers outside 1..len(passages)
    are removed from the text and listed in ``dropped``. Only markers on a statement with
    content count ("[1]" alone is no answer; a marker on a refusal line is removed). A reply
    that is (only) the refusal abstains. ``supported`` says whether it can be shown as cited.

    A cited statement with a figure that none of its cited passages contains is listed in
    ``ungrounded_numbers``; with ``withhold_ungrounded`` it also leaves ``text`` for
    ``uncited`` (and ``withheld``), and the statements left in ``text`` are numbered first.
    """
    limit = len(passages)
    dropped: list[int] = []

    def canonical(run: re.Match[str]) -> str:
        """Pass 1: every marker run as [a][b] in the model's numbering, invalid numbers out."""
        kept: list[int] = []
        for marker in _MARKER_RE.finditer(run.group(0)):
            for number in _marker_numbers(marker.group(0), limit):
                if not 1 <= number <= limit:
                    dropped.append(number)
                elif number not in kept:
                    kept.append(number)
        return "".join(f"[{n}]" for n in kept)

    text = _MARKER_RUN_RE.sub(canonical, strip_reasoning(reply))
    if dropped:
        text = _SPACE_BEFORE_PUNCT_RE.sub("", text)
    dropped_t = tuple(dict.fromkeys(dropped))
    segments = [
        (segment, is_statement and not _is_refusal(segment), is_statement and _is_refusal(segment))
        for segment, is_statement in _segments(text)
    ]
    has_refusal = any(refusal for _, _, refusal in segments)
    if has_refusal and not any(
        content and _CANONICAL_MARKER_RE.search(segment) for segment, content, _ in segments
    ):
        return VerifiedReply(NOT_FOUND, (), (), dropped_t, {}, abstained=True)

    # Grounding, in the model's numbering: passage n is passages[n - 1].
    missing: dict[int, list[str]] = {}
    for i, (segment, content, _) in enumerate(segments):
        cited_numbers = [int(m[1:-1]) for m in _CANONICAL_MARKER_RE.findall(segment)]
        if content and cited_numbers:
            cited_text = "\n".join(passages[n - 1].chunk.text for n in dict.fromkeys(cited_numbers))
            figures = missing_figures(segment, cited_text)
            if figures:
                missing[i] = figures
    withheld = set(missing) if withhold_ungrounded else set()

    # Pass 2: the passages content statements cite become 1..k in order of first appearance
    # (the statements kept in the text first, then the withheld); markers elsewhere are removed.
    renumbered: dict[int, int] = {}
    order = [i for i in range(len(segments)) if i not in withheld] + sorted(withheld)
    for i in order:
        segment, content, _ = segments[i]
        for marker in _CANONICAL_MARKER_RE.findall(segment) if content else ():
            renumbered.setdefault(int(marker[1:-1]), len(renumbered) + 1)
    rewritten = [
        (_renumber(segment, renumbered if content else {}), content)
        for segment, content, _ in segments
    ]
    # A withheld statement leaves with the line break after it, so no blank line is left behind.
    gone = withheld | {
        i + 1 for i in withheld if i + 1 < len(segments) and not segments[i + 1][0].strip()
    }
    text = "".join(segment for i, (segment, _) in enumerate(rewritten) if i not in gone)
    statements = {i: segment.strip() for i, (segment, content) in enumerate(rewritten) if content}
    cited = [s for s in statements.values() if _CANONICAL_MARKER_RE.search(s)]

    by_new = {new: old for old, new in renumbered.items()}
    citations = tuple(
        Citation.from_hit(
            new,
            passages[by_new[new] - 1],
            _best_quote(passages[by_new[new] - 1], [s for s in cited if f"[{new}]" in s]),
        )
        for new in sorted(by_new)
    )
    uncited = tuple(
        s
        for i, s in statements.items()
        if i in withheld or not (_CANONICAL_MARKER_RE.search(s) or _is_lead_in(s))
    )
    return VerifiedReply(
        text=text.strip(),
        citations=citations,
        uncited=uncited,
        dropped=dropped_t,
        renumbered=renumbered,
        abstained=False,
        partial_refusal=has_refusal,
        ungrounded_numbers={statements[i]: figures for i, figures in missing.items()},
        withheld=tuple(statements[i] for i in sorted(withheld)),
    )


def _renumber(text: str, mapping: dict[int, int]) -> str:
    """Canonical markers [old] -> [new]; a marker without a mapping is removed."""

    def swap(match: re.Match[str]) -> str:
        new = mapping.get(int(match.group(0)[1:-1]))
        return f"[{new}]" if new is not None else ""

    return _CANONICAL_MARKER_RE.sub(swap, text)
