"""How a block's exact bytes are stored: zstd-compressed by the importer, or as they are (older blocks).

Compressing on the client moves the work off the database server, into a thread that releases the
GIL, and zstd keeps JSON Lines smaller than the server's pglz (about 0.15 of the source against 0.19).
A body that does not decompress to its block's length is reported as ``None``: damage for the drill
to name, never an exception that stops a restore.
"""

from __future__ import annotations

from typing import Final

import zstandard

__all__ = ("IDENTITY", "ZSTD", "compress", "decompress")

IDENTITY: Final = "identity"
ZSTD: Final = "zstd"

_LEVEL: Final = 3  # zstd's default: ~600 MB/s on transcripts here, and level 1 is barely faster


def compress(body: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=_LEVEL).compress(body)


def decompress(codec: str, body: bytes, length: int) -> bytes | None:
    """The block's bytes, or ``None`` when the stored body cannot be what was archived."""
    if codec == IDENTITY:
        return body
    if codec != ZSTD:
        return None
    try:
        data = zstandard.ZstdDecompressor().decompress(body, max_output_size=length)
    except zstandard.ZstdError:
        return None
    return data if len(data) == length else None
