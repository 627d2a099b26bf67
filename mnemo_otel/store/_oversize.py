"""A line over the size cap, kept exactly all the same: streamed from the source in pieces.

The parser only sampled such a line (it may be hundreds of MB), so its bytes are read again here,
a piece at a time, inside the batch's transaction: the line is kept with its checkpoint or not at
all. If the file no longer holds the bytes the parser digested, nothing is kept for the line and it
stays without a body, which the restore drill reports; the importer's own change detection re-reads
a file that changed under it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from ..transcripts.reader import open_regular
from ._lines import LineRows

if TYPE_CHECKING:
    from .postgres import Conn

__all__ = ("store_oversize_lines",)

logger = logging.getLogger(__name__)

CHUNK_BYTES: Final = 8 * 1024 * 1024
_INSERT_CHUNK: Final = """
INSERT INTO mnemo.line_chunks (file_id, generation, line_offset, seq, chunk) VALUES ($1, $2, $3, $4, $5)
"""
_FORGET_CHUNKS: Final = (
    "DELETE FROM mnemo.line_chunks WHERE file_id = $1 AND generation = $2 AND line_offset = $3"
)


async def store_oversize_lines(conn: Conn, path: str, file_id: int, generation: int, lines: LineRows) -> None:
    for offset, length, digest, body in zip(
        lines.offsets, lines.lengths, lines.digests, lines.bodies, strict=True
    ):
        if body is None:
            await _store_in_pieces(conn, Path(path), (file_id, generation, offset), length, digest)


async def _store_in_pieces(
    conn: Conn, path: Path, line: tuple[int, int, int], length: int, digest: bytes
) -> None:
    file_id, generation, offset = line
    seen = hashlib.sha256()
    done = seq = 0
    while done < length:
        piece = await anyio.to_thread.run_sync(_read, path, offset + done, min(CHUNK_BYTES, length - done))
        if not piece:
            break
        seen.update(piece)
        await conn.execute(_INSERT_CHUNK, file_id, generation, offset, seq, piece)
        done += len(piece)
        seq += 1
    if done != length or seen.digest() != digest:
        await conn.execute(_FORGET_CHUNKS, file_id, generation, offset)
        logger.warning(
            "a line over the size cap changed on disk before its bytes were kept; kept without them",
            extra={"mnemo.offset": offset, "mnemo.bytes": length},
        )


def _read(path: Path, start: int, size: int) -> bytes:
    try:
        with open_regular(path) as f:
            f.seek(start)
            return f.read(size)
    except OSError:
        return b""
