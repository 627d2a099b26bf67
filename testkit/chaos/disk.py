"""Chaos on the data volume: PostgreSQL's disk fills up mid-import, then space comes back.

Same verdict as :mod:`.scenarios`: the database must end exactly where the generator's manifest says.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import asyncpg

from ..manifest import Manifest
from ..postgres_server import PostgresServer, _service_user, free_port
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
from .scenarios import start_after_crash
from .surroundings import poll

__all__ = ("SmallVolume", "disk_full")

DISK_VOLUME_MB = 400
DISK_HEADROOM_BYTES = 3 * 1024 * 1024
FAILED = "import attempt failed"


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
        manifest = build_corpus(root, mb=scale.corpus_mb, seed=seed)
        filler = volume.mountpoint / "filler"
        with filler.open("wb") as f:
            fill = volume.free_bytes() - DISK_HEADROOM_BYTES
            if fill > 0:
                os.posix_fallocate(f.fileno(), 0, fill)
        await _fill_then_free(server, dsn, root, filler, scale, manifest, workdir, result)
        result.notes.append(f"volume: {volume.kind}; seed {seed}")
    finally:
        try:
            if server is not None:
                await anyio.to_thread.run_sync(server.destroy)
        finally:
            await anyio.to_thread.run_sync(volume.unmount)  # always, even if the server would not stop
    return result


async def _fill_then_free(
    server: PostgresServer,
    dsn: str,
    root: Path,
    filler: Path,
    scale: Scale,
    manifest: Manifest,
    workdir: Path,
    result: ChaosResult,
) -> None:
    daemon_log = workdir / "daemon.log"
    target = complete_bytes(root)
    restarted = False
    with daemon_log.open("ab") as log:
        async with importer_process(["run", str(root)], dsn, log) as daemon:
            await poll(
                lambda: FAILED in daemon_log.read_text(errors="replace"),
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
    judge(manifest, got, result)
    failures = [x for x in daemon_log.read_text(errors="replace").splitlines() if FAILED in x]
    if not failures:
        result.differences.append("the import never failed: the volume was not full enough")
    result.notes.append(
        f"{DISK_VOLUME_MB} MB volume filled to {DISK_HEADROOM_BYTES // 1024} KiB free; "
        f"{target / MB:.1f} MB corpus; {committed_while_full} of {target} bytes committed when space "
        f"was freed; {len(failures)} failed attempts logged, first: "
        f"{failures[0].split(': ', 1)[-1][:120] if failures else '-'}; "
        + ("PostgreSQL went down on ENOSPC and was restarted by the test; " if restarted else "")
        + f"log {daemon_log}"
    )


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
