"""Streaming complete lines out of a growing file, from a byte offset.

Never reads a whole file: it holds at most one chunk plus the line being assembled. A line longer than
the cap is reported (not truncated silently) and skipped up to its newline. Bytes after the last newline
are a pending tail: reported by length, never consumed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import BinaryIO

__all__ = (
    "HEAD_BYTES",
    "LineBlock",
    "NotRegularFile",
    "OversizeLine",
    "RawLine",
    "ReadResult",
    "file_kind",
    "open_regular",
    "range_digest",
    "read_blocks",
    "read_lines",
)

CHUNK_BYTES = 1 << 20
HEAD_BYTES = 4096
OVERSIZE_SAMPLE_BYTES = 64 * 1024


class NotRegularFile(OSError):
    """The path names a FIFO, socket, device or directory: never read as a transcript."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"not a regular file ({kind}): {path}")
        self.path = path
        self.kind = kind
        self.strerror = f"not a regular file ({kind})"


def file_kind(mode: int) -> str:
    """A short name for a file's type, for logs and the ``error.type`` detail."""
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISDIR(mode):
        return "directory"
    return "regular" if stat.S_ISREG(mode) else "other"


def open_regular(path: Path) -> BinaryIO:
    """Open for reading only if it is a regular file, without ever blocking on a FIFO.

    ``O_NONBLOCK`` makes opening a FIFO return at once; the type is then checked on the open file, so
    a file swapped for a FIFO after discovery is refused as well.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, file_kind(mode))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True, slots=True)
class RawLine:
    """A complete line: ``data`` excludes the line ending; ``end`` is the offset after its ``\\n``."""

    offset: int
    end: int
    data: bytes


@dataclass(frozen=True, slots=True)
class OversizeLine:
    """A line over the cap: its first bytes, full length and digest are kept for the quarantine."""

    offset: int
    end: int
    sample: bytes
    length: int
    sha256: str


@dataclass(slots=True)
class ReadResult:
    """Where reading stopped: ``end`` is after the last complete line, ``pending`` the tail's size."""

    end: int
    pending: int = 0


def read_lines(
    path: Path, offset: int, *, max_line_bytes: int, result: ReadResult
) -> Iterator[RawLine | OversizeLine]:
    """Yield complete lines from ``offset``; fills ``result`` as it goes (valid once exhausted)."""
    for item in read_blocks(path, offset, max_line_bytes=max_line_bytes, result=result):
        if isinstance(item, OversizeLine):
            yield item
            continue
        position = item.offset
        for data in item.lines:
            end = position + len(data) + 1
            yield RawLine(position, end, data)
            position = result.end = end


@dataclass(frozen=True, slots=True)
class LineBlock:
    """Consecutive complete lines read in one go: the first starts at ``offset``; ``end`` is after the
    last one's ``\n``. A whole chunk's lines in one list, for callers that go through millions of them
    (``verify``) and cannot afford an object per line."""

    offset: int
    end: int
    lines: list[bytes]

    def starts(self) -> list[int]:
        """Each line's offset."""
        return list(accumulate((len(line) + 1 for line in self.lines[:-1]), initial=self.offset))

    def before(self, stop: int) -> LineBlock:
        """The lines that start before ``stop``."""
        if self.end <= stop:
            return self
        starts = self.starts()
        count = bisect_left(starts, stop)
        end = starts[count] if count < len(starts) else self.end
        return LineBlock(self.offset, end, self.lines[:count])


def read_blocks(
    path: Path, offset: int, *, max_line_bytes: int, result: ReadResult
) -> Iterator[LineBlock | OversizeLine]:
    """Complete lines from ``offset``, a chunk's worth at a time; fills ``result`` like :func:`read_lines`."""
    result.end = offset
    with open_regular(path) as f:
        f.seek(offset)
        yield from _split(f, offset, max_line_bytes, result)


def _split(
    f: BinaryIO, offset: int, max_line_bytes: int, result: ReadResult
) -> Iterator[LineBlock | OversizeLine]:
    pieces: list[bytes] = []  # an unterminated line so far, joined once when its newline arrives
    pieces_len = 0
    base = offset  # file offset of the first byte in ``pieces`` (or of the next chunk)
    oversize: _OversizeState | None = None
    while chunk := f.read(CHUNK_BYTES):
        if oversize is not None:
            newline = chunk.find(b"\n")
            if newline == -1:
                oversize.feed(chunk)
                continue
            oversize.feed(chunk[:newline])
            line = oversize.finish(end=oversize.offset + oversize.length + 1)
            yield line
            result.end = base = line.end
            oversize = None
            chunk = chunk[newline + 1 :]
        last = chunk.rfind(b"\n")
        if last == -1:
            pieces.append(chunk)
            pieces_len += len(chunk)
            if pieces_len > max_line_bytes:
                oversize = _OversizeState(base)
                for piece in pieces:
                    oversize.feed(piece)
                pieces, pieces_len = [], 0
            continue
        if pieces:
            chunk = b"".join((*pieces, chunk))
            last += pieces_len
            pieces, pieces_len = [], 0
        yield from _blocks(chunk[:last].split(b"\n"), base, max_line_bytes)
        base += last + 1
        result.end = base
        if last + 1 < len(chunk):
            pieces, pieces_len = [chunk[last + 1 :]], len(chunk) - last - 1
    result.pending = oversize.length if oversize is not None else pieces_len


def _blocks(lines: list[bytes], base: int, max_line_bytes: int) -> Iterator[LineBlock | OversizeLine]:
    """One block, or (rarely) the runs of lines around the oversize ones."""
    if max(map(len, lines)) <= max_line_bytes:
        yield LineBlock(base, base + sum(map(len, lines)) + len(lines), lines)
        return
    run: list[bytes] = []
    start = position = base
    for line in lines:
        end = position + len(line) + 1
        if len(line) > max_line_bytes:
            if run:
                yield LineBlock(start, position, run)
                run = []
            yield _oversize_from(line, position)
            start = end
        else:
            run.append(line)
        position = end
    if run:
        yield LineBlock(start, position, run)


class _OversizeState:
    """Accumulates the digest of an oversize line without holding it."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.length = 0
        self.sample = b""
        self._digest = hashlib.sha256()

    def feed(self, data: bytes) -> None:
        if len(self.sample) < OVERSIZE_SAMPLE_BYTES:
            self.sample += data[: OVERSIZE_SAMPLE_BYTES - len(self.sample)]
        self._digest.update(data)
        self.length += len(data)

    def finish(self, end: int) -> OversizeLine:
        return OversizeLine(self.offset, end, self.sample, self.length, self._digest.hexdigest())


def _oversize_from(data: bytes, offset: int) -> OversizeLine:
    state = _OversizeState(offset)
    state.feed(data)
    return state.finish(end=offset + len(data) + 1)


def range_digest(path: Path, start: int, end: int) -> str:
    """Digest of bytes ``[start, end)``: the file's head, or the bytes just before a checkpoint, tell
    whether the file is still the one the checkpoint was taken on."""
    with open_regular(path) as f:
        f.seek(start)
        return hashlib.sha256(f.read(max(0, end - start))).hexdigest()
