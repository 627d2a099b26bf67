"""Cutting transcripts into segments, keying each segment's lines and checking them against the
snapshot of stored keys, in a worker process.

A segment is a byte range of one file: it owns the lines that *start* in it, so segments of one file
can be keyed in parallel and every line is keyed exactly once. Keys come from ``key_block``, the
importer's own decoding and keying rule. Nothing here touches the database: a key the snapshot holds
is only counted, so what travels back is small (counts, and the offset and key of each doubtful line),
never line contents.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..model import BadLine
from ..transcripts.parse import KeyedLines, key_block, key_line
from ..transcripts.reader import LineBlock, ReadResult, read_blocks
from .stored import StoredKeys

__all__ = ("Keyed", "PlannedFile", "Segment", "key_segments", "plan_tasks", "ready")

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
    """One segment's lines: how many, how many the snapshot holds, the entries it lacks as
    (offset, key), and bad lines as (offset, sha256)."""

    segment: Segment
    lines: int = 0
    stored: int = 0
    doubtful: list[tuple[int, str]] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)
    pending: int = 0
    error: str | None = None

    def add(self, keyed: KeyedLines, snapshot: StoredKeys) -> None:
        self.lines += len(keyed.keys) + len(keyed.bad)
        self.bad.extend((bad.offset, bad.sha256) for bad in keyed.bad)
        if not keyed.keys:
            return
        held = snapshot.contains(keyed.keys)
        self.stored += int(np.count_nonzero(held))
        lacking = np.flatnonzero(~held).tolist()
        if lacking:
            self.doubtful.extend(zip(keyed.offsets(lacking), [keyed.keys[i] for i in lacking], strict=True))

    def add_oversize(self, line: BadLine) -> None:
        self.lines += 1
        self.bad.append((line.offset, line.sha256))


_snapshots: dict[str, StoredKeys] = {}  # per worker process: the run's snapshot, read once


def _snapshot(path: str) -> StoredKeys:
    if path not in _snapshots:
        _snapshots.clear()
        _snapshots[path] = StoredKeys.open(Path(path))
    return _snapshots[path]


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """A file to check: its first ``length`` bytes, or (``to_eof``) all of it, ``length`` being its
    size when planned (only the last segment then reads on to wherever the file ends)."""

    path: str
    root: str
    length: int
    to_eof: bool


def plan_tasks(files: Sequence[PlannedFile], *, task_bytes: int = SEGMENT_BYTES) -> Iterator[list[Segment]]:
    """Group the files' segments into tasks of about ``task_bytes`` each.

    Big files are cut into several segments; small ones share a task, so a corpus of many small
    sessions does not pay one process round trip per file.
    """
    task: list[Segment] = []
    size = 0
    for planned in files:
        for segment, length in _cut(planned, task_bytes):
            task.append(segment)
            size += length
            if size >= task_bytes:
                yield task
                task, size = [], 0
    if task:
        yield task


def _cut(planned: PlannedFile, task_bytes: int) -> Iterator[tuple[Segment, int]]:
    """Segments of one file, each with its length as planned."""
    starts = range(0, max(planned.length, 1), task_bytes)
    for index, start in enumerate(starts):
        stop = min(start + task_bytes, planned.length)
        last = index == len(starts) - 1
        segment = Segment(planned.path, planned.root, start, None if last and planned.to_eof else stop)
        yield segment, max(stop - start, 0)


def ready() -> None:
    """Nothing: called once in each new worker process, so that it starts (and imports this module)
    while the main process still reads the snapshot."""


def key_segments(
    segments: list[Segment], max_line_bytes: int, niceness: int, snapshot_path: str
) -> list[Keyed]:
    """Key every line of each segment and check it against the snapshot ``StoredKeys.save`` wrote
    (runs in a worker process; ``niceness`` lowers its priority)."""
    if niceness and os.getpriority(os.PRIO_PROCESS, 0) < niceness:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    snapshot = _snapshot(snapshot_path)
    results = []
    for segment in segments:
        keyed = Keyed(segment)
        try:
            _key_into(keyed, max_line_bytes, snapshot)
        except FileNotFoundError:
            keyed.error = "vanished"
        except OSError as exc:
            keyed.error = exc.strerror or type(exc).__name__
        results.append(keyed)
    return results


def _key_into(keyed: Keyed, max_line_bytes: int, snapshot: StoredKeys) -> None:
    segment = keyed.segment
    path = Path(segment.path)
    first = _first_line_start(path, segment.start)
    stop = segment.stop
    if first is None or (stop is not None and first >= stop):
        return
    result = ReadResult(end=first)
    for item in read_blocks(path, first, max_line_bytes=max_line_bytes, result=result):
        if stop is not None and item.offset >= stop:
            return
        if isinstance(item, LineBlock):
            keyed.add(key_block(item if stop is None else item.before(stop)), snapshot)
            continue
        oversize = key_line(item)
        assert isinstance(oversize, BadLine)
        keyed.add_oversize(oversize)
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
