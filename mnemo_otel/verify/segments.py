"""Cutting transcripts into segments and keying each segment's lines, in a worker process.

A segment is a byte range of one file: it owns the lines that *start* in it, so segments of one file
can be keyed in parallel and every line is keyed exactly once. Keys come from ``key_line``, the
importer's own decoding and keying rule. Nothing here touches the database; results are small
(offsets, keys, digests), never line contents.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..model import BadLine
from ..transcripts.parse import key_line
from ..transcripts.reader import ReadResult, read_lines

__all__ = ("Keyed", "Segment", "key_segments", "plan_tasks")

SEGMENT_BYTES = 8 * 1024 * 1024
_BOUNDARY_PROBE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Segment:
    """Lines of ``path`` starting in ``[start, stop)``; ``stop`` ``None`` reads to the end of the file."""

    path: str
    root: str
    start: int
    stop: int | None


@dataclass(slots=True)
class Keyed:
    """One segment's lines: entries as parallel ``offsets``/``keys``; bad lines as (offset, sha256)."""

    segment: Segment
    offsets: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)
    pending: int = 0
    error: str | None = None


def plan_tasks(
    files: Sequence[tuple[str, str, int]], *, task_bytes: int = SEGMENT_BYTES
) -> Iterator[list[Segment]]:
    """Group ``(path, root, readable_end)`` into tasks of about ``task_bytes`` each.

    Big files are cut into several segments; small ones share a task, so a corpus of many small
    sessions does not pay one process round trip per file. ``readable_end`` ``-1`` means "to EOF".
    """
    task: list[Segment] = []
    size = 0
    for path, root, end in files:
        for segment in _cut(path, root, end, task_bytes):
            task.append(segment)
            size += _length(segment, end, task_bytes)
            if size >= task_bytes:
                yield task
                task, size = [], 0
    if task:
        yield task


def _cut(path: str, root: str, end: int, task_bytes: int) -> Iterator[Segment]:
    if end < 0:
        try:
            known = Path(path).stat().st_size
        except OSError:
            known = 0
        starts = range(0, max(known, 1), task_bytes)
        for index, start in enumerate(starts):
            yield Segment(path, root, start, None if index == len(starts) - 1 else start + task_bytes)
        return
    for start in range(0, end, task_bytes):
        yield Segment(path, root, start, min(start + task_bytes, end))


def _length(segment: Segment, end: int, task_bytes: int) -> int:
    if segment.stop is not None:
        return segment.stop - segment.start
    return task_bytes if end < 0 else max(0, end - segment.start)


def key_segments(segments: list[Segment], max_line_bytes: int, niceness: int) -> list[Keyed]:
    """Key every line of each segment (runs in a worker process; ``niceness`` lowers its priority)."""
    if niceness:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    results = []
    for segment in segments:
        keyed = Keyed(segment)
        try:
            _key_into(keyed, max_line_bytes)
        except FileNotFoundError:
            keyed.error = "vanished"
        except OSError as exc:
            keyed.error = exc.strerror or type(exc).__name__
        results.append(keyed)
    return results


def _key_into(keyed: Keyed, max_line_bytes: int) -> None:
    segment = keyed.segment
    path = Path(segment.path)
    first = _first_line_start(path, segment.start)
    if first is None or (segment.stop is not None and first >= segment.stop):
        return
    result = ReadResult(end=first)
    offsets, keys, bad = keyed.offsets, keyed.keys, keyed.bad
    stop = segment.stop
    for raw in read_lines(path, first, max_line_bytes=max_line_bytes, result=result):
        if stop is not None and raw.offset >= stop:
            return
        key = key_line(raw)
        if key is None:
            continue
        if isinstance(key, BadLine):
            bad.append((key.offset, key.sha256))
        else:
            offsets.append(raw.offset)
            keys.append(key)
    if stop is None:
        keyed.pending = result.pending


def _first_line_start(path: Path, start: int) -> int | None:
    """The offset of the first line starting at or after ``start`` (``None``: no line starts there)."""
    if start == 0:
        return 0
    with path.open("rb") as f:
        position = start - 1  # a line starts at ``start`` if the byte before it ends a line
        f.seek(position)
        while chunk := f.read(_BOUNDARY_PROBE):
            newline = chunk.find(b"\n")
            if newline != -1:
                return position + newline + 1
            position += len(chunk)
    return None
