"""The pipeline's vocabulary: what a line becomes, what a batch is, and the two seams around the loop.

A leaf on purpose: it imports nothing of ours, so the reader, the store, telemetry and an
application's own ``Sink`` all speak these types without reaching into each other.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = (
    "BadLine",
    "Batch",
    "BatchOutcome",
    "Checkpoint",
    "Entry",
    "FileIdentity",
    "FileImportSpan",
    "FileRead",
    "GroupSink",
    "ImportObserver",
    "NullObserver",
    "NullSpan",
    "Quarantine",
    "Role",
    "Sink",
    "SourceLoss",
    "TranscriptFile",
)


# -- lines ----------------------------------------------------------------------------------------


class Role(Enum):
    """A line's part in an exchange: only a human-typed prompt opens one."""

    PROMPT = "prompt"
    ASSISTANT = "assistant"
    OTHER = "other"


class Quarantine(Enum):
    """Why a line was quarantined (also the ``error.type`` of the quarantine counter)."""

    INVALID_JSON = "invalid_json"
    GLUED = "glued_lines"
    NOT_OBJECT = "not_object"
    INVALID_UTF8 = "invalid_utf8"
    NUL_BYTES = "nul_bytes"
    OVERSIZE = "oversize"
    UNTERMINATED_TAIL = "unterminated_tail"
    REJECTED_BY_DB = "rejected_by_db"


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line kept in the quarantine: ``raw`` is the line (or a sample of an oversize one)."""

    offset: int
    end: int
    kind: Quarantine
    raw: bytes
    length: int
    sha256: str
    detail: str


@dataclass(frozen=True, slots=True)
class Entry:
    """A line to store. ``line`` is the exact original (line ending removed).

    ``jsonb`` is set only when PostgreSQL's jsonb cannot take the original (``\\u0000``, lone
    surrogates, NaN): it is a sanitised copy, and the original is then stored verbatim beside it.
    """

    offset: int
    end: int
    key: str
    line: bytes
    entry_type: str
    uuid: str | None
    parent_uuid: str | None
    session_id: str | None
    timestamp: datetime | None
    role: Role
    text: str
    jsonb: bytes | None

    @property
    def written(self) -> bytes:
        """The line as the file holds it: ``line`` with its ``\\r`` back when it had one."""
        return self.line if self.end - self.offset - 1 == len(self.line) else self.line + b"\r"


# -- files ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranscriptFile:
    """A transcript and the root it was found under (the root makes telemetry paths relative)."""

    root: Path
    path: Path

    @property
    def relative_path(self) -> str:
        try:
            return str(self.path.relative_to(self.root))
        except ValueError:
            return self.path.name


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What tells a file apart from a different file later found at the same path."""

    device: int
    inode: int
    head_sha256: str
    head_length: int
    mark_sha256: str | None = None  # digest of the bytes just before the checkpoint


@dataclass(frozen=True, slots=True)
class Checkpoint:
    path: str
    offset: int
    identity: FileIdentity | None


@dataclass(slots=True)
class FileRead:
    """One batch's worth of lines from ``start``; ``end`` is after its last line (blank lines too).

    ``exhausted`` says the file had no more complete lines; ``pending`` is then the size of the
    unterminated tail that was left for later.
    """

    start: int
    end: int
    entries: list[Entry]
    bad_lines: list[BadLine]
    identity: FileIdentity
    exhausted: bool
    pending: int
    blanks: list[tuple[int, bytes]] = field(default_factory=list)
    """Blank lines (offset, bytes without the ``\\n``): not entries, but part of the file as written."""


@dataclass(frozen=True, slots=True)
class SourceLoss:
    """Complete lines seen on disk that vanished before they were committed.

    ``seen_end`` is where the complete lines seen ended; ``committed`` the checkpoint then (``None``
    when this process never learned it: the ledger asks the database). ``reason``: deleted,
    truncated or replaced.
    """

    path: str
    reason: str
    seen_end: int
    committed: int | None
    detected_at: float
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Recording the same event twice (replaying the local journal after a crash) records it once."""


# -- writing ----------------------------------------------------------------------------------------


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
    blanks: list[tuple[int, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class BatchOutcome:
    """What a commit did; ``stored`` counts by the lines' own ``type`` field."""

    stored: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    exchanges_created: int = 0
    key_conflicts: int = 0
    """Lines whose key was stored before with other bytes (kept as lines all the same)."""

    def add(self, other: BatchOutcome) -> None:
        self.stored.update(other.stored)
        self.duplicates += other.duplicates
        self.quarantined.update(other.quarantined)
        self.exchanges_created += other.exchanges_created
        self.key_conflicts += other.key_conflicts


