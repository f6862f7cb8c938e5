"""The files of an index version: read only at the size and hash the manifest records, written
durably, and staged in a folder of their own until the version is published.

Why apart from the store: these are the rules that make an index trustworthy whatever happens to
the disk (a truncated FAISS file, an edited row, a crash half-way through a write), and both the
segment files (index/segments.py) and the version as a whole (index/versions.py, index/store.py)
follow them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from planqa.corpus.documents import file_sha256
from planqa.corpus.errors import IndexStoreError
from planqa.index.manifest import REBUILD_HINT, FileEntry

#: Files up to this size are hashed on load; larger ones are checked by size only (load speed).
HASH_LIMIT_BYTES = 256 * 2**20
#: Threads that hash and fsync files side by side (hashlib and fsync release the GIL).
THREADS = 4


def damaged(path: Path, problem: str) -> IndexStoreError:
    """The refusal of a damaged file, with the fix."""
    return IndexStoreError(f"{path} {problem}; {REBUILD_HINT}")


def verified_bytes(version_dir: Path, name: str, expected: FileEntry | None) -> bytes:
    """The file's contents, refused unless they have the size and hash the manifest records."""
    path = version_dir / name
    if expected is None:
        raise damaged(path, "is not listed in the manifest")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise damaged(path, f"is missing ({exc.strerror})") from exc
    if len(data) != expected["bytes"]:
        raise damaged(path, f"has {len(data)} bytes, the manifest says {expected['bytes']}")
    if "sha256" in expected and hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise damaged(path, "does not match its recorded hash")
    return data


def check_files(
    version_dir: Path, files: dict[str, FileEntry], hashed_later: Collection[str]
) -> None:
    """Every listed file present at its recorded size, and every one but ``hashed_later`` (the
    segments, hashed as they are read) matching its recorded hash."""
    for name, expected in files.items():
        path = version_dir / name
        if not path.is_file():
            raise damaged(path, "is missing")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise damaged(
                path,
                f"has {size} bytes, the manifest says {expected['bytes']} (truncated or replaced)",
            )
    hashed = [n for n, e in files.items() if n not in hashed_later and "sha256" in e]
    with ThreadPoolExecutor(THREADS) as pool:  # the FAISS and BM25 files side by side
        digests = pool.map(file_sha256, [version_dir / name for name in hashed])
        for name, digest in zip(hashed, digests, strict=True):
            if digest != files[name]["sha256"]:
                raise damaged(version_dir / name, "does not match its recorded hash")


def fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def seal(path: Path) -> FileEntry:
    """The size and hash of a file just written, once it is on disk."""
    size = path.stat().st_size
    entry: FileEntry = {"bytes": size}
    if size <= HASH_LIMIT_BYTES:
        entry["sha256"] = file_sha256(path)
    fsync(path)
    return entry


@dataclass
class Staging:
    """A version being written, and the files it carries over unread from the previous one."""

    directory: Path
    #: Carried files with the size and hash the previous manifest recorded.
    carried: dict[str, FileEntry] = field(default_factory=dict)
    #: The carried files that are hard links: already durable, so not fsynced again.
    linked: set[str] = field(default_factory=set)

    def carry(self, source_dir: Path, name: str, entry: FileEntry) -> None:
        try:
            os.link(source_dir / name, self.directory / name)
            self.linked.add(name)
        except OSError:  # a file system without hard links (or at its link limit): copy
            shutil.copyfile(source_dir / name, self.directory / name)
        self.carried[name] = entry

    def seal_new_files(self) -> dict[str, FileEntry]:
        """Seal every file of the staging directory it does not carry over.

        In threads, so that hashing one file (CPU) overlaps waiting for the disk to take another:
        at 100K chunks, ~300 MB of FAISS and BM25 files are new in every version.
        """
        paths = sorted(p for p in self.directory.rglob("*") if p.is_file())
        names = [p.relative_to(self.directory).as_posix() for p in paths]
        new = [(n, p) for n, p in zip(names, paths, strict=True) if n not in self.carried]
        with ThreadPoolExecutor(THREADS) as pool:
            entries = pool.map(seal, [p for _, p in new])
            return dict(zip([n for n, _ in new], entries, strict=True))

    def fsync_copies(self, *also: str) -> None:
        """Make the carried files that were copied, not linked, durable (and ``also``)."""
        for name in [*(self.carried.keys() - self.linked), *also]:
            fsync(self.directory / name)
