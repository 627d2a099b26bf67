"""The import loop: discover -> read -> parse -> write + checkpoint, on anyio.

The checkpoint in the database is the only position: nothing here remembers progress that the
database has not committed, so any crash, lost connection or cancelled batch resumes exactly where the
last commit left off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_delay, stop_never
from tenacity.wait import wait_random_exponential
from watchfiles import Change, awatch

from ._batches import FileRead, changed_under_checkpoint, read_batch, read_tail
from .errors import BatchRejected, CheckpointMoved, MnemoError, SourceError, StoreError, StoreUnavailable
from .observer import FileImportSpan, ImportObserver, NullObserver
from .settings import ImportSettings, RetrySettings
from .state import LoopState
from .store.sink import Batch, BatchOutcome, Sink
from .transcripts.discovery import TranscriptFile, discover
from .transcripts.parse import BadLine, Entry, Quarantine

__all__ = ("ImportSummary", "Importer")

logger = logging.getLogger(__name__)

COMMIT_GRACE_SECONDS = 60.0


@dataclass(slots=True)
class ImportSummary:
    """What one pass did; ``--json`` prints it."""

    files: int = 0
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    pending_bytes: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "entries_stored": sum(self.outcome.stored.values()),
            "entries_by_type": dict(sorted(self.outcome.stored.items())),
            "duplicates": self.outcome.duplicates,
            "quarantined": sum(self.outcome.quarantined.values()),
            "quarantined_by_kind": dict(sorted(self.outcome.quarantined.items())),
            "exchanges_created": self.outcome.exchanges_created,
            "pending_bytes": self.pending_bytes,
        }


@dataclass(slots=True)
class _FileProgress:
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

    @property
    def backlog(self) -> int:
        return max(0, self.size - (self.committed or 0) - self.pending)


class Importer:
    """Imports transcripts under ``roots`` into ``sink``.

    :param retry_for: seconds to keep retrying an unavailable database; ``None`` means forever (daemon).
    """

    def __init__(
        self,
        sink: Sink,
        *,
        roots: Sequence[Path],
        settings: ImportSettings | None = None,
        retry: RetrySettings | None = None,
        retry_for: float | None = None,
        observer: ImportObserver | None = None,
        state: LoopState | None = None,
    ) -> None:
        self.sink = sink
        self.roots = list(roots)
        self.settings = settings or ImportSettings()
        self.retry = retry or RetrySettings()
        self.retry_for = retry_for
        self.observer = observer or NullObserver()
        self.state = state or LoopState()
        self._files: dict[Path, _FileProgress] = {}
        self._changed = anyio.Event()

    # -- passes ---------------------------------------------------------------------------------

    async def import_once(
        self,
        *,
        report_tails: bool = False,
        tolerate_source_errors: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportSummary:
        """Import every complete line present now; unterminated tails stay pending.

        :param tolerate_source_errors: log an unreadable file and go on (daemon) instead of raising.
        """
        summary = ImportSummary()
        files = await self._scan()
        await anyio.to_thread.run_sync(self._measure, files)
        self._update_backlog()
        queue = iter(self._by_directory_oldest_first(files))

        async def worker() -> None:
            for group in queue:  # a shared iterator: each directory goes to exactly one worker
                for transcript in group:
                    await import_one(transcript)

        async def import_one(transcript: TranscriptFile) -> None:
            try:
                outcome = await self._import_with_retry(transcript, report_tails=report_tails)
            except SourceError as exc:
                self.observer.failure(exc.error_type)
                if not tolerate_source_errors:
                    raise
                logger.warning("skipping unreadable transcript: %s", exc)
                return
            summary.files += 1
            summary.outcome.add(outcome)
            self._update_backlog()
            if progress is not None:
                progress(summary.files, len(files))

        # Directories are independent: while PostgreSQL stores one file, Python parses another.
        await _run_all(*[worker] * self.settings.concurrent_files)
        summary.pending_bytes = sum(p.pending for p in self._files.values())
        self._update_backlog()
        return summary

    async def run(self, *, watch: bool = True) -> None:
        """The daemon loop: a full pass every rescan interval, and sooner when a transcript changes."""
        self.state.beat()
        async with anyio.create_task_group() as tasks:
            if watch:
                tasks.start_soon(self._watch)
            while True:
                self._changed = anyio.Event()
                await self.import_once(report_tails=True, tolerate_source_errors=True)
                await self._mark_missing()
                await self._idle()

    async def _idle(self) -> None:
        """Wait for a file event or the next rescan, beating as the loop's own idle work."""
        deadline = anyio.current_time() + self.settings.rescan_interval_seconds
        while not self._changed.is_set() and anyio.current_time() < deadline:
            self.state.beat()
            with anyio.move_on_after(min(self.settings.idle_beat_seconds, deadline - anyio.current_time())):
                await self._changed.wait()

    async def _watch(self) -> None:
        """Wake the loop on file events; the periodic rescan stays the source of truth."""
        roots = [root for root in self.roots if root.exists()]
        if not roots:
            return
        try:
            async for _ in awatch(*roots, debounce=50, step=50, watch_filter=_is_transcript_event):
                self._changed.set()
        except Exception as exc:  # noqa: BLE001 -- any watcher failure degrades to polling; the rescan finds everything
            logger.warning("file watching stopped (%s); relying on the periodic rescan", type(exc).__name__)

    # -- one file -------------------------------------------------------------------------------

    async def _import_with_retry(self, transcript: TranscriptFile, *, report_tails: bool) -> BatchOutcome:
        stop = stop_never if self.retry_for is None else stop_after_delay(self.retry_for)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(StoreError),
            wait=wait_random_exponential(multiplier=self.retry.initial_seconds, max=self.retry.max_seconds),
            stop=stop,
            sleep=anyio.sleep,
            before_sleep=self._on_retry,
            reraise=True,
        )
        outcome = BatchOutcome()  # accumulates across attempts: batches committed before a failure count
        async for attempt in retrying:
            with attempt:
                await self._import_file(transcript, outcome, report_tails=report_tails)
        return outcome

    def _on_retry(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        kind = error.error_type if isinstance(error, MnemoError) else "internal"
        self.state.db_up = False
        self.state.last_error = kind
        self.state.beat()
        self.observer.failure(kind)
        delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
        logger.warning("import attempt failed (%s: %s); retrying in %.1fs", kind, error, delay)

    async def _import_file(
        self, transcript: TranscriptFile, outcome: BatchOutcome, *, report_tails: bool
    ) -> None:
        path = transcript.path
        progress = self._files.setdefault(path, _FileProgress())
        try:
            stat = await anyio.to_thread.run_sync(path.stat)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}") from exc
        progress.size, progress.mtime = stat.st_size, stat.st_mtime
        if progress.read_through == _signature(stat):
            await self._maybe_report_tail(transcript, progress, report_tails)
            return  # nothing new: no trace for an idle file
        signature = _signature(stat)
        with self.observer.file_import(transcript) as span:
            delta = BatchOutcome()
            try:
                await self._import_delta(transcript, stat, progress, span, delta)
            finally:
                outcome.add(delta)
            if delta.stored or delta.quarantined:  # logged inside the span: the line carries its trace id
                logger.info(
                    "imported %d entries, %d duplicates, %d quarantined",
                    sum(delta.stored.values()),
                    delta.duplicates,
                    sum(delta.quarantined.values()),
                    extra={"mnemo.transcript.path": transcript.relative_path},
                )
        progress.read_through = signature
        await self._maybe_report_tail(transcript, progress, report_tails)

    async def _import_delta(
        self,
        transcript: TranscriptFile,
        stat: os.stat_result,
        progress: _FileProgress,
        span: FileImportSpan,
        outcome: BatchOutcome,
    ) -> None:
        """Read and commit batches from the checkpoint to the last complete line."""
        offset = progress.committed = await self._resume_offset(transcript, stat)
        while True:
            try:
                await self._import_from(transcript, offset, progress, span, outcome)
                return
            except CheckpointMoved:
                logger.info("another importer advanced this file; resuming from its checkpoint")
                offset = progress.committed = await self._resume_offset(transcript, stat)

    async def _import_from(
        self,
        transcript: TranscriptFile,
        offset: int,
        progress: _FileProgress,
        span: FileImportSpan,
        outcome: BatchOutcome,
    ) -> None:
        """Commit batch after batch while the next one is read and parsed in a worker thread."""
        send, receive = anyio.create_memory_object_stream[FileRead | None](max_buffer_size=1)

        async def read_ahead() -> None:
            nonlocal offset
            async with send:
                while True:
                    with span.child("mnemo.read"):
                        read = await self._read(transcript.path, offset)
                    try:
                        await send.send(read)
                    except anyio.BrokenResourceError:  # the committer stopped: nothing more is wanted
                        return
                    if read is None or read.exhausted:
                        return
                    offset = read.end

        async def commit_all() -> None:
            async with receive:
                async for read in receive:
                    if read is None:  # the file vanished: what was committed stays
                        return
                    await self._commit_read(transcript, read, progress, span, outcome)

        await _run_all(read_ahead, commit_all)

    async def _read(self, path: Path, offset: int) -> FileRead | None:
        try:
            return await anyio.to_thread.run_sync(read_batch, path, offset, self.settings)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}") from exc

    async def _commit_read(
        self,
        transcript: TranscriptFile,
        read: FileRead,
        progress: _FileProgress,
        span: FileImportSpan,
        outcome: BatchOutcome,
    ) -> None:
        if read.end > read.start:
            with span.child("mnemo.write"):
                committed = await self._commit(transcript, read, span.trace_id)
            span.add_batch(read, committed)
            outcome.add(committed)
            progress.committed = read.end
            progress.waiting_since = None
        self.state.beat()
        if read.exhausted:
            progress.pending = read.pending

    async def _resume_offset(self, transcript: TranscriptFile, stat: os.stat_result) -> int:
        checkpoint = await self.sink.checkpoint(str(transcript.path))
        self.state.db_up = True
        if checkpoint is None:
            return 0
        reason = await anyio.to_thread.run_sync(
            changed_under_checkpoint, transcript.path, stat, checkpoint.offset, checkpoint.identity
        )
        if reason is None:
            return checkpoint.offset
        logger.warning(
            "transcript %s; re-reading from byte 0", reason, extra={"mnemo.offset": checkpoint.offset}
        )
        await self.sink.reset(str(transcript.path), str(transcript.root), expected_offset=checkpoint.offset)
        return 0

    async def _commit(self, transcript: TranscriptFile, read: FileRead, trace_id: str | None) -> BatchOutcome:
        """Commit one batch; a batch PostgreSQL refuses is split until the offending line is isolated."""
        batch = Batch(
            path=str(transcript.path),
            root=str(transcript.root),
            identity=read.identity,
            start=read.start,
            end=read.end,
            entries=read.entries,
            bad_lines=read.bad_lines,
            trace_id=trace_id,
        )
        started = time.perf_counter()
        # Shielded: a stop request lets the batch finish; a database that hangs gets it rolled back.
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + COMMIT_GRACE_SECONDS
            outcome = await self._commit_splitting(batch)
        if scope.cancelled_caught:
            raise StoreUnavailable("batch commit did not finish in time; rolled back")
        self.state.db_up = True
        self.state.last_success = time.time()
        self.observer.committed(transcript, read, outcome, time.perf_counter() - started)
        return outcome

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

    async def _maybe_report_tail(
        self, transcript: TranscriptFile, progress: _FileProgress, enabled: bool
    ) -> None:
        if not enabled or progress.pending <= 0 or progress.committed is None:
            return
        if time.time() - progress.mtime < self.settings.tail_grace_seconds:
            return
        if progress.tail_reported == (progress.committed, progress.pending):
            return
        tail = await anyio.to_thread.run_sync(read_tail, transcript.path, progress.committed)
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

    # -- scanning -------------------------------------------------------------------------------

    async def _scan(self) -> list[TranscriptFile]:
        found = await anyio.to_thread.run_sync(lambda: list(discover(self.roots)))
        self.state.beat()
        return found

    async def _mark_missing(self) -> None:
        present = {str(p) for p in self._files if p.exists()}
        gone = [str(p) for p in self._files if str(p) not in present]
        for path in gone:
            self._files.pop(Path(path), None)
        if gone:
            await self.sink.mark_missing(gone)
            logger.info("%d transcript(s) deleted from disk; their data stays in the database", len(gone))

    def _by_directory_oldest_first(self, files: list[TranscriptFile]) -> list[list[TranscriptFile]]:
        """Files grouped by directory, oldest first within each: one worker takes a whole group.

        A resumed session repeats its predecessor's lines in a newer file of the same project
        directory; importing the older file first makes "first seen wins" mean "the original wins",
        whatever the number of workers.
        """
        groups: dict[Path, list[TranscriptFile]] = {}
        for transcript in files:
            groups.setdefault(transcript.path.parent, []).append(transcript)
        for group in groups.values():
            group.sort(
                key=lambda t: (self._files[t.path].mtime if t.path in self._files else 0.0, t.path.name)
            )
        return list(groups.values())

    def _measure(self, files: list[TranscriptFile]) -> None:
        """Sizes of every file before importing, so the backlog is known even if importing stalls."""
        for transcript in files:
            try:
                stat = transcript.path.stat()
            except OSError:
                continue
            progress = self._files.setdefault(transcript.path, _FileProgress())
            progress.size, progress.mtime = stat.st_size, stat.st_mtime

    def _update_backlog(self) -> None:
        now = time.time()
        waiting = 0
        oldest: float | None = None
        for progress in self._files.values():
            if progress.backlog > 0:
                waiting += progress.backlog
                if progress.waiting_since is None:
                    progress.waiting_since = now
                oldest = progress.waiting_since if oldest is None else min(oldest, progress.waiting_since)
            else:
                progress.waiting_since = None
        self.state.backlog_bytes = waiting
        self.state.backlog_since = oldest


