"""Reading a file back out of the archive, and proving it comes back exactly.

A file's committed prefix is rebuilt from its blocks (``mnemo.blocks``, current generation) in
offset order. The rebuild is exact when the blocks are contiguous from byte 0 to the checkpoint,
every block's bytes match the digest taken from the source at import, and the result matches the
digests of the file's head and of the bytes before its checkpoint, which the importer took from the
file itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..store import block_codec
from ..store.postgres import Conn
from ..telemetry import names
from ..transcripts.reader import HEAD_BYTES

__all__ = (
    "BEFORE_EXACT_LINES",
    "DAMAGED",
    "ArchivedBlock",
    "ArchivedDocument",
    "ArchivedFile",
    "Rebuild",
    "archived_blocks",
    "archived_documents",
    "archived_files",
    "block_piece",
    "select_paths",
)

_FILES = """
SELECT file_id, generation, host, path, committed_offset, exact_from, head_sha256, head_length, mark_sha256
FROM mnemo.files WHERE host = $1 AND committed_offset > 0 ORDER BY path
"""
_BLOCKS = """
SELECT start_offset, end_offset, sha256, body, codec FROM mnemo.blocks
WHERE file_id = $1 AND generation = $2 AND start_offset < $3 ORDER BY start_offset
"""
_PIECE = """
SELECT piece FROM mnemo.block_pieces WHERE file_id = $1 AND generation = $2 AND start_offset = $3 AND seq = $4
"""
_DOCUMENTS = """
SELECT DISTINCT ON (path) path, sha256, body FROM mnemo.documents
WHERE host = $1 ORDER BY path, last_seen_at DESC
"""
# A block is a batch: up to a few MB each. Two at a time keeps memory flat.
_PREFETCH = 2


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


@dataclass(frozen=True, slots=True)
class ArchivedBlock:
    """``[start, end)`` of the file as archived; ``body`` is ``None`` when kept in pieces, and empty
    when the stored body does not decompress to the block (damage the rebuild then names)."""

    start: int
    end: int
    sha256: bytes
    body: bytes | None


async def archived_blocks(conn: Conn, file: ArchivedFile) -> AsyncIterator[ArchivedBlock]:
    """The file's blocks below its checkpoint, in order, decompressed (call inside a transaction)."""
    async for row in conn.cursor(_BLOCKS, file.file_id, file.generation, file.committed, prefetch=_PREFETCH):
        start, end, body = row["start_offset"], row["end_offset"], row["body"]
        if body is not None:
            body = block_codec.decompress(row["codec"], body, end - start)
            body = b"" if body is None else body
        yield ArchivedBlock(start, end, bytes(row["sha256"]), body)


async def block_piece(conn: Conn, file: ArchivedFile, start: int, seq: int) -> bytes | None:
    """Piece ``seq`` of a block kept in pieces (one at a time: it holds a line over the size cap)."""
    piece: bytes | None = await conn.fetchval(_PIECE, file.file_id, file.generation, start, seq)
    return piece


# Why a file cannot be rebuilt exactly, as a bounded label (the drill's metric attribute): imported
# before exact archiving (a fact of an upgraded archive, not news), or damaged (bytes missing or not
# what was read: an alert).
BEFORE_EXACT_LINES = names.RESTORE_BEFORE_EXACT_LINES
DAMAGED = names.RESTORE_DAMAGED


class Rebuild:
    """Fed a file's blocks in order: checks each against the archive's promises and digests the result.

    ``problem`` is the first reason the rebuild is not exact, or ``None``; ``kind`` its label.
    """

    def __init__(self, file: ArchivedFile) -> None:
        self.file = file
        self.size = 0
        self.problem: str | None = None
        self.kind = DAMAGED
        if file.exact_from > 0:
            self.kind = BEFORE_EXACT_LINES
            self.problem = (
                f"imported before exact archiving: bytes 0-{file.exact_from} are not archived as written"
            )
        self._digest = hashlib.sha256()
        self._head = hashlib.sha256()
        self._tail = bytearray()
        self._block: tuple[int, int, bytes] = (0, 0, b"")
        self._block_digest = hashlib.sha256()
        self._block_size = 0

    def add(self, start: int, end: int, sha256: bytes, body: bytes) -> bytes:
        """A whole block: its bytes (empty once the rebuild failed)."""
        if not self.begin(start, end, sha256):
            return b""
        data = self.piece(body)
        return data if self.end() else b""

    def begin(self, start: int, end: int, sha256: bytes) -> bool:
        """A block starts (kept whole or in pieces); ``False`` once the rebuild failed."""
        if self.problem is None and start != self.size:
            self._fail(f"nothing archived at byte {self.size} (the next block starts at {start})")
        self._block = (start, end, sha256)
        self._block_digest = hashlib.sha256()
        self._block_size = 0
        return self.problem is None

    def piece(self, data: bytes) -> bytes:
        """Bytes of the current block, passed on as they come (never the whole of a huge line)."""
        if self.problem is not None:
            return b""
        self._block_digest.update(data)
        self._block_size += len(data)
        self._feed(data)
        return data

    def end(self) -> bool:
        """The current block is complete: check it against its digest."""
        start, end, sha256 = self._block
        if self.problem is None and (
            self._block_size != end - start or self._block_digest.digest() != sha256
        ):
            self._fail(f"the bytes from {start} to {end} do not match the digest taken at import")
        return self.problem is None

    def finish(self) -> str | None:
        """Checks the whole; returns the problem, if any."""
        file = self.file
        if self.problem is None and self.size != file.committed:
            self._fail(f"the archived bytes end at {self.size}, the checkpoint is at {file.committed}")
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
