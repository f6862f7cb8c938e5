"""Chunk rows and document texts in segments: files of at most ``SEGMENT_ROWS`` rows, listed in
order in the manifest.

Why segments: a new version hard-links every segment whose rows it keeps, taking size and hash
from the previous manifest; only a segment that lost rows is rewritten, and new rows fill the last
segment, then new ones. At 100K chunks the rows are ~220 MB of JSON: parsing, hashing and writing
them again made up most of the time to add one document (docs/scaling.md).

Each chunk segment has a keys file beside its rows (the id and document of each row), which is all
an update reads of the old chunks. Documents need no keys file: the manifest's catalogue has the
rest.

When the document texts live in Milvus (index/milvus_texts.py) the rows hold no text: a chunk row
keeps its document, chapter and offsets (its text is the document's text between them) and a
document row only its name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

from planqa.corpus.chunking import Chunk
from planqa.corpus.documents import Document
from planqa.index.manifest import Manifest, Segment
from planqa.index.version_files import Staging, damaged, verified_bytes

CHUNKS_DIR = "chunks"
DOCUMENTS_DIR = "documents"
ROWS, KEYS = ".jsonl", ".keys.jsonl"
#: The files of a segment. Documents need no keys file: the manifest's catalogue has the rest.
PARTS = {CHUNKS_DIR: (ROWS, KEYS), DOCUMENTS_DIR: (ROWS,)}
#: Rows per segment: small enough that rewriting one (a replaced document, the last segment
#: taking new rows) is a few MB, large enough that 100K chunks make only ~25 segments.
SEGMENT_ROWS = 4096


class SegmentSource(Protocol):
    """A written version whose segments a new one keeps (a ``StoredVersion``)."""

    directory: Path
    manifest: Manifest


def chunk_key(chunk_id: str, doc: str) -> dict[str, str]:
    """A chunk's line in the keys file."""
    return {"id": chunk_id, "doc": doc}


def _chunk_lines(chunk: Chunk) -> tuple[bytes, ...]:
    return orjson.dumps(chunk), orjson.dumps(chunk_key(chunk.id, chunk.doc))


def _chunk_position_lines(chunk: Chunk) -> tuple[bytes, ...]:
    row = {field: getattr(chunk, field) for field in Chunk.__dataclass_fields__}
    del row["text"]
    return orjson.dumps(row), orjson.dumps(chunk_key(chunk.id, chunk.doc))


def _document_lines(document: Document) -> tuple[bytes, ...]:
    return (orjson.dumps({"file": document.name, "text": document.text}),)


def _document_name_lines(document: Document) -> tuple[bytes, ...]:
    return (orjson.dumps({"file": document.name}),)


#: The lines (one per part) a new row of each segment kind is written as: with its text, and
#: without (the texts are in Milvus).
_LINES_OF: dict[bool, dict[str, Callable[[Any], tuple[bytes, ...]]]] = {
    True: {CHUNKS_DIR: _chunk_lines, DOCUMENTS_DIR: _document_lines},
    False: {CHUNKS_DIR: _chunk_position_lines, DOCUMENTS_DIR: _document_name_lines},
}


def segment_file(kind: str, name: str, part: str) -> str:
    """A segment file's path inside the version directory."""
    return f"{kind}/{name}{part}"


def segment_files(manifest: Manifest) -> list[str]:
    """Every segment file the manifest lists, of every kind and part."""
    return [
        segment_file(kind, segment["name"], part)
        for kind, parts in PARTS.items()
        for segment in manifest.segments[kind]
        for part in parts
    ]


def lines(data: bytes) -> list[bytes]:
    """The lines of a JSON Lines file without their newlines (JSON escapes those in strings)."""
    found = data.split(b"\n")
    if found[-1] == b"":
        found.pop()
    return found


def segment_lines(
    version_dir: Path, manifest: Manifest, kind: str, segment: Segment, part: str
) -> list[bytes]:
    """One segment file's lines, verified against the manifest's size, hash and row count."""
    name = segment_file(kind, segment["name"], part)
    found = lines(verified_bytes(version_dir, name, manifest.files.get(name)))
    if len(found) != segment["rows"]:
        raise damaged(
            version_dir / name,
            f"holds {len(found)} rows, the manifest says {segment['rows']}: the files are out "
            "of step",
        )
    return found


def read_segments(
    version_dir: Path, manifest: Manifest, kind: str, part: str
) -> list[dict[str, Any]]:
    """Every row of ``kind`` in order, from the rows or the keys files."""
    return [
        orjson.loads(line)
        for segment in manifest.segments[kind]
        for line in segment_lines(version_dir, manifest, kind, segment, part)
    ]


def write_segments(
    staging: Staging,
    kind: str,
    new: Sequence[Any],
    previous: SegmentSource | None,
    keep: np.ndarray | None,
    *,
    with_text: bool = True,
) -> list[Segment]:
    """Write the ``kind`` segments of a new version and return their manifest entries
    (``with_text``: False when the texts live in Milvus).

    Previous segments whose rows ``keep`` keeps are carried over unread; those that lost rows
    are rewritten with the rest (after checking their hash); the ``new`` rows then fill the last
    segment up to ``SEGMENT_ROWS`` rows, then new segments. New segment names continue the
    previous numbering, so a name never means two contents.
    """
    parts = PARTS[kind]
    lines_of = _LINES_OF[with_text][kind]
    (staging.directory / kind).mkdir()
    segments: list[Segment] = []
    number = 0

    def emit(part_lines: list[list[bytes]]) -> None:
        """One segment: ``part_lines`` holds each part's lines."""
        nonlocal number
        number += 1
        name = f"{number:06d}"
        for part, written in zip(parts, part_lines, strict=True):
            path = staging.directory / segment_file(kind, name, part)
            path.write_bytes(b"".join(line + b"\n" for line in written))
        segments.append({"name": name, "rows": len(part_lines[0])})

    pending: list[list[bytes]] = [[] for _ in parts]
    if previous is not None and keep is not None:
        old = previous.manifest.segments[kind]
        number = max((int(s["name"]) for s in old), default=0)
        start = 0
        for position, segment in enumerate(old):
            mask = keep[start : start + segment["rows"]]
            start += segment["rows"]
            fill = bool(new) and position == len(old) - 1 and segment["rows"] < SEGMENT_ROWS
            if mask.all() and not fill:
                for part in parts:
                    name = segment_file(kind, segment["name"], part)
                    staging.carry(previous.directory, name, previous.manifest.files[name])
                segments.append(segment)
            elif mask.any():
                kept = np.flatnonzero(mask)
                kept_lines = [
                    [part_lines[i] for i in kept]
                    for part_lines in (
                        segment_lines(previous.directory, previous.manifest, kind, segment, part)
                        for part in parts
                    )
                ]
                if fill:
                    pending = kept_lines
                else:
                    emit(kept_lines)
    done = 0
    while pending[0] or done < len(new):
        batch = new[done : done + SEGMENT_ROWS - len(pending[0])]
        for item in batch:
            for part_lines, line in zip(pending, lines_of(item), strict=True):
                part_lines.append(line)
        done += len(batch)
        emit(pending)
        pending = [[] for _ in parts]
    return segments
