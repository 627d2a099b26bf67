"""What every chaos scenario needs: a hostile corpus, fresh databases, importer processes, snapshots.

A scenario's verdict is always the same comparison: the database the chaos happened to must hold exactly
what the generator's manifest declares for every line it wrote (:mod:`testkit.manifest`), an
expectation derived without running the importer, so a bug every run shares cannot hide.
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio
import anyio.abc
import asyncpg

from ..importing import clean_env
from ..manifest import Manifest
from ..postgres_server import PostgresServer
from ..shapes import write_hostile_corpus
from ..verdict import Snapshot, compare

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "mnemo_otel"]
MB = 1_000_000
# A deadline, not a performance assertion: only a hung importer gets near it.
POLL_TIMEOUT_SECONDS = 600.0

_database_counter = itertools.count()


@dataclass(frozen=True, slots=True)
class Scale:
    """How hard a scenario pushes: the reduced form runs in CI, the full one on demand."""

    name: str
    corpus_mb: float
    kills: int
    outages: int
    db_down_seconds: float
    append_seconds: float
    collector_down_seconds: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Scale:
        return FULL if environ.get("MNEMO_CHAOS_FULL") == "1" else REDUCED


REDUCED = Scale(
    "reduced",
    corpus_mb=3,
    kills=5,
    outages=2,
    db_down_seconds=3,
    append_seconds=4,
    collector_down_seconds=10,
)
FULL = Scale(
    "full",
    corpus_mb=20,
    kills=30,
    outages=4,
    db_down_seconds=60,
    append_seconds=30,
    collector_down_seconds=180,
)


@dataclass
class ChaosResult:
    """One scenario's figures; ``differences`` is empty when the contract held."""

    scenario: str
    runs: int
    lost: int = 0
    duplicated: int = 0
    recovery_seconds: list[float] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- corpus ----------------------------------------------------------------------------------------


def build_corpus(root: Path, *, mb: float, seed: int, manifest: Manifest | None = None) -> Manifest:
    """Synthetic sessions plus the hostile cases and every real-world shape (:mod:`testkit.shapes`),
    recorded in a manifest: the scenario's verdict compares the database with what it declares."""
    manifest = manifest if manifest is not None else Manifest()
    write_hostile_corpus(root, manifest, mb=mb, seed=seed)
    return manifest


def complete_bytes(root: Path) -> int:
    """The sum of every transcript's checkpoint once all its complete lines are imported."""
    total = 0
    for path in root.rglob("*.jsonl"):
        data = path.read_bytes()
        total += data.rfind(b"\n") + 1
    return total


# -- databases -------------------------------------------------------------------------------------


async def fresh_database(server: PostgresServer, prefix: str) -> str:
    """An empty database: the importer under test creates its own schema (migration included)."""
    name = f"{prefix}_{os.getpid()}_{next(_database_counter)}"
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return server.dsn(name)


def judge(manifest: Manifest, got: Snapshot, result: ChaosResult) -> None:
    """Add the comparison of ``got`` with what the generator declared to ``result``."""
    verdict = compare(manifest.expected(), got)
    result.lost += verdict.lost
    result.duplicated += verdict.duplicated
    result.differences.extend(verdict.differences)


async def checkpoint_total(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval("SELECT COALESCE(sum(committed_offset), 0)::bigint FROM mnemo.files")
    return value


async def wait_for_checkpoints(dsn: str, target: float, *, proc: anyio.abc.Process | None = None) -> bool:
    """Poll until the checkpoints add up to ``target`` (``False`` if ``proc`` exits first).

    Survives the database being down or not yet migrated: it just polls again.
    """
    with anyio.fail_after(POLL_TIMEOUT_SECONDS):
        while True:
            if proc is not None and proc.returncode is not None:
                return False
            try:
                conn = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError):
                await anyio.sleep(0.05)
                continue
            try:
                while proc is None or proc.returncode is None:
                    if await _table_exists(conn) and await checkpoint_total(conn) >= target:
                        return True
                    await anyio.sleep(0.02)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await anyio.sleep(0.05)
            finally:
                conn.terminate()


def complete_offsets(root: Path) -> dict[str, int]:
    """Each transcript's checkpoint once all its complete lines are imported, by stored path."""
    offsets = {}
    for path in root.rglob("*.jsonl"):
        offsets[str(path)] = path.read_bytes().rfind(b"\n") + 1
    return offsets


async def wait_for_files(
    dsn: str, expected: Mapping[str, int], *, proc: anyio.abc.Process | None = None
) -> bool:
    """Poll until every file's checkpoint is exactly its expected offset (``False`` if ``proc`` exits).

    Per file, not a sum: after a truncation a file's stale, larger checkpoint would hide another
    file's missing bytes in a total.
    """
    with anyio.fail_after(POLL_TIMEOUT_SECONDS):
        while proc is None or proc.returncode is None:
            try:
                conn = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError):
                await anyio.sleep(0.05)
                continue
            try:
                while proc is None or proc.returncode is None:
                    if await _table_exists(conn):
                        rows = await conn.fetch(
                            "SELECT path, committed_offset FROM mnemo.files WHERE path = ANY($1::text[])",
                            list(expected),
                        )
                        got = {r["path"]: r["committed_offset"] for r in rows}
                        if all(got.get(path, 0) == offset for path, offset in expected.items()):
                            return True
                    await anyio.sleep(0.02)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await anyio.sleep(0.05)
            finally:
                conn.terminate()
    return False


async def _table_exists(conn: asyncpg.Connection) -> bool:
    found: bool = await conn.fetchval("SELECT to_regclass('mnemo.files') IS NOT NULL")
    return found


# -- importer processes ----------------------------------------------------------------------------


def importer_env(dsn: str, **extra: str) -> dict[str, str]:
    """The importer's environment: fast retries, no tail reports (a clean run never makes one), no
    telemetry export and no fixed health port (neither is under test here). Its data dir is the
    tests' own (stable across restarts, one loss journal per database), never the user's: a test
    daemon must not consume the spool of the user's own hooks."""
    env = clean_env()
    env.update(
        {
            "MNEMO_DATABASE_URL": dsn,
            "MNEMO_DATA_DIR": str(Path(tempfile.gettempdir()) / f"mnemo-otel-tests-{os.getuid()}"),
            "MNEMO_RETRY__INITIAL_SECONDS": "0.1",
            "MNEMO_RETRY__MAX_SECONDS": "1",
            "MNEMO_IMPORTS__TAIL_GRACE_SECONDS": "86400",
            "MNEMO_HEALTH__PORT": "0",
            "OTEL_SDK_DISABLED": "true",
            **extra,
        }
    )
    return env


@asynccontextmanager
async def importer_process(
    args: list[str], dsn: str, log: IO[bytes], **extra_env: str
) -> AsyncIterator[anyio.abc.Process]:
    """A ``mnemo-otel`` subprocess that is always gone (SIGKILL if need be) when the block ends."""
    proc = await anyio.open_process(
        [*CLI, *args], stdin=None, stdout=log, stderr=log, cwd=REPO, env=importer_env(dsn, **extra_env)
    )
    try:
        yield proc
    finally:
        with anyio.CancelScope(shield=True):
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
