"""A line over the size cap, kept exactly all the same: streamed from the source in pieces.

The parser only sampled such a line (it may be hundreds of MB), so its bytes are read again here,
a piece at a time, inside the batch's transaction: the line is kept with its checkpoint or not at
all. If the file no longer holds the bytes the parser digested, the pieces are dropped and the
block keeps a digest that matches nothing, which the restore drill reports; the importer's own
change detection re-reads a file that changed under it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from ..transcripts.reader import open_regular
from ._exact import Block

if TYPE_CHECKING:
    from .postgres import Conn

__all__ = ("store_in_pieces",)

logger = logging.getLogger(__name__)

CHUNK_BYTES: Final = 8 * 1024 * 1024
_INSERT_PIECE: Final = """
INSERT INTO mnemo.block_pieces (file_id, generation, start_offset, seq, piece) VALUES ($1, $2, $3, $4, $5)
"""
_DIGEST: Final = (
    "UPDATE mnemo.blocks SET sha256 = $4 WHERE file_id = $1 AND generation = $2 AND start_offset = $3"
)
_FORGET: Final = "DELETE FROM mnemo.block_pieces WHERE file_id = $1 AND generation = $2 AND start_offset = $3"


async def store_in_pieces(conn: Conn, path: str, file_id: int, generation: int, block: Block) -> None:
    """Fill ``block`` (its row already written, without a body) from the source, piece by piece."""
    key = (file_id, generation, block.start)
    length = block.end - block.start - 1
    line_digest, block_digest = hashlib.sha256(), hashlib.sha256()
    done = seq = 0
    while done < length:
        piece = await anyio.to_thread.run_sync(
            _read, Path(path), block.start + done, min(CHUNK_BYTES, length - done)
        )
        if not piece:
            break
        line_digest.update(piece)
        block_digest.update(piece)
        done += len(piece)
        if done == length:
            piece += b"\n"
        await conn.execute(_INSERT_PIECE, *key, seq, piece)
        seq += 1
    if done != length or line_digest.digest() != block.line_sha256:
        await conn.execute(_FORGET, *key)
        logger.warning(
            "a line over the size cap changed on disk before its bytes were kept; kept without them",
            extra={"mnemo.offset": block.start, "mnemo.bytes": length},
        )
        return
    block_digest.update(b"\n")
    await conn.execute(_DIGEST, *key, block_digest.digest())


def _read(path: Path, start: int, size: int) -> bytes:
    try:
        with open_regular(path) as f:
            f.seek(start)
            return f.read(size)
    except OSError:
        return b""
