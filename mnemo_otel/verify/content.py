"""Content, not only keys: the bytes the archive kept, against the disk's bytes at the same offsets.

A key says a line is stored somewhere; only the bytes say the archive could give this file back. A
line whose bytes on disk differ from the ones archived at its (host, path, offset) has *diverged*:
the file was edited behind the client's back, or the archive was damaged. Either way the archive
and the disk disagree, and ``verify`` says so (and exits 5). Blocks are compared by digest; only a
block that differs is fetched, to name its lines.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio.to_thread

from ..store import block_codec
from ..store.postgres import PostgresSink, translate_errors
from ..transcripts.reader import open_regular

__all__ = ("Diverged", "find_diverged")

_FILES: Final = """
SELECT path, file_id, generation, committed_offset, exact_from, inode FROM mnemo.files
WHERE host = $1 AND path = ANY($2::text[]) AND committed_offset > exact_from
"""
_BLOCKS: Final = """
SELECT start_offset, end_offset, sha256 FROM mnemo.blocks
WHERE file_id = $1 AND generation = $2 AND start_offset >= $3 AND start_offset < $4
ORDER BY start_offset LIMIT $5
"""
_BODY: Final = (
    "SELECT body, codec FROM mnemo.blocks WHERE file_id = $1 AND generation = $2 AND start_offset = $3"
)
_PAGE: Final = 1000  # blocks' digests at a time


@dataclass(frozen=True, slots=True)
class Diverged:
    path: str
    offset: int


async def find_diverged(sink: PostgresSink, paths: Sequence[str]) -> list[Diverged]:
    """The archived lines of these files (this host's, below each checkpoint) that the disk no longer
    holds as archived. A file replaced since its import (another inode) is the importer's to re-read,
    not a divergence: it is skipped, as the scrub skips it."""
    async with translate_errors(), sink.connection() as conn:
        files = await conn.fetch(_FILES, sink.host_id, list(paths))
    found: list[Diverged] = []
    for file in files:
        path = Path(file["path"])
        start = file["exact_from"]
        while start < file["committed_offset"]:
            async with translate_errors(), sink.connection() as conn:
                rows = await conn.fetch(
                    _BLOCKS, file["file_id"], file["generation"], start, file["committed_offset"], _PAGE
                )
            if not rows:
                break
            blocks = [(r["start_offset"], r["end_offset"], bytes(r["sha256"])) for r in rows]
            differing = await anyio.to_thread.run_sync(_differing, path, file["inode"], blocks)
            for block_start, block_end in differing:
                async with translate_errors(), sink.connection() as conn:
                    row = await conn.fetchrow(_BODY, file["file_id"], file["generation"], block_start)
                body = None if row is None or row["body"] is None else (row["body"], row["codec"])
                found += await anyio.to_thread.run_sync(_diverged_lines, path, block_start, block_end, body)
            start = blocks[-1][1]
    return found


def _differing(path: Path, inode: int | None, blocks: list[tuple[int, int, bytes]]) -> list[tuple[int, int]]:
    """The blocks whose bytes on disk no longer have the archived digest."""
    differing = []
    try:
        with open_regular(path) as f:
            if inode is not None and os.fstat(f.fileno()).st_ino != inode:
                return []  # replaced since: the importer's to re-read, not a divergence
            for start, end, digest in blocks:
                f.seek(start)
                if hashlib.sha256(f.read(end - start)).digest() != digest:
                    differing.append((start, end))
    except OSError:
        return []  # vanished meanwhile: the loss accounting's business
    return differing


def _diverged_lines(path: Path, start: int, end: int, stored: tuple[bytes, str] | None) -> list[Diverged]:
    """The lines of a differing block whose bytes differ (the whole block when kept in pieces, or
    when its stored body is unreadable)."""
    try:
        with open_regular(path) as f:
            f.seek(start)
            on_disk = f.read(end - start)
    except OSError:
        return []
    archived = None if stored is None else block_codec.decompress(stored[1], stored[0], end - start)
    if archived is None:
        return [Diverged(str(path), start)]
    diverged = []
    offset = start
    disk_lines = on_disk.split(b"\n")
    for index, line in enumerate(archived.split(b"\n")[:-1]):
        if index >= len(disk_lines) or disk_lines[index] != line:
            diverged.append(Diverged(str(path), offset))
        offset += len(line) + 1
    return diverged
