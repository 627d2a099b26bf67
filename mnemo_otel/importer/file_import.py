"""One file's delta: resume from the checkpoint, read ahead, commit batch by batch, report a stale tail.

Nothing here remembers progress the database has not committed: ``FileProgress`` is a cache of the
checkpoint for the scheduler's backlog, never ahead of it, so any failure resumes where the last
commit left off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat as stat_module
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from ..errors import BatchRejected, CheckpointMoved, NotRegularSource, SourceError, StoreUnavailable
from ..model import (
    BadLine,
    Batch,
    BatchOutcome,
    Entry,
    FileImportSpan,
    FileRead,
    ImportObserver,
    Quarantine,
    Sink,
    TranscriptFile,
)
from ..settings import ImportSettings
from ..state import LoopState
from ..transcripts.reader import NotRegularFile, file_kind
from ._concurrency import run_all
from .batches import changed_under_checkpoint, read_batch, read_tail

__all__ = (
    "COMMIT_GRACE_SECONDS",
    "READ",
    "FileDelta",
    "FileImporter",
    "FileProgress",
    "OnReread",
    "file_signature",
    "log_delta",
    "rejected_line",
    "source_error",
    "within_commit_grace",
)

logger = logging.getLogger("mnemo_otel.importer")

COMMIT_GRACE_SECONDS = 60.0
READ = "mnemo.read"
_WRITE = "mnemo.write"

_T = TypeVar("_T")


@dataclass(slots=True)
class FileProgress:
    """What the loop knows of one file between scans (a cache of the database, never ahead of it)."""

    committed: int | None = None
    size: int = 0
    mtime: float = 0.0
    pending: int = 0
    waiting_since: float | None = None
    tail_reported: tuple[int, int] | None = None  # (offset, length) already in the quarantine
    # (inode, size, mtime) when the file was last read to its end: unchanged means nothing to do.
    # Size alone is not enough: a file replaced by one of the same size must be looked at again.
    read_through: tuple[int, int, int] | None = None
    # Where the complete lines seen on disk end, and on which inode: bytes seen but not committed
    # when the file vanishes are a loss (``loss.py``).
    seen_inode: int | None = None
    seen_end: int = 0
    seen_mark: str | None = None  # a digest of the bytes just before seen_end

    @property
    def backlog(self) -> int:
        return max(0, self.size - (self.committed or 0) - self.pending)


@dataclass(slots=True)
class FileDelta:
    """One file delta in flight: everything the read and commit steps share."""

    transcript: TranscriptFile
    stat: os.stat_result
    progress: FileProgress
    span: FileImportSpan
    outcome: BatchOutcome = field(default_factory=BatchOutcome)

    @property
    def path(self) -> Path:
        return self.transcript.path

    def batch(self, read: FileRead) -> Batch:
        return Batch(
            path=str(self.path),
            root=str(self.transcript.root),
            identity=read.identity,
            start=read.start,
            end=read.end,
            entries=read.entries,
            bad_lines=read.bad_lines,
            trace_id=self.span.trace_id,
            blanks=read.blanks,
        )


OnReread = Callable[[Path, FileProgress, int], None]
"""Called (in a worker thread) with the old checkpoint when a changed file is about to be read from 0."""


class FileImporter:
    """Imports the new complete lines of one file at a time into ``sink``."""

    def __init__(
        self,
        sink: Sink,
        settings: ImportSettings,
        observer: ImportObserver,
        state: LoopState,
        on_reread: OnReread | None = None,
    ) -> None:
        self.sink = sink
        self.settings = settings
        self.observer = observer
        self.state = state
        self.on_reread = on_reread

    async def import_file(
        self, transcript: TranscriptFile, progress: FileProgress, outcome: BatchOutcome, *, report_tails: bool
    ) -> None:
        """Import what is new in ``transcript``; ``outcome`` accumulates even if a later batch fails."""
        path = transcript.path
        try:
            stat = await anyio.to_thread.run_sync(path.stat)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise source_error(path, exc) from exc
        if not stat_module.S_ISREG(stat.st_mode):  # swapped for a FIFO or the like since discovery
            raise source_error(path, NotRegularFile(path, file_kind(stat.st_mode)))
        progress.size, progress.mtime = stat.st_size, stat.st_mtime
        signature = file_signature(stat)
        if progress.read_through == signature:
            await self.report_stale_tail(transcript, progress, enabled=report_tails)
            return  # nothing new: no trace for an idle file
        with self.observer.file_import(transcript) as span:
            delta = FileDelta(transcript, stat, progress, span)
            try:
                await self._import_delta(delta)
            finally:
                outcome.add(delta.outcome)
            log_delta(delta)
        progress.read_through = signature
        await self.report_stale_tail(transcript, progress, enabled=report_tails)

    async def _import_delta(self, delta: FileDelta) -> None:
        """Read and commit batches from the checkpoint to the last complete line."""
        while True:
            offset = delta.progress.committed = await self._resume_offset(delta)
            try:
                await self._import_from(delta, offset)
                return
            except CheckpointMoved:
                logger.info("another importer advanced this file; resuming from its checkpoint")

    async def _import_from(self, delta: FileDelta, offset: int) -> None:
        """Commit batch after batch while the next one is read and parsed in a worker thread."""
        send, receive = anyio.create_memory_object_stream[FileRead | None](max_buffer_size=1)

        async def read_ahead() -> None:
            position = offset
            async with send:
                while True:
                    with delta.span.child(READ):
                        read = await self._read(delta.path, position)
                    try:
                        await send.send(read)
                    except anyio.BrokenResourceError:  # the committer stopped: nothing more is wanted
                        return
                    if read is None or read.exhausted:
                        return
                    position = read.end

        async def commit_all() -> None:
            async with receive:
                async for read in receive:
                    if read is None:  # the file vanished: what was committed stays
                        return
                    await self._commit_read(delta, read)

        await run_all(read_ahead, commit_all)

    async def _read(self, path: Path, offset: int) -> FileRead | None:
        try:
            return await anyio.to_thread.run_sync(read_batch, path, offset, self.settings)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise source_error(path, exc) from exc

    async def _commit_read(self, delta: FileDelta, read: FileRead) -> None:
        if read.end > read.start:
            started = time.perf_counter()
            batch = delta.batch(read)
            # a batch PostgreSQL refuses is split until the offending line is isolated
            outcome = await within_commit_grace(lambda: self._commit_splitting(batch))
            self.committed(delta, read, outcome, time.perf_counter() - started)
        self.state.beat()
        if read.exhausted:
            delta.progress.pending = read.pending

    def committed(self, delta: FileDelta, read: FileRead, outcome: BatchOutcome, seconds: float) -> None:
        """Book a committed batch: the loop state, the observer, the file's span, outcome and progress."""
        self.state.committed()
        self.observer.committed(delta.transcript, read, outcome, seconds)
        delta.span.timed(_WRITE, seconds)
        delta.span.add_batch(read, outcome)
        delta.outcome.add(outcome)
        delta.progress.committed = read.end
        delta.progress.waiting_since = None

    async def _resume_offset(self, delta: FileDelta) -> int:
        transcript = delta.transcript
        checkpoint = await self.sink.checkpoint(str(transcript.path))
        self.state.database_reached()
        if checkpoint is None:
            return 0
        reason = await _on_file(
            transcript.path,
            lambda: changed_under_checkpoint(
                transcript.path, delta.stat, checkpoint.offset, checkpoint.identity
            ),
        )
        if reason is None:
            return checkpoint.offset
        logger.warning(
            "transcript %s; re-reading from byte 0", reason, extra={"mnemo.offset": checkpoint.offset}
        )
        if self.on_reread is not None:
            await anyio.to_thread.run_sync(self.on_reread, transcript.path, delta.progress, checkpoint.offset)
        await self.sink.reset(str(transcript.path), str(transcript.root), expected_offset=checkpoint.offset)
        return 0

    async def _commit_splitting(self, batch: Batch) -> BatchOutcome:
        try:
            return await self.sink.commit(batch)
        except BatchRejected:
            if len(batch.entries) <= 1:
                return await self.sink.commit(_quarantine_rejected(batch))
        first, second = _split(batch)
        outcome = await self._commit_splitting(first)
        outcome.add(await self._commit_splitting(second))
        return outcome

    async def report_stale_tail(
        self, transcript: TranscriptFile, progress: FileProgress, *, enabled: bool
    ) -> None:
        """Quarantine-report an unterminated last line idle past the grace (once per tail state)."""
        if not enabled or progress.pending <= 0 or progress.committed is None:
            return
        if time.time() - progress.mtime < self.settings.tail_grace_seconds:
            return
        if progress.tail_reported == (progress.committed, progress.pending):
            return
        committed = progress.committed
        tail = await _on_file(transcript.path, lambda: read_tail(transcript.path, committed))
        if tail.length == 0:
            return
        newly_reported = await self.sink.report_tail(str(transcript.path), tail, None)
        progress.tail_reported = (progress.committed, progress.pending)
        if newly_reported:
            self.observer.quarantined(Quarantine.UNTERMINATED_TAIL.value)
            logger.warning(
                "unterminated last line idle past the grace period; kept pending",
                extra={"mnemo.offset": tail.offset, "mnemo.bytes": tail.length},
            )