def _signature(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


async def _run_all(*jobs: Callable[[], Awaitable[None]]) -> None:
    """Run jobs concurrently; the first of our errors stops the others and is raised as itself.

    (A task group would wrap it in an ExceptionGroup, and callers want to catch ``StoreError``.)
    """
    failure: MnemoError | None = None

    async def guarded(job: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
        nonlocal failure
        try:
            await job()
        except MnemoError as exc:
            failure = failure or exc
            scope.cancel()

    async with anyio.create_task_group() as tasks:
        for job in jobs:
            tasks.start_soon(guarded, job, tasks.cancel_scope)
    if failure is not None:
        raise failure


def _is_transcript_event(change: Change, path: str) -> bool:
    """Transcript changes, and anything added: a directory moved in brings transcripts silently."""
    return path.endswith(".jsonl") or change is Change.added


def _split(batch: Batch) -> tuple[Batch, Batch]:
    """Two batches cut at a line boundary in the middle of ``batch`` (it has at least two entries)."""
    middle = batch.entries[len(batch.entries) // 2].offset
    first = replace(
        batch,
        end=middle,
        entries=[e for e in batch.entries if e.offset < middle],
        bad_lines=[b for b in batch.bad_lines if b.offset < middle],
    )
    second = replace(
        batch,
        start=middle,
        entries=[e for e in batch.entries if e.offset >= middle],
        bad_lines=[b for b in batch.bad_lines if b.offset >= middle],
    )
    return first, second


def _quarantine_rejected(batch: Batch) -> Batch:
    """The batch with its single entry moved to the quarantine (PostgreSQL refused its data)."""
    return replace(batch, entries=[], bad_lines=[*batch.bad_lines, *map(_rejected, batch.entries)])


def _rejected(entry: Entry) -> BadLine:
    return BadLine(
        entry.offset,
        entry.end,
        Quarantine.REJECTED_BY_DB,
        entry.line,
        len(entry.line),
        hashlib.sha256(entry.line).hexdigest(),
        "PostgreSQL refused the line's data",
    )
