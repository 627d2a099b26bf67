"""Reading a file back out of the archive, and proving it comes back exactly.

A file's committed prefix is rebuilt from its lines (``mnemo.lines``, current generation) in offset
order. The rebuild is exact when the lines are contiguous from byte 0 to the checkpoint, every line's
bytes match the digest taken from the source at import, and the result matches the digests of the
file's head and of the bytes before its checkpoint, which the importer took from the file itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import asyncpg

from ..store.postgres import Conn
from ..transcripts.reader import HEAD_BYTES

__all__ = (
    "BEFORE_EXACT_LINES",
    "DAMAGED",
    "ArchivedDocument",
    "ArchivedFile",
    "Rebuild",
    "archived_documents",
    "archived_files",
    "archived_lines",
    "line_chunk",
    "select_paths",
)

_FILES = """
SELECT file_id, generation, host, path, committed_offset, exact_from, head_sha256, head_length, mark_sha256
FROM mnemo.files WHERE host = $1 AND committed_offset > 0 ORDER BY path
"""
_LINES = """
SELECT line_offset, length, sha256, body FROM mnemo.lines
WHERE file_id = $1 AND generation = $2 AND line_offset < $3 ORDER BY line_offset
"""
_CHUNK = """
SELECT chunk FROM mnemo.line_chunks WHERE file_id = $1 AND generation = $2 AND line_offset = $3 AND seq = $4
"""
_DOCUMENTS = """
SELECT DISTINCT ON (path) path, sha256, body FROM mnemo.documents
WHERE host = $1 ORDER BY path, last_seen_at DESC
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


@dataclass(frozen=True, slots=True)
class ArchivedDocument:
    """The latest version of a side document (a subagent's ``agent-*.meta.json``)."""

    path: str
    sha256: bytes
    body: bytes


async def archived_documents(conn: Conn, host: str) -> list[ArchivedDocument]:
    rows = await conn.fetch(_DOCUMENTS, host)
    return [ArchivedDocument(row["path"], bytes(row["sha256"]), bytes(row["body"])) for row in rows]


def select_paths(paths: Iterable[str], selectors: Sequence[str]) -> tuple[set[str], list[str]]:
    """The paths the selectors name, and the selectors that name none.

    A selector with a ``/`` is a path (a file, or a folder and everything under it); any other is a
    session id: its transcript, its subagents' transcripts and their side documents.
    """
    candidates = list(paths)
    chosen: set[str] = set()
    unmatched = []
    for selector in selectors:
        matches = {path for path in candidates if _selects(selector, path)}
        if not matches:
            unmatched.append(selector)
        chosen |= matches
    return chosen, unmatched


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


# Why a file cannot be rebuilt exactly, as a bounded label: imported before exact lines were kept (a
# fact of an upgraded archive, not news), or damaged (lines missing or not what was read: an alert).
BEFORE_EXACT_LINES = "before_exact_lines"
DAMAGED = "damaged"


async def line_chunk(conn: Conn, file: ArchivedFile, offset: int, seq: int) -> bytes | None:
    """Piece ``seq`` of a line kept in pieces (one at a time: such a line is over the size cap)."""
    chunk: bytes | None = await conn.fetchval(_CHUNK, file.file_id, file.generation, offset, seq)
    return chunk


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
        self._line: tuple[int, int, bytes] = (0, 0, b"")
        self._line_digest = hashlib.sha256()
        self._line_size = 0

    def add(self, offset: int, length: int, sha256: bytes, body: bytes) -> bytes:
        """A whole line: its bytes with its ``\\n`` (empty once the rebuild failed)."""
        if not self.begin(offset, length, sha256):
            return b""
        data = self.piece(body)
        return data + self.end()

    def begin(self, offset: int, length: int, sha256: bytes) -> bool:
        """A line kept in pieces (over the size cap) starts; ``False`` once the rebuild failed."""
        if self.problem is None and offset != self.size:
            self._fail(f"no line archived at byte {self.size} (the next starts at {offset})")
        self._line = (offset, length, sha256)
        self._line_digest = hashlib.sha256()
        self._line_size = 0
        return self.problem is None

    def piece(self, data: bytes) -> bytes:
        """Bytes of the current line, passed on as they come (never the whole of a huge line)."""
        if self.problem is not None:
            return b""
        self._line_digest.update(data)
        self._line_size += len(data)
        self._feed(data)
        return data

    def end(self) -> bytes:
        """The current line is complete: check it against its digest; its ``\\n``."""
        offset, length, sha256 = self._line
        if self.problem is None and (self._line_size != length or self._line_digest.digest() != sha256):
            self._fail(f"the line at byte {offset} does not match the digest taken at import")
        if self.problem is not None:
            return b""
        self._feed(b"\n")
        return b"\n"

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
