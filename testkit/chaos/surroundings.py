"""Chaos in the importer's surroundings: the collector, the transcript files, the disk, its own loop.

Same verdict as :mod:`.scenarios`: the database must end exactly where clean runs end (0 lost, 0
duplicated), and each scenario reports its time to recovery.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from io import FileIO
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import asyncpg

from mnemo_otel.telemetry import names
from mnemo_otel.watchdog import EXIT_STALLED
from testkit.synthetic import session_lines

from ..postgres_server import PostgresServer, _service_user, free_port
from ..stack import running_backends
from .harness import (
    CLI,
    HOSTILE_LINES,
    MB,
    POLL_TIMEOUT_SECONDS,
    REPO,
    ChaosResult,
    Scale,
    build_corpus,
    clean_reference,
    clean_reference_history,
    compare,
    complete_bytes,
    complete_offsets,
    fresh_database,
    importer_env,
    importer_process,
    snapshot,
    wait_for_checkpoints,
    wait_for_files,
)
from .scenarios import Writer, start_after_crash

__all__ = ("collector_outage", "disk_full", "hung_loop_under_supervisor", "truncate_and_replace")

HANG_WATCHDOG_SECONDS = 5
DISK_VOLUME_MB = 400
DISK_HEADROOM_BYTES = 3 * 1024 * 1024
HEARTBEAT = f"max({names.HEARTBEAT.prometheus})"


# -- 1. the collector stopped for minutes -----------------------------------------------------------


async def collector_outage(server: PostgresServer, workdir: Path, scale: Scale, *, seed: int) -> ChaosResult:
    """The daemon exports to the real collector (shipped config -> Prometheus); the collector stops for
    ``collector_down_seconds`` while transcripts keep growing, then comes back.

    Importing must not notice (nothing lost or duplicated), and the heartbeat series must resume in
    Prometheus by itself: recovery is collector back -> a heartbeat newer than its restart in Prometheus.
    """
    root = workdir / "projects"
    build_corpus(root, mb=scale.corpus_mb / 2, seed=seed)
    dsn = await fresh_database(server, "chaos_collector")
    result = ChaosResult("collector stopped", runs=1)
    stop = threading.Event()
    writer = Writer(root, random.Random(seed + 1), seconds=math.inf, stop=stop)
    stack = contextlib.ExitStack()
    try:
        stackdir = workdir / "stack"
        stackdir.mkdir()
        backends = await anyio.to_thread.run_sync(stack.enter_context, running_backends(stackdir))
        prometheus, collector = backends.prometheus, backends.collector
        telemetry = {
            "OTEL_SDK_DISABLED": "false",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
            "MNEMO_IMPORTS__IDLE_BEAT_SECONDS": "0.5",
        }

        def heartbeat() -> float | None:
            samples = prometheus.query(HEARTBEAT)
            return float(samples[0]["value"][1]) if samples else None

        with (workdir / "daemon.log").open("ab") as log:
            async with importer_process(["run", str(root)], dsn, log, **telemetry) as daemon:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(anyio.to_thread.run_sync, writer.run)
                    try:
                        await _poll(lambda: heartbeat() is not None, "a first heartbeat in Prometheus")
                        rows_before = await _rows(dsn)
                        await anyio.to_thread.run_sync(collector.stop)
                        await anyio.sleep(scale.collector_down_seconds)
                        rows_during = await _rows(dsn) - rows_before
                        await anyio.to_thread.run_sync(collector.start)
                        back, back_wall = time.monotonic(), time.time()
                        await _poll(
                            lambda: (heartbeat() or 0) > back_wall,
                            "the heartbeat to resume in Prometheus",
                        )
                        result.recovery_seconds.append(time.monotonic() - back)
                    finally:
                        stop.set()
                if not await wait_for_checkpoints(dsn, complete_bytes(root), proc=daemon):
                    result.differences.append(f"the daemon exited with {daemon.returncode}")
                got = await snapshot(dsn)
                if daemon.returncode is not None:
                    result.differences.append(f"the daemon exited with {daemon.returncode}")
            expected = await clean_reference(server, root, log)
    finally:
        stop.set()
        await anyio.to_thread.run_sync(stack.close)
    compare(expected, got, result)
    if rows_during <= 0:
        result.differences.append("no rows were committed while the collector was down")
    result.notes.append(
        f"collector down {scale.collector_down_seconds:.0f} s; {rows_during} rows committed meanwhile; "
        f"{writer.lines} lines appended in all; recovery = collector back -> fresh heartbeat in Prometheus "
        f"(metric export every 1 s, scrape 1 s); seed {seed}; log {workdir / 'daemon.log'}"
    )
    return result


async def _rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value: int = await conn.fetchval("SELECT count(*) FROM mnemo.entries")
        return value
    finally:
        await conn.close()


async def _poll(probe: Callable[[], bool], what: str, *, interval: float = 0.2) -> None:
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

    The reference replays the same history with clean one-shot imports into one database: the files
    as first written, then as they ended, so it holds everything ever written, at the same paths.
    """
    rng = random.Random(seed)
    root = workdir / "projects"
    build_corpus(root, mb=scale.corpus_mb, seed=seed)
    clean = [
        p
        for p in sorted(root.rglob("*.jsonl"))
        if "subagents" not in p.parts and not any(bad in p.read_bytes() for bad in HOSTILE_LINES)
    ]
    truncated, replaced = clean[0], clean[1]
    originals = {p: p.read_bytes() for p in (truncated, replaced)}
    dsn = await fresh_database(server, "chaos_truncate")
    result = ChaosResult("file truncated / replaced", runs=1)
    stop = threading.Event()
    writer = Writer(root, random.Random(seed + 1), seconds=math.inf, stop=stop, exclude=originals)
    with (workdir / "daemon.log").open("ab") as log:
        async with importer_process(["run", str(root)], dsn, log) as daemon:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(anyio.to_thread.run_sync, writer.run)
                try:
                    whole = {str(p): len(data) for p, data in originals.items()}
                    await wait_for_files(dsn, whole, proc=daemon)

                    lines = originals[truncated].splitlines(keepends=True)
                    cut = len(b"".join(lines[: len(lines) // 3]))
                    os.truncate(truncated, cut)
                    await wait_for_files(dsn, {str(truncated): cut}, proc=daemon)  # re-read from 0
                    with FileIO(truncated, "ab") as f:
                        for data in _new_session(rng, turns=4):
                            f.write(data)

                    staging = replaced.with_suffix(".replacing")
                    staging.write_bytes(b"".join(_new_session(rng, turns=6)))
                    staging.replace(replaced)  # a new inode under the same name
                    mutated = time.monotonic()
                finally:
                    stop.set()
            if await wait_for_files(dsn, complete_offsets(root), proc=daemon):
                result.recovery_seconds.append(time.monotonic() - mutated)
            else:
                result.differences.append(f"the daemon exited with {daemon.returncode}")
            got = await snapshot(dsn)
        finals = {p: p.read_bytes() for p in originals}
        expected = await clean_reference_history(server, root, log, [_put(originals), _put(finals)])
    compare(expected, got, result)
    result.notes.append(
        f"{truncated.name} truncated {len(originals[truncated])} -> {cut} bytes then appended; "
        f"{replaced.name} replaced ({len(originals[replaced])} -> {len(finals[replaced])} bytes); "
        f"{writer.lines} lines appended elsewhere meanwhile; recovery = last mutation -> all committed; "
        f"seed {seed}; log {workdir / 'daemon.log'}"
    )
    return result


def _new_session(rng: random.Random, *, turns: int) -> list[bytes]:
    return list(session_lines(str(uuid.UUID(int=rng.getrandbits(128))), turns=turns, rng=rng))


def _put(contents: dict[Path, bytes]) -> Callable[[], None]:
    """Put files back as they were, each as a new file (new inode), as a rewrite by an editor would."""

    def put() -> None:
        for path, data in contents.items():
            staging = path.with_suffix(".restoring")
            staging.write_bytes(data)
            staging.replace(path)

    return put


# -- 3. the data volume nearly full ----------------------------------------------------------------


class SmallVolume:
    """A size-limited filesystem: a tmpfs with ``size=``, else a loop-mounted ext4 image.

    Needs root. If neither can be mounted, :meth:`mount` raises: the scenario fails, never skips.
    """

    def __init__(self, workdir: Path, megabytes: int) -> None:
        # Outside the test's private tmp_path (0700): PostgreSQL runs as another user and must reach it.
        self.base = Path(tempfile.mkdtemp(prefix="mnemo-volume-"))
        self.base.chmod(0o755)
        self.mountpoint = self.base / "mnt"
        self.image = workdir / "volume.img"
        self.megabytes = megabytes
        self.kind = ""
        self.mounted = False

    def mount(self) -> None:
        self.mountpoint.mkdir()
        tmpfs = subprocess.run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                f"size={self.megabytes}m,mode=0755",
                "tmpfs",
                str(self.mountpoint),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if tmpfs.returncode == 0:
            self.kind, self.mounted = "tmpfs", True
            return
        with self.image.open("wb") as f:
            f.truncate(self.megabytes * 1024 * 1024)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(self.image)], check=True, capture_output=True)
        loop = subprocess.run(
            ["mount", "-o", "loop", str(self.image), str(self.mountpoint)],
            capture_output=True,
            text=True,
            check=False,
        )
        if loop.returncode != 0:
            raise RuntimeError(
                "cannot mount a size-limited filesystem here (root needed): "
                f"tmpfs: {tmpfs.stderr.strip()}; loop ext4: {loop.stderr.strip()}"
            )
        self.kind, self.mounted = "loop-mounted ext4", True

    def unmount(self) -> None:
        if self.mounted:
            done = subprocess.run(["umount", str(self.mountpoint)], capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True, check=True)
            self.mounted = False
        self.image.unlink(missing_ok=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.mountpoint).free


class _PostgresOnVolume(PostgresServer):
    """A :class:`PostgresServer` whose whole cluster (data and WAL) lives on ``volume``; its log does not."""

    def __init__(self, volume: Path, log_dir: Path) -> None:
        self.port = free_port()
        self.root = volume
        self.root.chmod(0o755)
        self.datadir = volume / "data"
        self.log_dir = log_dir
        self._user = _service_user()
        self._initdb()

    def start(self) -> None:
        log = self.log_dir / "postgres.log"
        log.touch()
        if self._user is not None:
            shutil.chown(log, self._user)
        self._pg_ctl(
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            str(log),
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off",
        )

    def destroy(self) -> None:
        if self.is_running():
            self._pg_ctl("stop", "-w", "-m", "immediate")


async def disk_full(workdir: Path, scale: Scale, *, seed: int) -> ChaosResult:
    """PostgreSQL's data directory on a small filesystem filled to a few MB: the import hits ENOSPC
    ("could not extend file", or WAL) mid-way; then the filler is deleted and the daemon must finish
    by itself. If PostgreSQL itself went down on ENOSPC (a WAL write PANICs), it is started again, as
    its restart policy would, and that is reported. Recovery = space freed -> all committed.
    """
    result = ChaosResult("data volume full", runs=1)
    volume = SmallVolume(workdir, DISK_VOLUME_MB)
    server: _PostgresOnVolume | None = None
    try:
        await anyio.to_thread.run_sync(volume.mount)
        server = _PostgresOnVolume(volume.mountpoint, volume.base)
        await anyio.to_thread.run_sync(server.start)
        dsn = await fresh_database(server, "chaos_disk")
        root = workdir / "projects"
        build_corpus(root, mb=scale.corpus_mb, seed=seed)
        target = complete_bytes(root)
        filler = volume.mountpoint / "filler"
        fill = volume.free_bytes() - DISK_HEADROOM_BYTES
        with filler.open("wb") as f:
            if fill > 0:
                os.posix_fallocate(f.fileno(), 0, fill)
        daemon_log = workdir / "daemon.log"
        restarted = False
        with daemon_log.open("ab") as log:
            async with importer_process(["run", str(root)], dsn, log) as daemon:
                await _poll(
                    lambda: "import attempt failed" in daemon_log.read_text(errors="replace"),
                    "the import to fail for lack of space",
                )
                await anyio.sleep(scale.db_down_seconds)  # stays full a while: retries must not give up
                committed_while_full = await _checkpoints_or_none(dsn)
                filler.unlink()
                freed = time.monotonic()
                if not await anyio.to_thread.run_sync(server.is_running):
                    restarted = True
                    await anyio.to_thread.run_sync(start_after_crash, server)
                if await wait_for_checkpoints(dsn, target, proc=daemon):
                    result.recovery_seconds.append(time.monotonic() - freed)
                else:
                    result.differences.append(f"the daemon exited with {daemon.returncode}")
                got = await snapshot(dsn)
            reference_server = PostgresServer()
            try:
                await anyio.to_thread.run_sync(reference_server.start)
                expected = await clean_reference(reference_server, root, log)
            finally:
                await anyio.to_thread.run_sync(reference_server.destroy)
        compare(expected, got, result)
        failures = [
            line
            for line in daemon_log.read_text(errors="replace").splitlines()
            if "import attempt failed" in line
        ]
        if not failures:
            result.differences.append("the import never failed: the volume was not full enough")
        result.notes.append(
            f"{volume.kind} of {DISK_VOLUME_MB} MB filled to {DISK_HEADROOM_BYTES // 1024} KiB free; "
            f"{target / MB:.1f} MB corpus; {committed_while_full} of {target} bytes committed when space "
            f"was freed; {len(failures)} failed attempts logged, first: "
            f"{failures[0].split(': ', 1)[-1][:120] if failures else '-'}; "
            + ("PostgreSQL went down on ENOSPC and was restarted by the test; " if restarted else "")
            + f"seed {seed}; log {daemon_log}"
        )
    finally:
        try:
            if server is not None:
                await anyio.to_thread.run_sync(server.destroy)
        finally:
            await anyio.to_thread.run_sync(volume.unmount)  # always, even if the server would not stop
    return result


async def _checkpoints_or_none(dsn: str) -> int | None:
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        value: int = await conn.fetchval("SELECT COALESCE(sum(committed_offset), 0)::bigint FROM mnemo.files")
        return value
    except asyncpg.PostgresError:
        return None
    finally:
        conn.terminate()


# -- 4. a hung work loop under a supervisor ------------------------------------------------------


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
    build_corpus(root, mb=scale.corpus_mb / 3, seed=seed)
    dsn = await fresh_database(server, "chaos_hang")
    result = ChaosResult("hung loop, watchdog + supervisor", runs=1)
    env = importer_env(
        dsn,
        MNEMO_WATCHDOG__TIMEOUT_SECONDS=str(HANG_WATCHDOG_SECONDS),
        MNEMO_IMPORTS__IDLE_BEAT_SECONDS="0.5",
    )
    supervisor = Supervisor(["run", str(root)], env, workdir / "daemon.log")
    writer = Writer(root, random.Random(seed + 1), seconds=min(3.0, scale.append_seconds))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(supervisor.run)
        try:
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
            restarted = supervisor.spawns[1]
            result.recovery_seconds.append(restarted - hung)
            if not await wait_for_checkpoints(dsn, complete_bytes(root)):
                result.differences.append("the restarted daemon never caught up")
            caught_up = time.monotonic()
            got = await snapshot(dsn)
        finally:
            supervisor.terminate()
    with (workdir / "reference.log").open("ab") as log:
        expected = await clean_reference(server, root, log)
    compare(expected, got, result)
    codes = [code for _, code in supervisor.exits]
    if not codes or codes[0] != EXIT_STALLED:
        result.differences.append(f"expected a watchdog exit ({EXIT_STALLED}) first, got exit codes {codes}")
    if len(supervisor.spawns) < 2:
        result.differences.append("the daemon was never restarted")
    exit_after = supervisor.exits[0][0] - hung if supervisor.exits else float("nan")
    result.notes.append(
        f"watchdog timeout {HANG_WATCHDOG_SECONDS} s (default 120 s): hang -> watchdog exit "
        f"{exit_after:.1f} s, -> restarted {result.recovery_seconds[0] if result.recovery_seconds else float('nan'):.1f} s, "
        f"-> all committed {caught_up - hung:.1f} s; exit codes {codes}; {len(supervisor.spawns)} spawns; "
        f"{writer.lines} lines appended during the hang; seed {seed}; log {workdir / 'daemon.log'}"
    )
    return result
