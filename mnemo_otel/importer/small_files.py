"""A catch-up's small files, several to a transaction.

Importing history (a first start, a daemon back after days) meets hundreds of sessions of a few
hundred lines each. One at a time, each pays a checkpoint query, a transaction of four round trips
and a few thread hops for little data: that, not the rows, is most of a catch-up's cost. Here
consecutive files of one directory whose whole delta is one batch are read in one worker-thread call,
their checkpoints fetched in one query, and committed in one transaction (``GroupSink.commit_many``),
in their import order so the first seen still wins; each keeps its own trace.

Anything unusual is left to the one-file path, which knows how to handle it: a file that changed
under its checkpoint, a delta of more than a batch, a read error, a file known to be idle (its cheap
check), and the whole run when its commit fails (retries and batch splitting live there). A file read
with nothing new (a restart knows no checkpoint yet) is done without a commit.
"""

from __future__ import annotations

import logging
import os
import stat as stat_module
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread

from ..errors import SourceError, StoreError
from ..model import BatchOutcome, Checkpoint, FileRead, GroupSink, NullSpan, TranscriptFile
from ..settings import ImportSettings
from .batches import changed_under_checkpoint, read_batch
from .file_import import (
    READ,
    FileDelta,
    FileImporter,
    FileProgress,
    file_signature,
    log_delta,
    within_commit_grace,
)

__all__ = ("GROUP_MAX_BYTES", "GROUP_MAX_FILES", "SmallFiles", "Together")

logger = logging.getLogger("mnemo_otel.importer")

# A group's size. A worker holds about ten times its bytes at the commit (the lines parsed, the payload,
# the blocks, the driver's buffers). Measured on a 50 MB catch-up of 325 sessions (BENCHMARKS.md): 1 MiB
# groups import as fast as 2 MiB ones at 105 MiB peak RSS instead of 140, and 5 % faster than 512 KiB.
GROUP_MAX_FILES = 64
GROUP_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Together:
    """What a group did: the files it imported (a head of the run, in order), then the files to import
    one by one next: the one that did not qualify, or the whole run if its commit failed (nothing of
    it was kept; retries and batch splitting are the one-file path's)."""

    imported: list[tuple[TranscriptFile, BatchOutcome]] = field(default_factory=list)
    alone: list[TranscriptFile] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _SmallRead:
    transcript: TranscriptFile
    stat: os.stat_result
    read: FileRead
    seconds: float


class SmallFiles:
    """Imports runs of small files together through ``sink``; ``files`` books each as its own import."""

    def __init__(self, sink: GroupSink, files: FileImporter) -> None:
        self.sink = sink
        self.files = files

    def run_ahead(
        self, transcripts: Sequence[TranscriptFile], progress: Callable[[Path], FileProgress | None]
    ) -> list[TranscriptFile]:
        """The files at the head of ``transcripts`` that look small and changed by their last measure
        (the reads decide): at most a group's bytes in all."""
        limit = min(self.files.settings.batch_max_bytes, GROUP_MAX_BYTES)
        run: list[TranscriptFile] = []
        total = 0
        for transcript in transcripts[:GROUP_MAX_FILES]:
            known = progress(transcript.path)
            if known is None:
                break
            new = known.size - (known.committed or 0)
            if known.committed is not None and known.backlog == 0:
                break  # nothing new, or only an unterminated tail: the one-file path looks after it
            total += new
            if new <= 0 or total > limit:
                break
            run.append(transcript)
        return run

    async def import_together(
        self, run: Sequence[TranscriptFile], progress: Callable[[Path], FileProgress], *, report_tails: bool
    ) -> Together:
        """Import the longest head of ``run`` that qualifies, its new lines in one transaction."""
        try:
            checkpoints = await self.sink.checkpoints([str(t.path) for t in run])
        except StoreError:
            return Together(alone=list(run))
        self.files.state.database_reached()
        reads, unfit = await anyio.to_thread.run_sync(_read_run, run, checkpoints, self.files.settings)
        alone = [] if unfit is None else [unfit]
        deltas = [FileDelta(r.transcript, r.stat, progress(r.transcript.path), NullSpan()) for r in reads]
        with ExitStack() as spans:
            new = [(d, r) for d, r in zip(deltas, reads, strict=True) if r.read.end > r.read.start]
            for delta, _ in new:  # a trace per file with new lines, as when imported alone
                delta.span = spans.enter_context(self.files.observer.file_import(delta.transcript))
                # Runs when the spans opened after this one have closed: logged inside its own trace.
                spans.callback(log_delta, delta)
            if new and not await self._commit(new):
                return Together(alone=[delta.transcript for delta in deltas] + alone)
        for delta, small in zip(deltas, reads, strict=True):
            delta.progress.committed = small.read.end
            delta.progress.pending = small.read.pending
            delta.progress.size, delta.progress.mtime = small.stat.st_size, small.stat.st_mtime
            delta.progress.read_through = file_signature(small.stat)
            try:
                await self.files.report_stale_tail(delta.transcript, delta.progress, enabled=report_tails)
            except (SourceError, StoreError) as exc:  # reported on a later pass, as a file of its own
                logger.debug("stale tail not reported yet (%s)", exc.error_type)
        self.files.state.beat()
        return Together([(delta.transcript, delta.outcome) for delta in deltas], alone)

    async def _commit(self, new: list[tuple[FileDelta, _SmallRead]]) -> bool:
        batches = [delta.batch(small.read) for delta, small in new]
        started = time.perf_counter()
        try:
            outcomes = await within_commit_grace(lambda: self.sink.commit_many(batches))
        except StoreError as exc:
            logger.debug("files not committed together (%s); importing them one by one", exc.error_type)
            return False
        seconds = time.perf_counter() - started
        for (delta, small), outcome in zip(new, outcomes, strict=True):
            delta.span.timed(READ, small.seconds)
            self.files.committed(delta, small.read, outcome, seconds)
        return True


def _read_run(
    run: Sequence[TranscriptFile], checkpoints: dict[str, Checkpoint], settings: ImportSettings
) -> tuple[list[_SmallRead], TranscriptFile | None]:
    """Read the files at the head of ``run`` whose whole delta is one batch (or nothing), up to a group's
    worth in all (blocking: one worker-thread call for the lot). Also returned: the file that stopped
    the run by not qualifying, if one did (a file that only did not fit starts the next group)."""
    reads: list[_SmallRead] = []
    lines = size = 0
    for transcript in run:
        small = _read_small(transcript, checkpoints.get(str(transcript.path)), settings)
        if small is None:
            return reads, transcript
        lines += len(small.read.entries) + len(small.read.bad_lines)
        size += small.read.end - small.read.start
        if reads and (
            lines > settings.batch_max_lines or size > min(settings.batch_max_bytes, GROUP_MAX_BYTES)
        ):
            break
        reads.append(small)
    return reads, None


def _read_small(
    transcript: TranscriptFile, checkpoint: Checkpoint | None, settings: ImportSettings
) -> _SmallRead | None:
    path = transcript.path
    started = time.perf_counter()
    try:
        stat = path.stat()
        if not stat_module.S_ISREG(stat.st_mode):
            return None
        offset = 0
        if checkpoint is not None:
            if changed_under_checkpoint(path, stat, checkpoint.offset, checkpoint.identity) is not None:
                return None
            offset = checkpoint.offset
        read = read_batch(path, offset, settings)
    except OSError:
        return None
    if not read.exhausted:
        return None  # more than a batch: the one-file path reads ahead while it commits
    return _SmallRead(transcript, stat, read, time.perf_counter() - started)
