"""Content, not only keys: each line the archive kept, against the disk's bytes at the same offset.

A key says a line is stored somewhere; only the bytes say the archive could give this file back. A
line whose bytes on disk differ from the ones archived at its (host, path, offset) has *diverged*:
the file was edited behind the client's back, or the archive was damaged. Either way the archive
and the disk disagree, and ``verify`` says so (and exits 5).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio.to_thread

from ..store.postgres import PostgresSink, translate_errors
from ..transcripts.reader import open_regular

__all__ = ("Diverged", "find_diverged")

_FILES: Final = """
SELECT path, file_id, generation, committed_offset, exact_from, inode FROM mnemo.files
WHERE host = $1 AND path = ANY($2::text[]) AND committed_offset > exact_from
"""
_LINES: Final = """
SELECT line_offset, length, sha256 FROM mnemo.lines
WHERE file_id = $1 AND generation = $2 AND line_offset >= $3 AND line_offset < $4
ORDER BY line_offset LIMIT $5
"""
_PAGE: Final = 20_000  # digests of this many lines at a time: ~1 MB, whatever the file's size


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
                    _LINES, file["file_id"], file["generation"], start, file["committed_offset"], _PAGE
                )
            if not rows:
                break
            lines = [(r["line_offset"], r["length"], bytes(r["sha256"])) for r in rows]
            found += await anyio.to_thread.run_sync(_compare, path, file["inode"], lines)
            last_offset, last_length, _ = lines[-1]
            start = last_offset + last_length + 1
    return found


def _compare(path: Path, inode: int | None, lines: list[tuple[int, int, bytes]]) -> list[Diverged]:
    diverged = []
    try:
        with open_regular(path) as f:
            if inode is not None and os.fstat(f.fileno()).st_ino != inode:
                return []
            for offset, length, digest in lines:
                f.seek(offset)
                data = f.read(length + 1)
                if data[length:] != b"\n" or hashlib.sha256(data[:length]).digest() != digest:
                    diverged.append(Diverged(str(path), offset))
    except OSError:
        return []  # vanished meanwhile: the loss accounting's business
    return diverged
