"""Which file is imported when: scans, file events, parallel workers, retries, backlog, vanished files.

The checkpoint in the database is the only position: the scheduler keeps a cache of it per file
(``FileProgress``) for the backlog gauges, and ``FileImporter`` does the importing of each delta.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc
import anyio.to_thread
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_delay, stop_never
from tenacity.wait import wait_random_exponential
from watchfiles import Change, awatch

from ..errors import MnemoError, NotRegularSource, SourceError, StoreError
from ..model import (
    BatchOutcome,
    DocumentSink,
    GroupSink,
    ImportObserver,
    NullObserver,
    Sink,
    TranscriptFile,
)
from ..settings import ImportSettings, RetrySettings
from ..state import LoopState
from ..transcripts.discovery import SIDE_DOCUMENT_MAX_BYTES, NotRegular, discover, side_documents
from ..transcripts.reader import open_regular
from . import loss
from ._concurrency import run_all
from .file_import import FileImporter, FileProgress, file_signature
from .loss import OnLoss
from .small_files import GROUP_MAX_FILES, SmallFiles, Together

__all__ = ("AnnouncedFiles", "ImportSummary", "Importer")

logger = logging.getLogger("mnemo_otel.importer")

BACKLOG_REFRESH_SECONDS = 1.0  # within a pass; every pass ends with a fresh figure
ANNOUNCED_POLL_SECONDS = 1.0  # announced files are outside the watched roots: polled, one stat each


class AnnouncedFiles(Protocol):
    """Transcripts named by someone else than discovery (Claude Code's hooks: ``announce/``)."""

    async def refresh(self) -> None:
        """Take the announcements made since the last pass."""
        ...

    def files(self, not_regular: NotRegular) -> list[TranscriptFile]:
        """The announced transcripts present now (blocking: called in a worker thread)."""
        ...

    def changed(self) -> bool:
        """Whether anything announced moved since last asked (blocking, cheap)."""
        ...

    async def settle(self, imported: Callable[[Path], bool]) -> None:
        """After a pass: stop watching what is finished and imported to its end."""
        ...


@dataclass(slots=True)
class ImportSummary:
    """What one pass did; ``--json`` prints it."""

    files: int = 0
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    pending_bytes: int = 0
    unreadable: int = 0  # transcripts that could not be read this pass (the others were imported)
    not_regular: int = 0  # FIFOs, sockets, devices named *.jsonl: skipped, never opened

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "entries_stored": sum(self.outcome.stored.values()),
            "entries_by_type": dict(sorted(self.outcome.stored.items())),
            "duplicates": self.outcome.duplicates,
            "key_conflicts": self.outcome.key_conflicts,
            "quarantined": sum(self.outcome.quarantined.values()),
            "quarantined_by_kind": dict(sorted(self.outcome.quarantined.items())),
            "exchanges_created": self.outcome.exchanges_created,
            "pending_bytes": self.pending_bytes,
            "unreadable_files": self.unreadable,
            "skipped_not_regular": self.not_regular,
        }


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
        on_loss: OnLoss | None = None,
        announced: AnnouncedFiles | None = None,
    ) -> None:
        self.sink = sink
        self.roots = list(roots)
        self.announced = announced
        self.settings = settings or ImportSettings()
        self.retry = retry or RetrySettings()
        self.retry_for = retry_for
        self.observer = observer or NullObserver()
        self.state = state or LoopState()
        self._files: dict[Path, FileProgress] = {}
        # What was last reported, so each problem is logged and counted once per state, not per pass.
        self._not_regular: dict[Path, str] = {}
        # side document -> (inode, size, mtime) of the version last stored
        self._document_signatures: dict[str, tuple[int, int, int]] = {}
        self._unreadable: dict[Path, tuple[str, tuple[int, ...] | None]] = {}
        self._backlog_updated = 0.0
        self._on_loss = on_loss
        self._unmarked: set[str] = set()  # vanished files the database has not been told about yet
        on_reread = None if on_loss is None else partial(loss.rereading, on_loss=on_loss)
        self._file_importer = FileImporter(sink, self.settings, self.observer, self.state, on_reread)
        self._small_files = SmallFiles(sink, self._file_importer) if isinstance(sink, GroupSink) else None
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

        A file that cannot be read is reported (once per state) and never stops the others.

        :param tolerate_source_errors: if false, raise ``SourceError`` at the end of a pass in which a
            transcript could not be read (after importing everything else); if true, return the count
            in the summary.
        """
        summary = ImportSummary()
        if self.announced is not None:
            await self.announced.refresh()
        files = await self._scan(summary)
        await anyio.to_thread.run_sync(self._measure, files)
        self._update_backlog()
        queue = iter(self._by_directory_oldest_first(files))

        async def worker() -> None:
            for group in queue:  # a shared iterator: each directory goes to exactly one worker
                position = 0
                while position < len(group):
                    ahead = group[position : position + GROUP_MAX_FILES]
                    together = await self._import_together(ahead, report_tails=report_tails)
                    for transcript, outcome in together.imported:
                        imported(transcript, outcome)
                    for transcript in together.alone:
                        await import_one(transcript)
                    position += len(together.imported) + len(together.alone)

        async def import_one(transcript: TranscriptFile) -> None:
            try:
                outcome = await self._import_with_retry(transcript, report_tails=report_tails)
            except SourceError as exc:
                summary.unreadable += 1
                await self._report_unreadable(transcript.path, exc)
                return
            imported(transcript, outcome)

        def imported(transcript: TranscriptFile, outcome: BatchOutcome) -> None:
            self._unreadable.pop(transcript.path, None)
            summary.files += 1
            summary.outcome.add(outcome)
            if time.monotonic() - self._backlog_updated >= BACKLOG_REFRESH_SECONDS:
                self._update_backlog()  # it walks every file: per file, a catch-up of n files costs n²
            if progress is not None:
                progress(summary.files, len(files))

        # Directories are independent: while PostgreSQL stores one file, Python parses another.
        await run_all(*[worker] * self.settings.concurrent_files)
        await self._archive_documents(files)
        if self.announced is not None:
            await self.announced.settle(self._imported_to_end)
        summary.pending_bytes = sum(p.pending for p in self._files.values())
        self._update_backlog()
        if summary.unreadable and not tolerate_source_errors:
            raise SourceError(
                f"{summary.unreadable} transcript(s) could not be read; the others were imported"
            )
        return summary

    async def run(self, *, watch: bool = True) -> None:
        """The daemon loop: a full pass every rescan interval, and sooner when a transcript changes."""
        self.state.beat()
        async with anyio.create_task_group() as tasks:
            if watch:
                tasks.start_soon(self._watch)
            if self.announced is not None:
                tasks.start_soon(self._poll_announced, self.announced)
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

    async def _poll_announced(self, announced: AnnouncedFiles) -> None:
        """Wake the loop when the spool or an announced file changes (no file events out there)."""
        while True:
            await anyio.sleep(ANNOUNCED_POLL_SECONDS)
            try:
                moved = await anyio.to_thread.run_sync(announced.changed)
            except Exception as exc:  # noqa: BLE001 -- a failed poll costs a pass, never the loop
                logger.debug("announced files not polled (%s)", type(exc).__name__)
                moved = True
            if moved:
                self._changed.set()

    def _imported_to_end(self, path: Path) -> bool:
        progress = self._files.get(path)
        return progress is None or (progress.backlog == 0 and progress.pending == 0)

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
                if attempt.retry_state.attempt_number > 1:
                    # Measured again while the database is down: a file cut short or replaced meanwhile
                    # is a loss noticed now, and journaled, so a restart before it answers keeps it.
                    await anyio.to_thread.run_sync(self._measure, [transcript])
                progress = self._progress(transcript.path)
                await self._file_importer.import_file(
                    transcript, progress, outcome, report_tails=report_tails
                )
        return outcome

    async def _import_together(self, files: list[TranscriptFile], *, report_tails: bool) -> Together:
        """The small files at the head of ``files`` imported in one transaction, if two or more look
        small; else the first file, to import alone."""
        run = [] if self._small_files is None else self._small_files.run_ahead(files, self._files.get)
        if self._small_files is None or len(run) < 2:
            return Together(alone=files[:1])
        together = await self._small_files.import_together(run, self._progress, report_tails=report_tails)
        return together if together.imported or together.alone else Together(alone=files[:1])

    def _progress(self, path: Path) -> FileProgress:
        return self._files.setdefault(path, FileProgress())

    def _on_retry(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        kind = error.error_type if isinstance(error, MnemoError) else "internal"
        self.state.failed(kind)
        self.observer.failure(kind)
        delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
        logger.warning("import attempt failed (%s: %s); retrying in %.1fs", kind, error, delay)

    # -- scanning -------------------------------------------------------------------------------

    async def _scan(self, summary: ImportSummary) -> list[TranscriptFile]:
        odd: dict[Path, str] = {}
        found = await anyio.to_thread.run_sync(lambda: self._discover(odd.__setitem__))
        self.state.beat()
        for path, kind in odd.items():
            if self._not_regular.get(path) != kind:
                self.observer.failure(NotRegularSource.error_type)
                logger.warning(
                    "skipping %s: a %s, not a regular file; only regular files are imported", path, kind
                )
        self._not_regular = odd
        summary.not_regular = len(odd)
        return found

    def _discover(self, not_regular: NotRegular) -> list[TranscriptFile]:
        """Discovery under the roots, then the announced files it did not find (each path once)."""
        found = list(discover(self.roots, not_regular))
        if self.announced is not None:
            known = {transcript.path for transcript in found}
            found += [t for t in self.announced.files(not_regular) if t.path not in known]
        return found

    async def _archive_documents(self, files: list[TranscriptFile]) -> None:
        """Keep the side documents beside subagent transcripts (each version once). A failure is
        logged and tried again next pass: the documents are small, and the transcripts come first."""
        if not isinstance(self.sink, DocumentSink):
            return
        changed = await anyio.to_thread.run_sync(self._changed_documents, files)
        if not changed:
            return
        try:
            await self.sink.store_documents([(path, digest, body) for path, digest, body, _ in changed])
        except StoreError as exc:
            logger.warning("side documents not archived yet (%s); trying again next pass", exc)
            return
        # Stored (each version once): not read again until its file changes.
        self._document_signatures.update((path, signature) for path, _, _, signature in changed)

    def _changed_documents(
        self, files: list[TranscriptFile]
    ) -> list[tuple[str, bytes, bytes, tuple[int, int, int]]]:
        """The side documents whose file changed since the version last stored: one ``fstat`` each
        per pass, and a read only when inode, size or mtime moved."""
        changed = []
        for path in side_documents(files):
            try:
                with open_regular(path) as f:
                    signature = file_signature(os.fstat(f.fileno()))
                    if self._document_signatures.get(str(path)) == signature:
                        continue
                    body = f.read(SIDE_DOCUMENT_MAX_BYTES + 1)
            except OSError:
                continue  # gone meanwhile, or unreadable: a description, not a transcript
            if len(body) <= SIDE_DOCUMENT_MAX_BYTES:
                changed.append((str(path), hashlib.sha256(body).digest(), body, signature))
        return changed

    async def _report_unreadable(self, path: Path, exc: SourceError) -> None:
        """Warn and count once per (error, file state): a rescan of the same unreadable file is quiet."""
        try:
            st = await anyio.to_thread.run_sync(os.stat, path)
            seen: tuple[int, ...] | None = (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns)
        except OSError:
            seen = None
        state = (str(exc), seen)
        if self._unreadable.get(path) == state:
            return
        self._unreadable[path] = state
        self.observer.failure(exc.error_type)
        logger.warning("skipping transcript: %s", exc)

    async def _mark_missing(self) -> None:
        gone = [p for p in self._files if not p.exists()]
        for path in gone:
            progress = self._files.pop(path)
            self._unreadable.pop(path, None)
            if self._on_loss is not None:
                loss.vanished(path, progress, self._on_loss)
        self._unmarked.update(str(p) for p in gone)
        if not self._unmarked:
            return
        try:
            await self.sink.mark_missing(sorted(self._unmarked))
        except StoreError as exc:  # told on a later pass; the files' data is in the database already
            logger.warning("cannot note deleted transcripts yet (%s)", exc.error_type)
            return
        logger.info(
            "%d transcript(s) deleted from disk; their data stays in the database", len(self._unmarked)
        )
        self._unmarked.clear()

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
            progress = self._files.setdefault(transcript.path, FileProgress())
            progress.size, progress.mtime = stat.st_size, stat.st_mtime
            if self._on_loss is not None:
                loss.observe(transcript.path, progress, stat, self._on_loss)

    def _update_backlog(self) -> None:
        self._backlog_updated = time.monotonic()
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
        self.state.backlog(waiting, oldest)


def _is_transcript_event(change: Change, path: str) -> bool:
    """Transcript changes, and anything added: a directory moved in brings transcripts silently."""
    return path.endswith(".jsonl") or change is Change.added
