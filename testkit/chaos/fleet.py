"""Many importers, one database: daemons of several hosts (each in its own mount namespace, all at
the same path) import at once and are SIGKILLed at random moments; the database must end exactly as
the generator's manifest declares for every host's lines, with no deadlock along the way."""

from __future__ import annotations

import random
import time
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import anyio.abc
import asyncpg

from .. import free_port, http_get, wait_for
from ..fleet import Host, complete_offsets_on, host_importer, make_hosts, wait_for_hosts
from ..manifest import Expected, Manifest
from ..postgres_server import PostgresServer
from ..verdict import compare, snapshot
from .harness import ChaosResult, Scale, fresh_database

__all__ = ("many_importers",)


async def many_importers(
    server: PostgresServer, workdir: Path, scale: Scale, *, seed: int, importers: int = 4
) -> ChaosResult:
    rng = random.Random(seed)
    manifest = Manifest()
    hosts = make_hosts(workdir, importers, mb=scale.corpus_mb / importers, seed=seed, manifest=manifest)
    same_root = workdir / "same" / "projects"
    same_root.mkdir(parents=True)
    expected_offsets: dict[tuple[str, str], int] = {}
    for host in hosts:
        expected_offsets |= complete_offsets_on(host, same_root)
    dsn = await fresh_database(server, "chaos_fleet")
    result = ChaosResult(f"{importers} importers, SIGKILLs", runs=importers + scale.kills)
    waits: list[int] = []
    with (workdir / "fleet.log").open("ab") as log:
        async with AsyncExitStack() as stack, anyio.create_task_group() as sampler:
            sampler.start_soon(_sample_lock_waits, dsn, waits)

            health_ports: dict[str, int] = {}

            async def start(host: Host) -> anyio.abc.Process:
                args = ["run", str(same_root)]
                health_ports[host.host_id] = port = free_port()
                return await stack.enter_async_context(
                    host_importer(host, args, dsn, same_root, log, MNEMO_HEALTH__PORT=str(port))
                )

            procs = {host.host_id: await start(host) for host in hosts}
            target = sum(expected_offsets.values())
            mid_import = 0
            for _ in range(scale.kills):
                await anyio.sleep(rng.uniform(0.1, 1.5))
                victim = rng.choice(hosts)
                mid_import += await _checkpoint_total(dsn) < target
                procs[victim.host_id].kill()
                await procs[victim.host_id].wait()
                procs[victim.host_id] = await start(victim)
            started = time.monotonic()
            await wait_for_hosts(dsn, expected_offsets)
            result.recovery_seconds.append(time.monotonic() - started)
            # A daemon restarted a moment ago may still be starting: ready means its stop handler is in.
            for host_id, port in health_ports.items():
                await anyio.to_thread.run_sync(_wait_ready, host_id, port)
            for proc in procs.values():
                proc.terminate()
            for host_id, proc in procs.items():
                if await proc.wait() != 0:
                    result.differences.append(f"{host_id} exited with {proc.returncode} on SIGTERM")
            sampler.cancel_scope.cancel()
    verdict = compare(_as_seen(manifest.expected(), hosts, same_root), await snapshot(dsn))
    result.lost, result.duplicated = verdict.lost, verdict.duplicated
    result.differences.extend(verdict.differences)
    deadlocks = await _deadlocks(dsn)
    if deadlocks:
        result.differences.append(f"{deadlocks} deadlock(s) detected by PostgreSQL")
    result.notes.append(
        f"seed {seed}; {scale.kills} kills over {importers} importers ({mid_import} before the "
        f"import was complete); deadlocks {deadlocks}; "
        f"lock waiters max {max(waits, default=0)}, waiting in {_share(waits):.0%} of samples; "
        f"log {workdir / 'fleet.log'}"
    )
    return result


def _as_seen(expected: Expected, hosts: list[Host], same_root: Path) -> Expected:
    """The manifest as the importers see the files: every host's directory mounted at ``same_root``.
    Checkpoints are left out here (paths repeat across hosts); :func:`wait_for_hosts` checks them per
    (host, path)."""

    def seen(path: str) -> str:
        for host in hosts:
            if Path(path).is_relative_to(host.directory):
                return str(same_root / Path(path).relative_to(host.directory))
        return path

    quarantine: Counter[tuple[str, int, str, bytes]] = Counter()
    for (path, offset, kind, raw), count in expected.quarantine.items():
        quarantine[(seen(path), offset, kind, raw)] += count
    return Expected(expected.keys, quarantine, expected.exchanges, expected.sessions, {})


async def _sample_lock_waits(dsn: str, samples: list[int]) -> None:
    """Backends of this database waiting for a lock, sampled every 50 ms (a convoy shows as many)."""
    while True:
        try:
            conn = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError):
            await anyio.sleep(0.05)
            continue
        try:
            while True:
                samples.append(
                    await conn.fetchval(
                        "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted "
                        "AND (database IS NULL OR database = (SELECT oid FROM pg_database "
                        "WHERE datname = current_database()))"
                    )
                )
                await anyio.sleep(0.05)
        finally:
            with anyio.CancelScope(shield=True):
                await conn.close()


async def _checkpoint_total(dsn: str) -> int:
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError):
        return 0
    try:
        if not await conn.fetchval("SELECT to_regclass('mnemo.files') IS NOT NULL"):
            return 0
        value: int = await conn.fetchval("SELECT COALESCE(sum(committed_offset), 0)::bigint FROM mnemo.files")
        return value
    finally:
        await conn.close()


def _wait_ready(host_id: str, port: int) -> None:
    """Until the daemon's ``/readyz`` answers 2xx: it has reached the database from its work loop,
    so its SIGTERM handler is installed (SIGTERM during start-up would be the default: death)."""

    def ready() -> bool:
        try:
            return http_get(f"http://127.0.0.1:{port}/readyz", timeout=2)[0] < 300
        except OSError:
            return False

    wait_for(ready, timeout=120, what=f"the daemon of {host_id} to be ready")


async def _deadlocks(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value: int = await conn.fetchval(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
        return value
    finally:
        await conn.close()


def _share(samples: list[int]) -> float:
    return sum(1 for s in samples if s) / len(samples) if samples else 0.0
