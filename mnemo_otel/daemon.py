"""Assembling the pieces for each CLI command: database, sink, importer, signals.

Kept apart from ``cli.py`` (argument parsing) and ``importer.py`` (the loop itself) so each can be
read, and tested, on its own.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread

from .announce.spool import Spool, spool_directory
from .announce.store import AnnouncementStore
from .announce.tracker import Announcements
from .errors import ConfigError, StoreError
from .health import HealthServer
from .importer import Importer, ImportSummary
from .importer._concurrency import run_all
from .settings import Settings
from .signals import cancel_on_signal
from .state import LoopState
from .store import fleet
from .store.open import open_sink
from .store.postgres import PostgresSink, translate_errors
from .telemetry.instruments import ImportTelemetry
from .verify.loss_journal import LossJournal, journal_path
from .verify.losses import LossLedger
from .verify.scrub import Maintenance
from .watchdog import Watchdog

__all__ = ("import_now", "list_hosts", "migrate_only", "open_sink", "retire_host", "run_daemon")

logger = logging.getLogger(__name__)

ONE_SHOT_RETRY_SECONDS = 60.0
FLEET_REFRESH_SECONDS = 60.0
"""How often the daemon marks its host alive in ``mnemo.hosts`` and re-reads the fleet's members."""


async def migrate_only(settings: Settings) -> int:
    sink = await open_sink(settings, migrate=False, enroll=False)  # an admin's machine claims nothing
    try:
        from .store.migrate import apply_migrations

        async with translate_errors(), sink.connection() as conn:
            return len(await apply_migrations(conn))
    finally:
        await sink.aclose()


async def list_hosts(settings: Settings) -> list[fleet.HostRecord]:
    sink = await open_sink(settings, enroll=False)
    try:
        async with translate_errors(), sink.connection() as conn:
            return await fleet.hosts(conn)
    finally:
        await sink.aclose()


async def retire_host(settings: Settings, host_id: str, *, force: bool) -> None:
    sink = await open_sink(settings, enroll=False)
    try:
        async with translate_errors(), sink.connection() as conn:
            await fleet.retire(conn, host_id, force=force)
    finally:
        await sink.aclose()


def settle_heap() -> None:
    """Everything loaded at start (the SDK, asyncpg, pydantic...) out of the garbage collector's sight.

    Parsing allocates a container per JSON value, so collections run often, and each full one walked
    every object of every module loaded: about a tenth of a catch-up's CPU.
    """
    gc.freeze()


async def import_now(settings: Settings, roots: Sequence[Path], show_progress: bool) -> ImportSummary:
    sink = await open_sink(settings)
    settle_heap()
    state = LoopState()
    importer = Importer(
        sink,
        roots=roots,
        settings=settings.imports,
        retry=settings.retry,
        retry_for=ONE_SHOT_RETRY_SECONDS,
        observer=ImportTelemetry(state, volumes=_volumes(settings, roots)),
        state=state,
    )
    try:
        if not show_progress:
            return await importer.import_once(tolerate_source_errors=True)
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("importing", total=None)
            return await importer.import_once(
                tolerate_source_errors=True,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        with anyio.CancelScope(shield=True):
            await sink.aclose()


async def run_daemon(settings: Settings, roots: Sequence[Path]) -> None:
    """Run until SIGTERM/SIGINT; the batch in flight is finished or rolled back, then exit 0.

    Liveness comes with it: gauges read the loop state, the health endpoint serves it, and the
    watchdog thread exits the process if the loop stops beating.
    """
    state = LoopState()
    try:
        health = HealthServer(state, settings.health)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve health on {settings.health.host}:{settings.health.port}: {exc.strerror}"
        ) from exc
    health.start()
    stop = anyio.CancelScope()
    try:
        with stop:
            # The signal watch first of all: a stop during start-up (an embedded server starting, a
            # slow database, the loss ledger loading) is as clean as one during the import, not the
            # default action's 143. ``run_all`` lets start-up errors out as themselves (exit codes).
            await run_all(
                partial(cancel_on_signal, stop, stopping="stopping after the current batch"),
                partial(_serve_with_sinks, settings, roots, state, stop),
            )
    finally:
        health.stop()
        logger.info("importer stopped")


