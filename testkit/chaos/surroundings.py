"""Chaos in the importer's surroundings: the collector stopped, files truncated and replaced.

Same verdict as :mod:`.scenarios`: the database must end exactly where the generator's manifest says
(0 lost, 0 duplicated), and each scenario reports its time to recovery. The data volume filling up is
in :mod:`.disk`, the hung loop under a supervisor in :mod:`.supervisor`.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import asyncpg

from mnemo_otel.telemetry import names

from ..collector import Collector
from ..manifest import Line, Manifest
from ..postgres_server import PostgresServer
from ..prometheus import Prometheus
from ..stack import running_backends
from ..synthetic import plain_session
from ..verdict import snapshot
from .harness import (
    POLL_TIMEOUT_SECONDS,
    ChaosResult,
    Scale,
    build_corpus,
    complete_bytes,
    fresh_database,
    importer_process,
    judge,
    wait_for_checkpoints,
    wait_for_files,
)
from .writer import Writer

__all__ = ("collector_outage", "poll", "truncate_and_replace")

HEARTBEAT = f"max({names.HEARTBEAT.prometheus})"
TELEMETRY_ENV = {
    "OTEL_SDK_DISABLED": "false",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "2",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_BLRP_SCHEDULE_DELAY": "200",
    "MNEMO_IMPORTS__IDLE_BEAT_SECONDS": "0.5",
}


# -- 1. the collector stopped for minutes -----------------------------------------------------------


async def collector_outage(server: PostgresServer, workdir: Path, scale: Scale, *, seed: int) -> ChaosResult:
    """The daemon exports to the real collector (shipped config -> Prometheus); the collector stops for
    ``collector_down_seconds`` while transcripts keep growing, then comes back.

    Importing must not notice (nothing lost or duplicated), and the heartbeat series must resume in
    Prometheus by itself: recovery is collector back -> a heartbeat newer than its restart in Prometheus.
    """
    root = workdir / "projects"
    manifest = build_corpus(root, mb=scale.corpus_mb / 2, seed=seed)
    dsn = await fresh_database(server, "chaos_collector")
    result = ChaosResult("collector stopped", runs=1)
    stop = threading.Event()
    writer = Writer(root, random.Random(seed + 1), manifest, seconds=math.inf, stop=stop)
    stack = contextlib.ExitStack()
    try:
        stackdir = workdir / "stack"
        stackdir.mkdir()
        backends = await anyio.to_thread.run_sync(stack.enter_context, running_backends(stackdir))
        env = {**TELEMETRY_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": backends.collector.otlp_http_url}
        with (workdir / "daemon.log").open("ab") as log:
            async with importer_process(["run", str(root)], dsn, log, **env) as daemon:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(anyio.to_thread.run_sync, writer.run)
                    try:
                        rows_during = await _outage(
                            dsn, backends.prometheus, backends.collector, scale, result
                        )
                    finally:
                        stop.set()
                if not await wait_for_checkpoints(dsn, complete_bytes(root), proc=daemon):
                    result.differences.append(f"the daemon exited with {daemon.returncode}")
                got = await snapshot(dsn)
    finally:
        stop.set()
        await anyio.to_thread.run_sync(stack.close)
    judge(manifest, got, result)
    if rows_during <= 0:
        result.differences.append("no rows were committed while the collector was down")
    result.notes.append(
        f"collector down {scale.collector_down_seconds:.0f} s; {rows_during} rows committed meanwhile; "
        f"{writer.lines} lines appended in all; recovery = collector back -> fresh heartbeat in Prometheus "
        f"(metric export every 1 s, scrape 1 s); seed {seed}; log {workdir / 'daemon.log'}"
    )
    return result


async def _outage(
    dsn: str, prometheus: Prometheus, collector: Collector, scale: Scale, result: ChaosResult
) -> int:
    """Stop the collector for the scenario's time; returns the rows committed meanwhile."""

    def heartbeat() -> float | None:
        samples = prometheus.query(HEARTBEAT)
        return float(samples[0]["value"][1]) if samples else None

    await poll(lambda: heartbeat() is not None, "a first heartbeat in Prometheus")
    rows_before = await _rows(dsn)
    await anyio.to_thread.run_sync(collector.stop)
    await anyio.sleep(scale.collector_down_seconds)  # the outage itself, not a wait for a condition
    rows_during = await _rows(dsn) - rows_before
    await anyio.to_thread.run_sync(collector.start)
    back, back_wall = time.monotonic(), time.time()
    await poll(lambda: (heartbeat() or 0) > back_wall, "the heartbeat to resume in Prometheus")
    result.recovery_seconds.append(time.monotonic() - back)
    return rows_during


