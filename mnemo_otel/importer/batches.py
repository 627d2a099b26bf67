"""Cutting a file's new bytes into batches, and noticing files that changed under their checkpoint.

Blocking file I/O and parsing: the importer runs these in a worker thread.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..model import BadLine, Entry, FileIdentity, FileRead, Quarantine
from ..settings import ImportSettings
from ..transcripts.parse import parse_line
from ..transcripts.reader import (
    HEAD_BYTES,
    OVERSIZE_SAMPLE_BYTES,
    RawLine,
    ReadResult,
    open_regular,
    range_digest,
    read_lines,
)

__all__ = ("changed_under_checkpoint", "read_batch", "read_tail")


def read_batch(path: Path, start: int, limits: ImportSettings) -> FileRead:
    result = ReadResult(end=start)
    entries: list[Entry] = []
    bad_lines: list[BadLine] = []
    blanks: list[tuple[int, bytes]] = []
    end, size, exhausted = start, 0, True
    for raw in read_lines(path, start, max_line_bytes=limits.max_line_bytes, result=result):
        parsed = parse_line(raw)
        if isinstance(parsed, Entry):
            entries.append(parsed)
        elif parsed is not None:
            bad_lines.append(parsed)
        elif isinstance(raw, RawLine):
            blanks.append((raw.offset, raw.data))
        end = raw.end
        size += raw.end - raw.offset
        if len(entries) + len(bad_lines) >= limits.batch_max_lines or size >= limits.batch_max_bytes:
            exhausted = False
            break
    stat = path.stat()
    head_length = min(end, HEAD_BYTES)
    identity = FileIdentity(
        stat.st_dev,
        stat.st_ino,
        range_digest(path, 0, head_length),
        head_length,
        range_digest(path, max(0, end - HEAD_BYTES), end),
    )
    pending = result.pending if exhausted else 0
    return FileRead(start, end, entries, bad_lines, identity, exhausted, pending, blanks)


def changed_under_checkpoint(
    path: Path, stat: os.stat_result, offset: int, identity: FileIdentity | None
) -> str | None:
    """Why the file can no longer be continued from ``offset`` (truncated, replaced), else ``None``."""
    if stat.st_size < offset:
        return "truncated"
    if identity is None:
        return None
    if stat.st_ino != identity.inode:
        return "replaced"
    if identity.head_length and range_digest(path, 0, identity.head_length) != identity.head_sha256:
        return "rewritten"
    mark_start = max(0, offset - HEAD_BYTES)
    if identity.mark_sha256 is not None and range_digest(path, mark_start, offset) != identity.mark_sha256:
        return "cut short and grown back"
    return None


def read_tail(path: Path, offset: int) -> BadLine:
    """The unterminated bytes after ``offset``, for the record (sampled if huge)."""
    digest = hashlib.sha256()
    sample = b""
    length = 0
    with open_regular(path) as f:
        f.seek(offset)
        while chunk := f.read(1 << 20):
            if len(sample) < OVERSIZE_SAMPLE_BYTES:
                sample += chunk[: OVERSIZE_SAMPLE_BYTES - len(sample)]
            digest.update(chunk)
            length += len(chunk)
    return BadLine(
        offset,
        offset + length,
        Quarantine.UNTERMINATED_TAIL,
        sample,
        length,
        digest.hexdigest(),
        "no line ending yet",
    )