async def _serve_with_sinks(
    settings: Settings, roots: Sequence[Path], state: LoopState, stop: anyio.CancelScope
) -> None:
    async with _daemon_sinks(settings) as (sink, chores):
        await _serve(settings, roots, state, sink, chores, stop)


@asynccontextmanager
async def _daemon_sinks(settings: Settings) -> AsyncIterator[tuple[PostgresSink, PostgresSink]]:
    """The importer's sink, and one connection of its own for the chores (never the importer's)."""
    sink = await open_sink(settings)
    try:
        chores = await open_sink(settings, migrate=False, enroll=False, pool_size=1)
        try:
            yield sink, chores
        finally:
            with anyio.CancelScope(shield=True):
                await chores.aclose()
    finally:
        with anyio.CancelScope(shield=True):
            await sink.aclose()


async def _serve(
    settings: Settings,
    roots: Sequence[Path],
    state: LoopState,
    sink: PostgresSink,
    chores: PostgresSink,
    stop: anyio.CancelScope,
) -> None:
    losses = LossLedger(
        chores, settings.host_id, state, LossJournal(journal_path(settings.data_dir, _archive(settings)))
    )
    maintenance = Maintenance(sink=chores, losses=losses, roots=roots, settings=settings, state=state)
    await maintenance.load()
    settle_heap()
    importer = Importer(
        sink,
        roots=roots,
        settings=settings.imports,
        retry=settings.retry,
        observer=ImportTelemetry(state, volumes=_volumes(settings, roots)),
        state=state,
        on_loss=losses,
        announced=Announcements(
            Spool(spool_directory(settings.data_dir)),
            AnnouncementStore(sink),
            roots=roots,
            state=state,
            idle_seconds=settings.imports.announced_idle_seconds,
        ),
    )
    watchdog = Watchdog(state, settings.watchdog.timeout_seconds)
    watchdog.start()
    logger.info("importer started", extra={"mnemo.roots": len(roots)})

    async def import_then_stop() -> None:
        await importer.run()
        stop.cancel()  # the loop ended by itself: so do the chores and the signal watch

    try:
        await run_all(partial(_keep_membership, sink, state), maintenance.run, import_then_stop)
    finally:
        watchdog.stop()


def _archive(settings: Settings) -> str:
    """Which archive this is, for naming local state: the database URL without its password or
    query (hashed by the caller, never shown), or the embedded server."""
    if settings.database_url is None:
        return "embedded"
    url = settings.database_url.get_secret_value().split("?", 1)[0]
    return re.sub(r"^([^:/]+://[^:@/]*):[^@/]*@", r"\1@", url)


def _volumes(settings: Settings, roots: Sequence[Path]) -> dict[str, Path]:
    """The volumes whose free space matters: the first existing transcript root, and our data."""
    volumes = {"data": settings.data_dir if settings.data_dir.exists() else settings.data_dir.parent}
    watched = next((root for root in roots if root.exists()), None)
    if watched is not None:
        volumes["watched"] = watched
    return volumes


async def _keep_membership(sink: PostgresSink, state: LoopState) -> None:
    """This host is a member while its daemon runs; the members are exported for the heartbeat alert.

    Not the heartbeat: a failure here only leaves the last known members in place (the import loop
    reports the database as down on its own), and an empty list is never exported for a stale one.
    """
    while True:
        try:
            state.fleet_members = tuple(await sink.touch_host())
        except StoreError as exc:
            logger.debug("fleet membership not refreshed: %s", exc)
        await anyio.sleep(FLEET_REFRESH_SECONDS)
