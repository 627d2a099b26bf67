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

from ..importer._concurrency import run_all
from ..store import block_codec
from ..store.postgres import PostgresSink, translate_errors
from ..transcripts.reader import open_regular

__all__ = ("Diverged", "find_diverged")

# Every block digest of the host's checked files in one pass (a block is a batch: a few per file),
# not a query per file: on an archive of many small sessions the round trips were most of the cost.
_BLOCKS: Final = """
SELECT f.path, f.file_id, f.generation, f.inode, b.start_offset, b.end_offset, b.sha256
FROM mnemo.files f
JOIN mnemo.blocks b ON b.file_id = f.file_id AND b.generation = f.generation
WHERE f.host = $1 AND f.path = ANY($2::text[]) AND f.committed_offset > f.exact_from
  AND b.start_offset >= f.exact_from AND b.start_offset < f.committed_offset
ORDER BY f.path, b.start_offset
"""
_BODY: Final = (
    "SELECT body, codec FROM mnemo.blocks WHERE file_id = $1 AND generation = $2 AND start_offset = $3"
)


@dataclass(frozen=True, slots=True)
class Diverged:
    path: str
    offset: int


@dataclass(slots=True)
class _ArchivedFile:
    file_id: int
    generation: int
    inode: int | None
    blocks: list[tuple[int, int, bytes]]


async def find_diverged(sink: PostgresSink, paths: Sequence[str], *, threads: int = 2) -> list[Diverged]:
    """The archived lines of these files (this host's, below each checkpoint) that the disk no longer
    holds as archived. A file replaced since its import (another inode) is the importer's to re-read,
    not a divergence: it is skipped, as the scrub skips it. The files are hashed by ``threads`` threads
    (hashing releases the GIL), so a big archive's check uses every core the keying used."""
    files: dict[str, _ArchivedFile] = {}
    async with translate_errors(), sink.connection() as conn, conn.transaction(readonly=True):
        async for row in conn.cursor(_BLOCKS, sink.host_id, list(paths), prefetch=10_000):
            file = files.get(row["path"])
            if file is None:
                file = files[row["path"]] = _ArchivedFile(row["file_id"], row["generation"], row["inode"], [])
            file.blocks.append((row["start_offset"], row["end_offset"], bytes(row["sha256"])))
    differing: list[tuple[str, int, int]] = []
    queue = iter(files.items())  # shared: each file is hashed by exactly one thread

    async def hash_files() -> None:
        for path, file in queue:
            found = await anyio.to_thread.run_sync(_differing, Path(path), file.inode, file.blocks)
            differing.extend((path, start, end) for start, end in found)

    await run_all(*[hash_files] * max(1, threads))
    differing.sort()
    found: list[Diverged] = []
    for path, block_start, block_end in differing:
        file = files[path]
        async with translate_errors(), sink.connection() as conn:
            stored = await conn.fetchrow(_BODY, file.file_id, file.generation, block_start)
        body = None if stored is None or stored["body"] is None else (stored["body"], stored["codec"])
        found += await anyio.to_thread.run_sync(_diverged_lines, Path(path), block_start, block_end, body)
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
