"""Judging the archive against what the real Claude Code CLI wrote, without the importer's own code.

The keying here is the data contract restated from scratch (the line's ``uuid``, else ``sha256:`` of
its bytes without the line ending), on the standard library's JSON parser: a keying bug the
importer and ``verify`` share cannot hide behind an agreement between the two.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import asyncpg

from .chaos.harness import CLI, REPO, complete_offsets, importer_env, log_tail, wait_for_files

__all__ = (
    "DiskLine",
    "ImporterDaemon",
    "archived_keys",
    "committed_offsets",
    "complete_lines",
    "exchanges_by_session",
    "fetch_rows",
    "line_types",
    "missing_from_archive",
    "run_mnemo",
    "run_verify",
    "running_daemon",
    "stored_types",
)


# A deadline, not a performance assertion: the daemon catches up with a few files in about a second.
SETTLE_DEADLINE_SECONDS = 60.0


@dataclass(frozen=True)
class DiskLine:
    """One complete line of a transcript as the client wrote it."""

    path: Path
    offset: int
    data: bytes  # without the line ending
    obj: dict[str, Any]

    @property
    def key(self) -> str:
        uuid = self.obj.get("uuid")
        if isinstance(uuid, str) and uuid:
            return uuid
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    @property
    def kind(self) -> str:
        kind = self.obj.get("type")
        return kind if isinstance(kind, str) else ""


def complete_lines(root: Path) -> Iterator[DiskLine]:
    """Every complete, non-blank line of ``root`` (a file, or the ``*.jsonl`` under a folder); an unterminated tail is not
    complete yet and is left out. Raises on a line that is not a JSON object: the client never writes
    one, so a test should hear about it."""
    for path in [root] if root.is_file() else sorted(root.rglob("*.jsonl")):
        data = path.read_bytes()
        offset = 0
        for piece in data.split(b"\n")[:-1]:
            line = piece.removesuffix(b"\r")
            if line.strip():
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError(f"{path}:{offset}: a line that is not a JSON object")
                yield DiskLine(path, offset, line, obj)
            offset += len(piece) + 1


async def fetch_rows(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def archived_keys(dsn: str) -> set[str]:
    return {row["key"] for row in await fetch_rows(dsn, "SELECT key FROM mnemo.entries")}


async def missing_from_archive(dsn: str, root: Path) -> list[DiskLine]:
    """The complete lines on disk whose key the archive lacks (empty when nothing was lost)."""
    stored = await archived_keys(dsn)
    return [line for line in complete_lines(root) if line.key not in stored]


async def exchanges_by_session(dsn: str) -> dict[str, list[str]]:
    """Each session's exchanges as their prompts' text, in the order they started."""
    rows = await fetch_rows(
        dsn,
        "SELECT session_id, prompt_text FROM mnemo.exchanges ORDER BY session_id, started_at, prompt_uuid",
    )
    by_session: dict[str, list[str]] = {}
    for row in rows:
        by_session.setdefault(row["session_id"], []).append(row["prompt_text"])
    return by_session


def line_types(root: Path) -> Counter[str]:
    """How many lines of each ``type`` (with the subtype for ``system``) the client wrote."""
    counts: Counter[str] = Counter()
    for line in complete_lines(root):
        subtype = line.obj.get("subtype")
        counts[f"{line.kind}/{subtype}" if line.kind == "system" and subtype else line.kind] += 1
    return counts


def run_mnemo(dsn: str, *args: str, timeout: float = 300) -> tuple[int, dict[str, Any]]:
    """``mnemo-otel ARGS`` as a user runs it: its exit code and its JSON report (or, when it printed
    none, its stdout and stderr)."""
    done = subprocess.run(
        [*CLI, *args],
        cwd=REPO,
        env=importer_env(dsn),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        report = {"stdout": done.stdout, "stderr": done.stderr}
    return done.returncode, report


def run_verify(dsn: str, root: Path) -> tuple[int, dict[str, Any]]:
    """``mnemo-otel verify --json ROOT``: its exit code and its report."""
    return run_mnemo(dsn, "verify", "--json", str(root))


class ImporterDaemon:
    """``mnemo-otel run ROOT`` as a subprocess that a test may SIGKILL and start again.

    Its data dir (``MNEMO_DATA_DIR``: the hooks' spool among others) is beside its log unless
    ``env`` says otherwise, never the user's own.
    """

    def __init__(self, dsn: str, root: Path, log: Path, **env: str) -> None:
        self.dsn = dsn
        self.root = root
        self.log = log
        self.env = {"MNEMO_DATA_DIR": str(log.parent / f"{log.stem}-data"), **env}
        self.proc: anyio.abc.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = await anyio.open_process(
                [*CLI, "run", str(self.root)],
                stdin=None,
                stdout=log,
                stderr=log,
                cwd=REPO,
                env=importer_env(self.dsn, MNEMO_IMPORTS__RESCAN_INTERVAL_SECONDS="1", **self.env),
            )

    async def kill(self) -> None:
        """SIGKILL: no clean-up, no last commit."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def settle(self) -> None:
        """Wait until every file's checkpoint is at its last complete line; fails if the daemon died or
        has not caught up within a deadline (a file it never discovers would keep a test waiting)."""
        caught_up = False
        with anyio.move_on_after(SETTLE_DEADLINE_SECONDS):
            caught_up = await wait_for_files(self.dsn, complete_offsets(self.root), proc=self.proc)
        if not caught_up:
            offsets = await committed_offsets(self.dsn)
            behind = {p: o for p, o in complete_offsets(self.root).items() if offsets.get(p) != o}
            raise AssertionError(f"the daemon has not caught up with {behind}; log:\n{log_tail(self.log)}")


@asynccontextmanager
async def running_daemon(dsn: str, root: Path, log: Path, **env: str) -> AsyncIterator[ImporterDaemon]:
    daemon = ImporterDaemon(dsn, root, log, **env)
    await daemon.start()
    try:
        yield daemon
    finally:
        with anyio.CancelScope(shield=True):
            await daemon.kill()


async def committed_offsets(dsn: str) -> dict[str, int]:
    """Each file's checkpoint as the archive has it."""
    rows = await fetch_rows(dsn, "SELECT path, committed_offset FROM mnemo.files")
    return {row["path"]: row["committed_offset"] for row in rows}


async def stored_types(dsn: str) -> dict[str, str]:
    """Each archived key's ``entry_type``."""
    return {
        row["key"]: row["entry_type"]
        for row in await fetch_rows(dsn, "SELECT key, entry_type FROM mnemo.entries")
    }