async def _rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value: int = await conn.fetchval("SELECT count(*) FROM mnemo.entries")
        return value
    finally:
        await conn.close()


async def poll(probe: Callable[[], bool], what: str, *, interval: float = 0.2) -> None:
    """Poll a blocking probe in a thread until it holds (a deadline, not a performance assertion)."""
    with anyio.fail_after(POLL_TIMEOUT_SECONDS):
        while True:
            try:
                if await anyio.to_thread.run_sync(probe):
                    return
            except (OSError, RuntimeError, ValueError):
                pass  # a component still starting
            await anyio.sleep(interval)
    raise AssertionError(f"never saw {what}")  # pragma: no cover  (fail_after raises first)


# -- 2. a file truncated, another replaced ---------------------------------------------------------


async def truncate_and_replace(
    server: PostgresServer, workdir: Path, scale: Scale, *, seed: int
) -> ChaosResult:
    """While the daemon imports the corpus (and a writer appends to other files), one fully imported
    transcript is truncated to a third and then grows again, another is replaced by a new file (new
    inode, other content). Both are re-read from byte 0; the data of the old contents stays.

    The manifest records the history as it happens (truncation, replacement), so the expectation holds
    everything ever written, at the same paths.
    """
    rng = random.Random(seed)
    root = workdir / "projects"
    manifest = build_corpus(root, mb=scale.corpus_mb, seed=seed)
    clean = [
        p for p in manifest.paths if p.parent.name.startswith("-home-user-project") and _plain(manifest, p)
    ]
    truncated, replaced = clean[0], clean[1]
    sizes = {p: p.stat().st_size for p in (truncated, replaced)}
    dsn = await fresh_database(server, "chaos_truncate")
    result = ChaosResult("file truncated / replaced", runs=1)
    stop = threading.Event()
    writer = Writer(root, random.Random(seed + 1), manifest, seconds=math.inf, stop=stop, exclude=sizes)
    with (workdir / "daemon.log").open("ab") as log:
        async with importer_process(["run", str(root)], dsn, log) as daemon:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(anyio.to_thread.run_sync, writer.run)
                try:
                    await wait_for_files(dsn, {str(p): size for p, size in sizes.items()}, proc=daemon)
                    cut = await _truncate_and_grow(dsn, manifest, truncated, rng, daemon)
                    manifest.replace(replaced, _new_session(rng, turns=6))  # a new inode under the same name
                    mutated = time.monotonic()
                finally:
                    stop.set()
            if await wait_for_files(dsn, manifest.expected().offsets, proc=daemon):
                result.recovery_seconds.append(time.monotonic() - mutated)
            else:
                result.differences.append(f"the daemon exited with {daemon.returncode}")
            got = await snapshot(dsn)
    judge(manifest, got, result)
    result.notes.append(
        f"{truncated.name} truncated {sizes[truncated]} -> {cut} bytes then appended; "
        f"{replaced.name} replaced ({sizes[replaced]} -> {replaced.stat().st_size} bytes); "
        f"{writer.lines} lines appended elsewhere meanwhile; recovery = last mutation -> all committed; "
        f"seed {seed}; log {workdir / 'daemon.log'}"
    )
    return result


async def _truncate_and_grow(
    dsn: str, manifest: Manifest, path: Path, rng: random.Random, daemon: anyio.abc.Process
) -> int:
    """Cut ``path`` to a third, wait until the importer has started it over, then append a session."""
    lines = manifest.lines_of(path)
    cut = sum(len(x.data) for x in lines[: len(lines) // 3])
    manifest.truncate(path, cut)
    await wait_for_files(dsn, {str(path): cut}, proc=daemon)  # re-read from 0
    manifest.write(path, _new_session(rng, turns=4))
    return cut


def _plain(manifest: Manifest, path: Path) -> bool:
    """A main session with no bad line: safe to cut anywhere on a line boundary."""
    lines = manifest.lines_of(path)
    return bool(lines) and all(x.bad is None for x in lines)


def _new_session(rng: random.Random, *, turns: int) -> list[Line]:
    return list(plain_session(str(uuid.UUID(int=rng.getrandbits(128))), turns=turns, rng=rng))
