"""The chaos scenarios, shared by the pytest suite (reduced form) and ``python -m benchmarks.chaos``.

Each one runs the real console script against a real PostgreSQL, does its damage with real signals,
then compares the database with what the generator's manifest declares (:func:`harness.judge`).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread

from ..manifest import Manifest
from ..postgres_server import PostgresServer
from ..synthetic import write_sessions
from ..verdict import snapshot
from .harness import (
    MB,
    ChaosResult,
    Scale,
    build_corpus,
    complete_bytes,
    fresh_database,
    importer_process,
    judge,
    wait_for_checkpoints,
)
from .writer import Writer

__all__ = (
    "DEFAULT_SEED",
    "appends_while_importing",
    "database_outages",
    "seed_from_env",
    "sigkill_importer",
    "start_after_crash",
)

# The seed every run uses unless ``MNEMO_CHAOS_SEED`` says otherwise: a failure replays as it happened.
DEFAULT_SEED = 20261130

STARTUP_KILL_WINDOW_SECONDS = 1.5


async def sigkill_importer(server: PostgresServer, workdir: Path, scale: Scale, *, seed: int) -> ChaosResult:
    """SIGKILL the importer again and again at random points of one large import, then run it clean.

    Kill points are drawn over the corpus bytes (kill once the checkpoints pass a random offset, plus
    a random delay so the kill lands inside a batch, not just after a commit); one kill lands during
    start-up instead (connect, migrate). Runs alternate the one-shot ``import`` and the ``run`` daemon.
    """
    rng = random.Random(seed)
    root = workdir / "projects"
    manifest = build_corpus(root, mb=scale.corpus_mb, seed=seed)
    target = complete_bytes(root)
    dsn = await fresh_database(server, "chaos_kill")
    result = ChaosResult("SIGKILL importer", runs=scale.kills + 1)
    thresholds = sorted(rng.uniform(0, target) for _ in range(scale.kills - 1))
    killed_running = 0
    with (workdir / "importer.log").open("ab") as log:
        for attempt, threshold in enumerate([None, *thresholds]):
            command = "import" if attempt % 2 == 0 else "run"
            async with importer_process([command, str(root)], dsn, log) as proc:
                if threshold is None:
                    await anyio.sleep(rng.uniform(0, STARTUP_KILL_WINDOW_SECONDS))
                else:
                    await wait_for_checkpoints(dsn, threshold, proc=proc)
                    await anyio.sleep(rng.uniform(0, 0.05))
                if proc.returncode is None:
                    proc.kill()
                    killed_running += 1
        started = time.monotonic()
        async with importer_process(["import", "--json", str(root)], dsn, log) as proc:
            code = await proc.wait()
        result.recovery_seconds.append(time.monotonic() - started)
        if code != 0:
            result.differences.append(f"the final clean run exited with {code}")
    judge(manifest, await snapshot(dsn), result)
    result.notes.append(
        f"{killed_running}/{scale.kills} kills hit a running importer; "
        f"{target / MB:.1f} MB corpus; seed {seed}; log {workdir / 'importer.log'}"
    )
    return result


async def database_outages(workdir: Path, scale: Scale, *, seed: int) -> ChaosResult:
    """Stop (fast) or SIGKILL PostgreSQL while the daemon imports; it must carry on by itself.

    A dedicated server, so the suite's shared one is never touched. Each outage gets a fresh chunk of
    corpus, each file dropped in whole (a rename), and strikes once a random part of it is committed;
    recovery is the time from the server being back to every complete line committed.
    """
    server = PostgresServer()
    result = ChaosResult("PostgreSQL stop / SIGKILL", runs=scale.outages)
    manifest = Manifest()
    try:
        await anyio.to_thread.run_sync(server.start)
        dsn = await fresh_database(server, "chaos_outage")
        root = workdir / "projects"
        root.mkdir()
        with (workdir / "daemon.log").open("ab") as log:
            async with importer_process(["run", str(root)], dsn, log) as daemon:
                await _outages(server, dsn, workdir, scale, seed, manifest, daemon, result)
                got = await snapshot(dsn)
                if daemon.returncode is not None:
                    result.differences.append(f"the daemon exited with {daemon.returncode}")
        judge(manifest, got, result)
        result.notes.append(
            f"down {scale.db_down_seconds:.0f} s each, stop and SIGKILL alternating; seed {seed}; "
            f"log {workdir / 'daemon.log'}"
        )
    finally:
        await anyio.to_thread.run_sync(server.destroy)
    return result


async def _outages(
    server: PostgresServer,
    dsn: str,
    workdir: Path,
    scale: Scale,
    seed: int,
    manifest: Manifest,
    daemon: anyio.abc.Process,
    result: ChaosResult,
) -> None:
    rng = random.Random(seed)
    root = workdir / "projects"
    chunk_mb = scale.corpus_mb / scale.outages
    committed = 0
    for index in range(scale.outages):
        staging = workdir / f"staging-{index}"
        if index == 0:
            build_corpus(staging, mb=chunk_mb, seed=seed, manifest=manifest)
        else:
            write_sessions(
                staging, manifest, target_bytes=int(chunk_mb * MB), rng=random.Random(seed + index)
            )
        _move_in(staging, root / f"chunk-{index}", manifest)
        target = complete_bytes(root)
        strike_at = committed + rng.uniform(0.05, 0.6) * (target - committed)
        await wait_for_checkpoints(dsn, strike_at, proc=daemon)
        crash = index % 2 == 1
        await anyio.to_thread.run_sync(server.kill if crash else server.stop)
        await anyio.sleep(scale.db_down_seconds)  # the outage itself, not a wait for a condition
        await anyio.to_thread.run_sync(start_after_crash, server)
        back = time.monotonic()
        if not await wait_for_checkpoints(dsn, target, proc=daemon):
            result.differences.append(f"the daemon exited ({daemon.returncode}) after an outage")
            return
        result.recovery_seconds.append(time.monotonic() - back)
        committed = target


def _move_in(staging: Path, destination: Path, manifest: Manifest) -> None:
    """Each transcript appears whole, by a rename: as a writer would create it, never half-built.

    File by file, not the directory at once: files inside a directory renamed into a root raise no
    events of their own, so the daemon would only see them at its next periodic rescan.
    """
    for path in sorted(staging.rglob("*.jsonl")):
        manifest.rename(path, destination / path.relative_to(staging))


def start_after_crash(server: PostgresServer) -> None:
    """Start on the same port; after a SIGKILL, orphaned backends may hold shared memory a moment."""
    deadline = time.monotonic() + 60
    while True:
        try:
            server.start()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def appends_while_importing(
    server: PostgresServer, workdir: Path, scale: Scale, *, seed: int
) -> ChaosResult:
    """A writer thread appends to transcripts (existing and new) while the daemon imports them.

    Lines are often written in two ``write()`` calls with a pause between, so the importer sees half
    lines; a few are hostile. Recovery is the time from the writer's last byte to all of it committed.
    """
    root = workdir / "projects"
    manifest = build_corpus(root, mb=scale.corpus_mb / 2, seed=seed)
    dsn = await fresh_database(server, "chaos_append")
    result = ChaosResult("appends while importing", runs=1)
    writer = Writer(root, random.Random(seed + 1), manifest, seconds=scale.append_seconds)
    with (workdir / "daemon.log").open("ab") as log:
        async with importer_process(["run", str(root)], dsn, log) as daemon:
            await anyio.to_thread.run_sync(writer.run)
            done = time.monotonic()
            target = complete_bytes(root)
            if await wait_for_checkpoints(dsn, target, proc=daemon):
                result.recovery_seconds.append(time.monotonic() - done)
            else:
                result.differences.append(f"the daemon exited with {daemon.returncode}")
            got = await snapshot(dsn)
    judge(manifest, got, result)
    result.notes.append(
        f"{writer.lines} lines appended ({writer.split} split across two writes, "
        f"{writer.hostile} hostile) in {scale.append_seconds:.0f} s; seed {seed}; log {workdir / 'daemon.log'}"
    )
    return result


def seed_from_env() -> int:
    """``MNEMO_CHAOS_SEED`` picks another seed; otherwise every run uses :data:`DEFAULT_SEED`."""
    value = os.environ.get("MNEMO_CHAOS_SEED")
    return int(value) if value else DEFAULT_SEED
