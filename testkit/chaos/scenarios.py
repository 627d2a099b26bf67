"""The chaos scenarios, shared by the pytest suite (reduced form) and ``python -m benchmarks.chaos``.

Each one runs the real console script against a real PostgreSQL, does its damage with real signals,
then compares the database with a clean run of the same final files (:func:`harness.compare`).
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from io import FileIO
from pathlib import Path

import anyio
import anyio.to_thread

from testkit.synthetic import session_lines, write_corpus

from ..postgres_server import PostgresServer
from .harness import (
    HOSTILE_LINES,
    MB,
    ChaosResult,
    Scale,
    build_corpus,
    clean_reference,
    compare,
    complete_bytes,
    fresh_database,
    importer_process,
    snapshot,
    wait_for_checkpoints,
)

__all__ = ("Writer", "appends_while_importing", "database_outages", "sigkill_importer", "start_after_crash")

STARTUP_KILL_WINDOW_SECONDS = 1.5


async def sigkill_importer(server: PostgresServer, workdir: Path, scale: Scale, *, seed: int) -> ChaosResult:
    """SIGKILL the importer again and again at random points of one large import, then run it clean.

    Kill points are drawn over the corpus bytes (kill once the checkpoints pass a random offset, plus
    a random delay so the kill lands inside a batch, not just after a commit); one kill lands during
    start-up instead (connect, migrate). Runs alternate the one-shot ``import`` and the ``run`` daemon.
    """
    rng = random.Random(seed)
    root = workdir / "projects"
    build_corpus(root, mb=scale.corpus_mb, seed=seed)
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
        expected = await clean_reference(server, root, log)
    compare(expected, await snapshot(dsn), result)
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
    rng = random.Random(seed)
    server = PostgresServer()
    result = ChaosResult("PostgreSQL stop / SIGKILL", runs=scale.outages)
    try:
        await anyio.to_thread.run_sync(server.start)
        dsn = await fresh_database(server, "chaos_outage")
        root = workdir / "projects"
        root.mkdir()
        chunk_mb = scale.corpus_mb / scale.outages
        with (workdir / "daemon.log").open("ab") as log:
            async with importer_process(["run", str(root)], dsn, log) as daemon:
                committed = 0
                for index in range(scale.outages):
                    staging = workdir / f"staging-{index}"
                    if index == 0:
                        build_corpus(staging, mb=chunk_mb, seed=seed)
                    else:
                        write_corpus(staging, target_bytes=int(chunk_mb * MB), seed=seed + index)
                    _move_in(staging, root / f"chunk-{index}")
                    target = complete_bytes(root)
                    strike_at = committed + rng.uniform(0.05, 0.6) * (target - committed)
                    await wait_for_checkpoints(dsn, strike_at, proc=daemon)
                    crash = index % 2 == 1
                    await anyio.to_thread.run_sync(server.kill if crash else server.stop)
                    await anyio.sleep(scale.db_down_seconds)
                    await anyio.to_thread.run_sync(start_after_crash, server)
                    back = time.monotonic()
                    if not await wait_for_checkpoints(dsn, target, proc=daemon):
                        result.differences.append(f"the daemon exited ({daemon.returncode}) after an outage")
                        break
                    result.recovery_seconds.append(time.monotonic() - back)
                    committed = target
                expected = await clean_reference(server, root, log)
                got = await snapshot(dsn)
                if daemon.returncode is not None:
                    result.differences.append(f"the daemon exited with {daemon.returncode}")
        compare(expected, got, result)
        result.notes.append(
            f"down {scale.db_down_seconds:.0f} s each, stop and SIGKILL alternating; seed {seed}; "
            f"log {workdir / 'daemon.log'}"
        )
    finally:
        await anyio.to_thread.run_sync(server.destroy)
    return result


def _move_in(staging: Path, destination: Path) -> None:
    """Each transcript appears whole, by a rename: as a writer would create it, never half-built.

    File by file, not the directory at once: files inside a directory renamed into a root raise no
    events of their own, so the daemon would only see them at its next periodic rescan.
    """
    for path in sorted(staging.rglob("*.jsonl")):
        target = destination / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)


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
    build_corpus(root, mb=scale.corpus_mb / 2, seed=seed)
    dsn = await fresh_database(server, "chaos_append")
    result = ChaosResult("appends while importing", runs=1)
    writer = Writer(root, random.Random(seed + 1), seconds=scale.append_seconds)
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
        expected = await clean_reference(server, root, log)
    compare(expected, got, result)
    result.notes.append(
        f"{writer.lines} lines appended ({writer.split} split across two writes, "
        f"{writer.hostile} hostile) in {scale.append_seconds:.0f} s; seed {seed}; log {workdir / 'daemon.log'}"
    )
    return result


class Writer:
    """Appends like Claude Code does (whole lines, one session per file), but sometimes in halves.

    Runs ``seconds`` or until ``stop`` is set; ``exclude`` keeps it off files a scenario mutates itself.
    """

    def __init__(
        self,
        root: Path,
        rng: random.Random,
        *,
        seconds: float,
        stop: threading.Event | None = None,
        exclude: Collection[Path] = (),
    ) -> None:
        self.rng = rng
        self.seconds = seconds
        self.stop = stop or threading.Event()
        self.lines = self.split = self.hostile = 0
        existing = [p for p in sorted(root.rglob("*.jsonl")) if p not in exclude]
        project = existing[0].parent
        new = [project / f"{uuid.UUID(int=rng.getrandbits(128))}.jsonl" for _ in range(2)]
        subagent = project / "appended-session" / "subagents" / "agent-appended.jsonl"
        subagent.parent.mkdir(parents=True)
        self.targets = [*rng.sample(existing, 2), *new, subagent]

    def run(self) -> None:
        streams = {path: self._session() for path in self.targets}
        files = {path: FileIO(path, "ab") for path in self.targets}  # unbuffered: one write() each
        try:
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline and not self.stop.is_set():
                path = self.rng.choice(self.targets)
                if self.rng.random() < 0.03:
                    data = self.rng.choice(HOSTILE_LINES) + b"\n"
                    self.hostile += 1
                else:
                    data = next(streams[path], b"")
                    if not data:
                        streams[path] = self._session()
                        continue
                self._write(files[path], data)
                time.sleep(self.rng.uniform(0, 0.01))
        finally:
            for f in files.values():
                f.close()

    def _write(self, f: FileIO, data: bytes) -> None:
        self.lines += 1
        if self.rng.random() < 0.3:
            cut = self.rng.randrange(1, len(data))
            f.write(data[:cut])
            time.sleep(self.rng.uniform(0, 0.03))
            f.write(data[cut:])
            self.split += 1
        else:
            f.write(data)

    def _session(self) -> Iterator[bytes]:
        session_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
        return session_lines(session_id, turns=self.rng.randint(1, 8), rng=self.rng)


def seed_from_env() -> int:
    """``MNEMO_CHAOS_SEED`` replays a run; otherwise each run draws its own (printed in the notes)."""
    value = os.environ.get("MNEMO_CHAOS_SEED")
    return int(value) if value else random.randrange(1 << 30)