async def within_commit_grace(commit: Callable[[], Awaitable[_T]]) -> _T:
    """Shielded: a stop request lets the commit finish; a database that hangs gets it rolled back."""
    with anyio.CancelScope(shield=True) as scope:
        scope.deadline = anyio.current_time() + COMMIT_GRACE_SECONDS
        result = await commit()
    if scope.cancelled_caught:
        raise StoreUnavailable("batch commit did not finish in time; rolled back")
    return result


def source_error(path: Path, exc: OSError) -> SourceError:
    """Ours for a file that cannot be read; a FIFO or device gets its own ``error.type``."""
    if isinstance(exc, NotRegularFile):
        return NotRegularSource(f"skipping {path}: not a regular file ({exc.kind})")
    return SourceError(f"cannot read {path}: {exc.strerror or type(exc).__name__}")


async def _on_file(path: Path, work: Callable[[], _T]) -> _T:
    """Blocking file work in a worker thread, its I/O errors as ``SourceError``."""
    try:
        return await anyio.to_thread.run_sync(work)
    except OSError as exc:
        raise source_error(path, exc) from exc


def file_signature(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def log_delta(delta: FileDelta) -> None:
    """Logged inside the span, so the line carries the import's trace id."""
    outcome = delta.outcome
    if outcome.stored or outcome.quarantined:
        logger.info(
            "imported %d entries, %d duplicates, %d quarantined",
            sum(outcome.stored.values()),
            outcome.duplicates,
            sum(outcome.quarantined.values()),
            extra={"mnemo.transcript.path": delta.transcript.relative_path},
        )


def _split(batch: Batch) -> tuple[Batch, Batch]:
    """Two batches cut at a line boundary in the middle of ``batch`` (it has at least two entries)."""
    middle = batch.entries[len(batch.entries) // 2].offset
    first = replace(
        batch,
        end=middle,
        entries=[e for e in batch.entries if e.offset < middle],
        bad_lines=[b for b in batch.bad_lines if b.offset < middle],
        blanks=[b for b in batch.blanks if b[0] < middle],
    )
    second = replace(
        batch,
        start=middle,
        entries=[e for e in batch.entries if e.offset >= middle],
        bad_lines=[b for b in batch.bad_lines if b.offset >= middle],
        blanks=[b for b in batch.blanks if b[0] >= middle],
    )
    return first, second


def _quarantine_rejected(batch: Batch) -> Batch:
    """The batch with its single entry moved to the quarantine (PostgreSQL refused its data)."""
    return replace(batch, entries=[], bad_lines=[*batch.bad_lines, *map(rejected_line, batch.entries)])


def rejected_line(entry: Entry) -> BadLine:
    """The quarantine record of a line PostgreSQL refused (also used when a repair hits one): its
    bytes as written, like every other quarantined line's, and the digest of the line proper."""
    written = entry.written
    return BadLine(
        entry.offset,
        entry.end,
        Quarantine.REJECTED_BY_DB,
        written,
        len(written),
        hashlib.sha256(entry.line).hexdigest(),
        "PostgreSQL refused the line's data",
    )
