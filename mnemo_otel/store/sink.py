"""The write side of the importer, as a protocol an application can implement.

The importer owns reading, parsing, batching and retrying; a sink owns durability. The one rule a sink
must keep: a batch's rows and its file checkpoint become visible together or not at all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..transcripts.parse import BadLine, Entry

__all__ = ("Batch", "BatchOutcome", "Checkpoint", "FileIdentity", "Sink")


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What tells a file apart from a different file later found at the same path."""

    device: int
    inode: int
    head_sha256: str
    head_length: int
    mark_sha256: str | None = None  # the bytes just before the checkpoint (see HEAD_BYTES)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    path: str
    offset: int
    identity: FileIdentity | None


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive lines of one file: ``[start, end)``; ``end`` becomes the file's checkpoint."""

    path: str
    root: str
    identity: FileIdentity
    start: int
    end: int
    entries: list[Entry]
    bad_lines: list[BadLine]
    trace_id: str | None = None


@dataclass(slots=True)
class BatchOutcome:
    stored: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    exchanges_created: int = 0

    def add(self, other: BatchOutcome) -> None:
        self.stored.update(other.stored)
        self.duplicates += other.duplicates
        self.quarantined.update(other.quarantined)
        self.exchanges_created += other.exchanges_created


@runtime_checkable
class Sink(Protocol):
    async def checkpoint(self, path: str) -> Checkpoint | None:
        """The committed position of ``path``, or ``None`` if it was never imported."""
        ...

    async def reset(self, path: str, root: str, *, expected_offset: int) -> None:
        """Start ``path`` over from byte 0 (truncated or replaced file); keys make the replay harmless."""
        ...

    async def commit(self, batch: Batch) -> BatchOutcome:
        """Store the batch and advance the checkpoint atomically.

        :raises CheckpointMoved: the checkpoint is no longer ``batch.start`` (another importer won).
        """
        ...

    async def report_tail(self, path: str, tail: BadLine, trace_id: str | None) -> bool:
        """Record an unterminated tail past its grace; ``True`` if it was not reported before."""
        ...

    async def mark_missing(self, paths: list[str]) -> None:
        """Note files that vanished (their data stays: the database is the archive)."""
        ...

    async def tracked_paths(self) -> list[str]:
        """Paths with a checkpoint that are not marked missing."""
        ...
