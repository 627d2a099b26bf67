"""The daemon's chores beside the import loop: the periodic scrub, the restore drill, the loss ledger,
the retention guard.

The scrub checks only what each file's checkpoint says was imported (lines past it are the live
importer's), keys in one worker process at low CPU priority, and looks keys up on its own database
connection, so the live import keeps its latency while a scrub runs. What it finds missing is
repaired from the source at once; the count found (before the repair) is the ``verify.missing``
gauge, and each completed scrub is recorded, so "when did it last run" survives restarts.

The scrub proves the source is in the archive; the drill proves the archive can give the source back
(``restore --check``, from the database alone). It runs at start, since its counts are not kept
across restarts and a damaged archive must not go quiet with a restart, and after each scrub.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
from opentelemetry import trace

from .._version import __version__
from ..errors import MnemoError
from ..restore.run import check_archive
from ..retention import cleanup_period_days
from ..settings import Settings
from ..state import LoopState
from ..store import ledger
from ..store.postgres import PostgresSink, translate_errors
from ..telemetry import names
from ..telemetry.instruments import SCOPE
from .losses import LossLedger
from .repair import repair_missing
from .run import VerifyOptions, discovered_and_announced, run_verify

__all__ = ("SPAN_SCRUB", "Maintenance")

logger = logging.getLogger("mnemo_otel.verify")

SPAN_SCRUB = "mnemo.verify.scrub"
TICK_SECONDS = 1.0
RETENTION_EVERY_SECONDS = 60.0
SCRUB_RETRY_SECONDS = 60.0


class Maintenance:
    def __init__(
        self,
        *,
        sink: PostgresSink,
        losses: LossLedger,
        roots: Sequence[Path],
        settings: Settings,
        state: LoopState,
    ) -> None:
        self._sink = sink  # its own pool: the scrub never takes a connection from the importer
        self._losses = losses
        self._roots = list(roots)
        self._settings = settings
        self._state = state
        self._tracer = trace.get_tracer(SCOPE, __version__)
        state.verify_interval = settings.verify.interval_seconds

    async def load(self) -> None:
        """What earlier runs recorded: the loss total and the last scrub of this host."""
        self._refresh_retention()
        await self._losses.load()
        async with translate_errors(), self._sink.connection() as conn:
            last = await ledger.last_scrub(conn, self._settings.host_id)
        if last is not None:
            self._state.verify_last_run, self._state.verify_missing = last.finished_at, last.missing

    async def run(self) -> None:
        interval = self._settings.verify.interval_seconds
        last = self._state.verify_last_run
        next_scrub = time.time() if last is None else last + interval
        next_retention = time.time() + RETENTION_EVERY_SECONDS
        next_drill: float | None = time.time() if interval > 0 else None
        while True:
            now = time.time()
            if now >= next_retention:
                self._refresh_retention()
                next_retention = now + RETENTION_EVERY_SECONDS
            await self._flush_losses()
            if interval > 0 and now >= next_scrub:
                done = await self.scrub()
                next_scrub = time.time() + (interval if done else min(interval, SCRUB_RETRY_SECONDS))
                next_drill = time.time() if done else next_drill
            if next_drill is not None and time.time() >= next_drill:
                next_drill = None if await self.drill() else time.time() + SCRUB_RETRY_SECONDS
            await anyio.sleep(TICK_SECONDS)

    async def scrub(self) -> bool:
        """One scrub and its repair; ``False`` if it could not complete (retried later)."""
        started = time.time()
        options = VerifyOptions(
            max_line_bytes=self._settings.imports.max_line_bytes,
            workers=1,
            niceness=self._settings.verify.niceness,
            committed_only=True,
        )
        with self._tracer.start_as_current_span(SPAN_SCRUB) as span:
            context = span.get_span_context()
            trace_id = format(context.trace_id, "032x") if context.is_valid else None
            try:
                found = await discovered_and_announced(self._sink, self._roots)
                report = await run_verify(self._sink, self._roots, options, found)
                repaired = await repair_missing(
                    self._sink,
                    report.all_missing,
                    settings=self._settings.imports,
                    trace_id=trace_id,
                )
                async with translate_errors(), self._sink.connection() as conn:
                    finished = await ledger.record_scrub(
                        conn,
                        self._settings.host_id,
                        started_at=started,
                        counts=(report.files, report.lines, report.missing, repaired),
                        trace_id=trace_id,
                    )
            except (MnemoError, anyio.BrokenWorkerProcess) as exc:
                logger.warning("scrub did not complete (%s); retrying later", type(exc).__name__)
                return False
            span.set_attributes({"mnemo.verify.missing": report.missing, "mnemo.verify.repaired": repaired})
        self._state.scrubbed(at=finished, missing=report.missing, repaired=repaired)
        log = logger.warning if report.missing else logger.info
        log(
            "scrub checked %d lines in %d files: %d missing, %d repaired (%.1fs)",
            report.lines,
            report.files,
            report.missing,
            repaired,
            report.duration_seconds,
        )
        return True

    async def drill(self) -> bool:
        """The restore drill over this host's files; ``False`` if it could not complete (retried later).

        Only counts are logged: the inexact files' paths are for ``restore --check`` to name.
        """
        started = time.monotonic()
        try:
            async with translate_errors(), self._sink.connection() as conn:
                report = await check_archive(conn, self._settings.host_id)
        except MnemoError as exc:
            logger.warning("restore drill did not complete (%s); retrying later", type(exc).__name__)
            return False
        counts = {kind: report.count(kind) for kind in names.RESTORE_KINDS}
        self._state.drilled(counts)
        damaged, before = counts[names.RESTORE_DAMAGED], counts[names.RESTORE_BEFORE_EXACT_LINES]
        log = logger.warning if damaged else logger.info
        log(
            "restore drill: %d of %d files can be restored exactly; %d damaged, %d imported before "
            "exact lines were kept (%.1fs)",
            report.exact,
            report.files,
            damaged,
            before,
            time.monotonic() - started,
        )
        return True

    async def _flush_losses(self) -> None:
        try:
            await self._losses.flush()
        except MnemoError as exc:
            logger.debug("source losses not recorded yet (%s)", exc.error_type)

    def _refresh_retention(self) -> None:
        self._state.retention_days = cleanup_period_days(self._settings.claude_settings)