@runtime_checkable
class Sink(Protocol):
    """Where batches go. The one rule: a batch's rows and its checkpoint commit together or not at all."""

    async def checkpoint(self, path: str) -> Checkpoint | None:
        """The committed position of ``path``, or ``None`` if it was never imported."""
        ...

    async def reset(self, path: str, root: str, *, expected_offset: int) -> None:
        """Start ``path`` over from byte 0 (truncated or replaced file); keys make the replay harmless."""
        ...

    async def commit(self, batch: Batch) -> BatchOutcome:
        """Store the batch and advance the checkpoint atomically.

        :raises CheckpointMoved: the checkpoint is no longer ``batch.start`` (another importer won).
        :raises BatchRejected: the store refuses some line's data (the importer splits the batch).
        :raises StoreUnavailable: retry later; nothing of the batch was kept.
        """
        ...

    async def report_tail(self, path: str, tail: BadLine, trace_id: str | None) -> bool:
        """Record an unterminated tail past its grace; ``True`` if it was not reported before."""
        ...

    async def mark_missing(self, paths: list[str]) -> None:
        """Note files that vanished (their data stays: the database is the archive)."""
        ...


@runtime_checkable
class GroupSink(Protocol):
    """A sink that also commits several files' batches in one transaction (optional for a sink): a
    catch-up of many small sessions then pays one transaction per group instead of one per file."""

    async def checkpoints(self, paths: Sequence[str]) -> dict[str, Checkpoint]:
        """The committed positions of those of ``paths`` that were imported before."""
        ...

    async def commit_many(self, batches: Sequence[Batch]) -> list[BatchOutcome]:
        """Commit one batch per file, all together or none, as :meth:`Sink.commit` would one by one.

        :raises StoreError: as :meth:`Sink.commit` (nothing of the group was kept).
        """
        ...


@runtime_checkable
class DocumentSink(Protocol):
    """A sink that also keeps the small side documents beside transcripts (optional for a sink)."""

    async def store_documents(self, documents: list[tuple[str, bytes, bytes]]) -> None:
        """Keep each ``(path, sha256 digest, bytes)`` version exactly, once."""
        ...


# -- observing --------------------------------------------------------------------------------------


class FileImportSpan(Protocol):
    """The trace of one file delta; ``trace_id`` (hex) is stored on the rows it writes."""

    trace_id: str | None

    def child(self, name: str) -> AbstractContextManager[Any]:
        """One timed step of the current batch (``mnemo.read``, ``mnemo.write``)."""
        ...

    def timed(self, name: str, seconds: float) -> None:
        """A step of the current batch timed elsewhere (a group's read or commit)."""
        ...

    def add_batch(self, read: FileRead, outcome: BatchOutcome) -> None: ...


class ImportObserver(Protocol):
    """What the loop reports as it works; telemetry implements it, the library runs without it."""

    def file_import(self, transcript: TranscriptFile) -> AbstractContextManager[FileImportSpan]: ...

    def committed(
        self, transcript: TranscriptFile, read: FileRead, outcome: BatchOutcome, seconds: float
    ) -> None: ...

    def quarantined(self, kind: str) -> None: ...

    def failure(self, error_type: str) -> None: ...


class NullSpan:
    """A span that records nothing."""

    trace_id: str | None = None

    def child(self, name: str) -> AbstractContextManager[None]:
        return nullcontext()

    def timed(self, name: str, seconds: float) -> None:
        return None

    def add_batch(self, read: FileRead, outcome: BatchOutcome) -> None:
        return None


class NullObserver:
    """Observes nothing: the importer as a plain library, or under test."""

    @contextmanager
    def file_import(self, transcript: TranscriptFile) -> Iterator[FileImportSpan]:
        yield NullSpan()

    def committed(
        self, transcript: TranscriptFile, read: FileRead, outcome: BatchOutcome, seconds: float
    ) -> None:
        return None

    def quarantined(self, kind: str) -> None:
        return None

    def failure(self, error_type: str) -> None:
        return None
