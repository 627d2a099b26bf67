"""Chaos in the importer's own loop: a database call that never returns, under a supervisor.

Same verdict as :mod:`.scenarios`: the database must end exactly where the generator's manifest says.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.abc
import asyncpg

from mnemo_otel.watchdog import EXIT_STALLED

from ..postgres_server import PostgresServer
from ..verdict import snapshot
from .harness import (
    CLI,
    POLL_TIMEOUT_SECONDS,
    REPO,
    ChaosResult,
    Scale,
    build_corpus,
    complete_bytes,
    fresh_database,
    importer_env,
    judge,
    wait_for_checkpoints,
)
from .writer import Writer

__all__ = ("Supervisor", "hung_loop_under_supervisor")

HANG_WATCHDOG_SECONDS = 5


@dataclass
class Supervisor:
    """Restarts the daemon whenever it exits non-zero, like ``restart: on-failure`` or systemd would."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    exits: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, exit code)
    spawns: list[float] = field(default_factory=list)
    first_failure: anyio.Event = field(default_factory=anyio.Event)
    process: anyio.abc.Process | None = None
    stopping: bool = False

    async def run(self) -> None:
        with self.log_path.open("ab") as log:
            while True:
                self.spawns.append(time.monotonic())
                self.process = await anyio.open_process(
                    [*CLI, *self.args], stdin=None, stdout=log, stderr=log, cwd=REPO, env=self.env
                )
                try:
                    code = await self.process.wait()
                finally:
                    with anyio.CancelScope(shield=True):
                        if self.process.returncode is None:
                            self.process.kill()
                            await self.process.wait()
                self.exits.append((time.monotonic(), code))
                if code == 0 or self.stopping:
                    return
                self.first_failure.set()

    def terminate(self) -> None:
        self.stopping = True
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()


async def hung_loop_under_supervisor(
    server: PostgresServer, workdir: Path, scale: Scale, *, seed: int
) -> ChaosResult:
    """The daemon runs under :class:`Supervisor` with a short watchdog; an ``ACCESS EXCLUSIVE`` lock on
    ``mnemo.files`` held by another connection while lines are appended makes its next database call
    hang forever. The watchdog must exit the process, the supervisor restart it, and, once the lock is
    released (after the first exit), the new process import everything.

    Recovery = hang -> restarted process, with ``MNEMO_WATCHDOG__TIMEOUT_SECONDS`` =
    ``HANG_WATCHDOG_SECONDS``: the figure is that timeout plus detection and start-up, so with the
    default 120 s watchdog it is about 120 s more.
    """
    root = workdir / "projects"
    manifest = build_corpus(root, mb=scale.corpus_mb / 3, seed=seed)
    dsn = await fresh_database(server, "chaos_hang")
    result = ChaosResult("hung loop, watchdog + supervisor", runs=1)
    env = importer_env(
        dsn,
        MNEMO_WATCHDOG__TIMEOUT_SECONDS=str(HANG_WATCHDOG_SECONDS),
        MNEMO_IMPORTS__IDLE_BEAT_SECONDS="0.5",
    )
    supervisor = Supervisor(["run", str(root)], env, workdir / "daemon.log")
    writer = Writer(root, random.Random(seed + 1), manifest, seconds=min(3.0, scale.append_seconds))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(supervisor.run)
        try:
            hung, caught_up = await _hang_and_recover(dsn, root, supervisor, writer, result)
            got = await snapshot(dsn)
        finally:
            supervisor.terminate()
    judge(manifest, got, result)
    codes = [code for _, code in supervisor.exits]
    if not codes or codes[0] != EXIT_STALLED:
        result.differences.append(f"expected a watchdog exit ({EXIT_STALLED}) first, got exit codes {codes}")
    if len(supervisor.spawns) < 2:
        result.differences.append("the daemon was never restarted")
    exit_after = supervisor.exits[0][0] - hung if supervisor.exits else float("nan")
    restart_after = result.recovery_seconds[0] if result.recovery_seconds else float("nan")
    result.notes.append(
        f"watchdog timeout {HANG_WATCHDOG_SECONDS} s (default 120 s): hang -> watchdog exit "
        f"{exit_after:.1f} s, -> restarted {restart_after:.1f} s, -> all committed {caught_up - hung:.1f} s; "
        f"exit codes {codes}; {len(supervisor.spawns)} spawns; {writer.lines} lines appended during the "
        f"hang; seed {seed}; log {workdir / 'daemon.log'}"
    )
    return result


async def _hang_and_recover(
    dsn: str, root: Path, supervisor: Supervisor, writer: Writer, result: ChaosResult
) -> tuple[float, float]:
    """Lock the checkpoints table until the watchdog fired; returns (hang start, all committed)."""
    await wait_for_checkpoints(dsn, complete_bytes(root))
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE mnemo.files IN ACCESS EXCLUSIVE MODE")
            hung = time.monotonic()
            await anyio.to_thread.run_sync(writer.run)
            with anyio.fail_after(POLL_TIMEOUT_SECONDS):
                await supervisor.first_failure.wait()
    finally:
        await conn.close()  # the lock goes with the transaction
    with anyio.fail_after(POLL_TIMEOUT_SECONDS):
        while len(supervisor.spawns) < 2:
            await anyio.sleep(0.01)
    result.recovery_seconds.append(supervisor.spawns[1] - hung)
    if not await wait_for_checkpoints(dsn, complete_bytes(root)):
        result.differences.append("the restarted daemon never caught up")
    return hung, time.monotonic()
