"""One verification pass: discover, cut into segments, key them in worker processes, check the keys.

Keying is the expensive part (every line is decoded as JSON, as the importer does), so it runs in
worker processes (``workers`` of them, at ``niceness``); this process only does the database
lookups, a segment at a time, while the workers key the next ones. Memory stays bounded by the
segments in flight, whatever the corpus size.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio
import anyio.to_process
import anyio.to_thread

from ..importer._concurrency import run_all
from ..store.postgres import PostgresSink, translate_errors
from ..transcripts.discovery import discover, subagent_transcripts
from .lookup import Findings, check_keyed
from .report import Tally, VerifyReport
from .segments import SEGMENT_BYTES, PlannedFile, Segment, key_segments, plan_tasks, ready
from .stored import StoredKeys

__all__ = ("VerifyOptions", "discovered", "discovered_and_announced", "run_verify")

IN_PROCESS_BYTES: Final = 4 * 1024 * 1024
ANNOUNCED_OUTSIDE_ROOTS: Final = """
SELECT path FROM mnemo.announcements WHERE host = $1 AND NOT under_root AND refused IS NULL
"""
COMMITTED: Final = (
    "SELECT path, committed_offset, inode FROM mnemo.files WHERE path = ANY($1::text[]) AND host = $2"
)


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    """``committed_only``: check only what each file's checkpoint says is imported (the daemon's scrub,
    which must not race the live importer); otherwise every complete line on disk."""

    max_line_bytes: int = 64 * 1024 * 1024
    workers: int = 2
    niceness: int = 0
    committed_only: bool = False
    segment_bytes: int = SEGMENT_BYTES
    in_process_bytes: int = IN_PROCESS_BYTES
    """Up to this much in all, keying runs in a thread: a worker process would cost more."""


@dataclass(frozen=True, slots=True)
class _Plan:
    files: list[PlannedFile]
    size: int


async def run_verify(
    sink: PostgresSink,
    roots: Sequence[Path],
    options: VerifyOptions,
    found: list[tuple[str, str]] | None = None,
) -> VerifyReport:
    """``found``: the (path, root) of each transcript under ``roots``, when the caller discovered them."""
    started = time.monotonic()
    if found is None:
        found = await discovered(roots)
    limits = await _committed(sink, [path for path, _ in found]) if options.committed_only else None
    plan = await anyio.to_thread.run_sync(_plan, found, limits)
    small = plan.size <= options.in_process_bytes
    limiter = anyio.CapacityLimiter(options.workers)
    # After the checkpoints were read: the snapshot covers every row they account for.
    snapshot_path = await _snapshot_as_workers_start(sink, limiter, 0 if small else options.workers)
    try:
        tasks = iter(
            await anyio.to_thread.run_sync(
                lambda: list(plan_tasks(plan.files, task_bytes=options.segment_bytes))
            )
        )
        tally = Tally()
        check = _TaskCheck(sink, options, limiter, tally, str(snapshot_path), small)

        async def worker() -> None:
            for task in tasks:  # shared: each task goes to exactly one worker
                await check.run(task)

        # One more checker than processes: a worker process is never idle while we wait on the database.
        await run_all(*[worker] * (options.workers + 1))
    finally:
        snapshot_path.unlink(missing_ok=True)
    return VerifyReport.of(tally, size=plan.size, seconds=time.monotonic() - started)


async def discovered(roots: Sequence[Path]) -> list[tuple[str, str]]:
    """(path, root) of every transcript under ``roots``."""
    return await anyio.to_thread.run_sync(lambda: [(str(t.path), str(t.root)) for t in discover(roots)])


async def discovered_and_announced(sink: PostgresSink, roots: Sequence[Path]) -> list[tuple[str, str]]:
    """Discovery under ``roots``, then the transcripts Claude Code's hooks announced on this host outside
    them (and their subagents'), those still on disk: the daemon imports them, so they are checked too."""
    async with translate_errors(), sink.connection() as conn:
        announced = [row["path"] for row in await conn.fetch(ANNOUNCED_OUTSIDE_ROOTS, sink.host_id)]
    return await anyio.to_thread.run_sync(_with_announced, roots, announced)


def _with_announced(roots: Sequence[Path], announced: list[str]) -> list[tuple[str, str]]:
    found = [(str(t.path), str(t.root)) for t in discover(roots)]
    seen = {path for path, _ in found}
    for name in sorted(announced):
        session_file = Path(name)
        for path in (session_file, *subagent_transcripts(session_file, _ignore)):
            if str(path) not in seen and _is_regular(path):
                seen.add(str(path))
                found.append((str(path), str(session_file.parent)))
    return found


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False  # gone: the importer counts what vanished before its commit as a loss


def _ignore(path: Path, kind: str) -> None:
    """Special files among subagents: the importer reports them; verify has nothing to check there."""


async def _snapshot_as_workers_start(
    sink: PostgresSink, limiter: anyio.CapacityLimiter, workers: int
) -> Path:
    """Read the stored keys and save them for the workers, while the worker processes start (an
    interpreter and its imports each: as long as the snapshot takes on a big archive)."""
    saved: list[Path] = []

    async def snapshot() -> None:
        async with translate_errors(), sink.connection() as conn:
            stored = await StoredKeys.load(conn, sink.host_id)
        saved.append(await anyio.to_thread.run_sync(stored.save))

    async def start_worker() -> None:
        await anyio.to_process.run_sync(ready, limiter=limiter)

    await run_all(snapshot, *[start_worker] * workers)
    return saved[0]


@dataclass(frozen=True, slots=True)
class _TaskCheck:
    """Keys one task's segments (in a worker process, or in a thread when the whole run is ``small``)
    and settles the doubtful lines with the database."""

    sink: PostgresSink
    options: VerifyOptions
    limiter: anyio.CapacityLimiter
    tally: Tally
    snapshot_path: str
    small: bool

    async def run(self, task: list[Segment]) -> None:
        options = self.options
        if self.small:  # not worth a worker process (a scrub of a small archive, a test)
            keyed_segments = await anyio.to_thread.run_sync(
                key_segments, task, options.max_line_bytes, 0, self.snapshot_path
            )
        else:
            keyed_segments = await anyio.to_process.run_sync(
                key_segments,
                task,
                options.max_line_bytes,
                options.niceness,
                self.snapshot_path,
                limiter=self.limiter,
            )
        for keyed in keyed_segments:
            path = keyed.segment.path
            if keyed.error is not None:
                if keyed.error != "vanished":
                    self.tally.unreadable[path] = keyed.error
                continue
            if keyed.doubtful or keyed.bad:
                async with translate_errors(), self.sink.connection() as conn:
                    findings = await check_keyed(conn, keyed, self.sink.host_id)
            else:  # every line held by the snapshot: no round trip
                findings = Findings(lines=keyed.lines, stored=keyed.stored)
            self.tally.add(path, findings, keyed.pending)


async def _committed(sink: PostgresSink, paths: list[str]) -> dict[str, tuple[int, int | None]]:
    async with translate_errors(), sink.connection() as conn:
        rows = await conn.fetch(COMMITTED, paths, sink.host_id)
    return {row["path"]: (row["committed_offset"], row["inode"]) for row in rows}


def _plan(found: list[tuple[str, str]], limits: dict[str, tuple[int, int | None]] | None) -> _Plan:
    """Each file to its end, or (a scrub) to its checkpoint."""
    files: list[PlannedFile] = []
    size = 0
    for path, root in found:
        try:
            stat = Path(path).stat()
        except OSError:
            continue  # vanished since discovery, or unreadable: the keying step reports the latter
        if limits is None:
            files.append(PlannedFile(path, root, stat.st_size, to_eof=True))
            size += stat.st_size
            continue
        offset, inode = limits.get(path, (0, None))
        # Not imported yet, cut short or replaced since: the live importer's business, not a loss.
        if offset <= 0 or stat.st_size < offset or (inode is not None and inode != stat.st_ino):
            continue
        files.append(PlannedFile(path, root, offset, to_eof=False))
        size += offset
    return _Plan(files, size)
