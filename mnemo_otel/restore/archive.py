"""Reading a file back out of the archive, and proving it comes back exactly.

A file's committed prefix is rebuilt from its lines (``mnemo.lines``, current generation) in offset
order. The rebuild is exact when the lines are contiguous from byte 0 to the checkpoint, every line's
bytes match the digest taken from the source at import, and the result matches the digests of the
file's head and of the bytes before its checkpoint, which the importer took from the file itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import asyncpg

from ..store.postgres import Conn
from ..telemetry import names
from ..transcripts.reader import HEAD_BYTES

__all__ = (
    "BEFORE_EXACT_LINES",
    "DAMAGED",
    "ArchivedFile",
    "Rebuild",
    "archived_files",
    "archived_lines",
    "select_files",
)

_FILES = """
SELECT file_id, generation, host, path, committed_offset, exact_from, head_sha256, head_length, mark_sha256
FROM mnemo.files WHERE host = $1 AND committed_offset > 0 ORDER BY path
"""
_LINES = """
SELECT line_offset, length, sha256, body FROM mnemo.lines
WHERE file_id = $1 AND generation = $2 AND line_offset < $3 ORDER BY line_offset
"""
# Lines of a few MB are usual (pasted images): a handful at a time keeps memory flat.
_PREFETCH = 32


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    file_id: int
    generation: int
    host: str
    path: str
    committed: int
    exact_from: int
    head_sha256: str | None
    head_length: int
    mark_sha256: str | None


async def archived_files(conn: Conn, host: str) -> list[ArchivedFile]:
    """Every file of ``host`` with something committed."""
    return [
        ArchivedFile(
            row["file_id"],
            row["generation"],
            row["host"],
            row["path"],
            row["committed_offset"],
            row["exact_from"],
            row["head_sha256"],
            row["head_length"],
            row["mark_sha256"],
        )
        for row in await conn.fetch(_FILES, host)
    ]


def select_files(
    files: Sequence[ArchivedFile], selectors: Sequence[str]
) -> tuple[list[ArchivedFile], list[str]]:
    """The files the selectors name, and the selectors that name none.

    A selector with a ``/`` is a path (a file, or a folder and everything under it); any other is a
    session id: its transcript and its subagents' transcripts.
    """
    chosen: dict[str, ArchivedFile] = {}
    unmatched = []
    for selector in selectors:
        matches = [f for f in files if _selects(selector, f.path)]
        if not matches:
            unmatched.append(selector)
        chosen.update((f.path, f) for f in matches)
    return sorted(chosen.values(), key=lambda f: f.path), unmatched


def _selects(selector: str, path: str) -> bool:
    if "/" in selector:
        folder = selector.rstrip("/")
        return path == selector or path.startswith(folder + "/")
    parts = PurePosixPath(path).parts
    return PurePosixPath(path).name == f"{selector}.jsonl" or (
        len(parts) >= 3 and parts[-3] == selector and parts[-2] == "subagents"
    )


async def archived_lines(conn: Conn, file: ArchivedFile) -> AsyncIterator[asyncpg.Record]:
    """The file's lines below its checkpoint, in order (call inside a transaction)."""
    async for row in conn.cursor(_LINES, file.file_id, file.generation, file.committed, prefetch=_PREFETCH):
        yield row


# Why a file cannot be rebuilt exactly, as a bounded label (the drill's metric attribute): imported
# before exact lines were kept (a fact of an upgraded archive, not news), or damaged (lines missing or
# not what was read: an alert).
BEFORE_EXACT_LINES = names.RESTORE_BEFORE_EXACT_LINES
DAMAGED = names.RESTORE_DAMAGED


class Rebuild:
    """Fed a file's lines in order: checks each against the archive's promises and digests the result.

    ``problem`` is the first reason the rebuild is not exact, or ``None``; ``kind`` its label.
    """

    def __init__(self, file: ArchivedFile) -> None:
        self.file = file
        self.size = 0
        self.problem: str | None = None
        self.kind = DAMAGED
        if file.exact_from > 0:
            self.kind = BEFORE_EXACT_LINES
            self.problem = f"imported before exact lines were kept: bytes 0-{file.exact_from} are not archived as written"
        self._digest = hashlib.sha256()
        self._head = hashlib.sha256()
        self._tail = bytearray()

    def add(self, offset: int, length: int, sha256: bytes, body: bytes | None) -> bytes:
        """The line's bytes with its ``\\n`` (empty once the rebuild failed)."""
        if self.problem is not None:
            return b""
        if offset != self.size:
            return self._fail(f"no line archived at byte {self.size} (the next starts at {offset})")
        if body is None:
            return self._fail(f"the line at byte {offset} was over the size cap: its bytes were not kept")
        if len(body) != length or hashlib.sha256(body).digest() != sha256:
            return self._fail(f"the line at byte {offset} does not match the digest taken at import")
        data = body + b"\n"
        self._feed(data)
        return data

    def finish(self) -> str | None:
        """Checks the whole; returns the problem, if any."""
        file = self.file
        if self.problem is None and self.size != file.committed:
            self._fail(f"the lines end at byte {self.size}, the checkpoint is at {file.committed}")
        if self.problem is None and file.head_sha256 and self._head.hexdigest() != file.head_sha256:
            self._fail("the first bytes differ from the digest the importer took of the file's head")
        tail_digest = hashlib.sha256(bytes(self._tail)).hexdigest()
        if self.problem is None and file.mark_sha256 and tail_digest != file.mark_sha256:
            self._fail("the bytes before the checkpoint differ from the digest taken of the file")
        return self.problem

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _feed(self, data: bytes) -> None:
        start = self.size
        self.size += len(data)
        self._digest.update(data)
        if start < self.file.head_length:
            self._head.update(data[: self.file.head_length - start])
        self._tail += data[-HEAD_BYTES:]
        del self._tail[:-HEAD_BYTES]

    def _fail(self, problem: str) -> bytes:
        self.problem = problem
        return b""
