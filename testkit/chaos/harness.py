"""What every chaos scenario needs: a hostile corpus, fresh databases, importer processes, snapshots.

A scenario's verdict is always the same comparison: the database the chaos happened to must hold exactly
what one clean ``mnemo-otel import`` of the same final files produces in a fresh database.
"""

from __future__ import annotations

import itertools
import os
import random
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio
import anyio.abc
import asyncpg

from testkit.synthetic import line, write_corpus

from ..importing import clean_env
from ..postgres_server import PostgresServer

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "mnemo_otel"]
MB = 1_000_000
# A deadline, not a performance assertion: only a hung importer gets near it.
POLL_TIMEOUT_SECONDS = 600.0

_database_counter = itertools.count()

# Lines no importer may lose or store: each must come out of a clean run as one quarantine row.
HOSTILE_LINES = [
    b'{"type":"user","uuid":"truncated-',
    b'{"uuid":"glued-1","type":"user"}{"uuid":"glued-2","type":"user"}',
    b"[1,2,3]",
    b'{"uuid":"bad-utf8","text":"\xc3\x28"}',
    b"\x00\x00\x00\x00 NUL bytes where a line was",
    b'{"uuid":"nul-in-middle\x00","type":"user"}',
]


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


def build_corpus(root: Path, *, mb: float, seed: int) -> None:
    """Synthetic sessions plus the hostile cases: bad lines mid-file, a resumed session repeating
    earlier uuids, a subagent transcript, CRLF and blank lines, jsonb-hostile JSON, a partial last line."""
    write_corpus(root, target_bytes=int(mb * MB), seed=seed)
    rng = random.Random(seed)
    files = sorted(root.rglob("*.jsonl"))
    for path in rng.sample(files, min(3, len(files))):
        lines = path.read_bytes().splitlines(keepends=True)
        for bad in HOSTILE_LINES:
            lines.insert(rng.randrange(1, len(lines)), bad + b"\n")
        path.write_bytes(b"".join(lines))

    original = files[0].read_bytes().splitlines(keepends=True)
    resumed = root / files[0].parent.name / f"{uuid.UUID(int=rng.getrandbits(128))}.jsonl"
    extra = [line({"type": "user", "uuid": f"resumed-{i}", "sessionId": "resumed"}) for i in range(3)]
    resumed.write_bytes(b"".join(original[: len(original) // 2] + extra))

    subagents = files[1].with_suffix("") / "subagents"
    subagents.mkdir(parents=True)
    hostile_json = [
        b'{"uuid":"jsonb-nul","type":"user","text":"before\\u0000after"}',
        b'{"uuid":"jsonb-surrogate","type":"user","text":"lone \\udc80"}',
        b'{"type":"summary","summary":"no uuid: keyed by digest \\u0000"}',
    ]
    (subagents / "agent-1.jsonl").write_bytes(
        b"\n".join(hostile_json)
        + b"\r\n\n   \n"
        + line({"type": "assistant", "uuid": "crlf", "sessionId": "sub"}).replace(b"\n", b"\r\n")
        + b'{"type":"user","uuid":"partial-last-line","sessionId":"sub"'
    )


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


@dataclass(frozen=True)
class Snapshot:
    """What the contract is about, in a form two databases can be compared on."""

    keys: frozenset[str]
    quarantine: Counter[tuple[str, int, str, bytes]]
    exchanges: Mapping[tuple[str, str], tuple[int, str]]
    sessions: Mapping[str, int]


async def snapshot(dsn: str) -> Snapshot:
    conn = await asyncpg.connect(dsn)
    try:
        keys = frozenset(r["key"] for r in await conn.fetch("SELECT key FROM mnemo.entries"))
        quarantine = Counter(
            (r["source_path"], r["source_offset"], r["error_kind"], bytes(r["raw"]))
            for r in await conn.fetch(
                "SELECT source_path, source_offset, error_kind, raw FROM mnemo.quarantine"
            )
        )
        exchanges = {
            (r["session_id"], r["prompt_uuid"]): (r["entry_count"], r["assistant_text"])
            for r in await conn.fetch(
                "SELECT session_id, prompt_uuid, entry_count, assistant_text FROM mnemo.exchanges"
            )
        }
        sessions = {
            r["session_id"]: r["entry_count"]
            for r in await conn.fetch("SELECT session_id, entry_count FROM mnemo.sessions")
        }
    finally:
        await conn.close()
    return Snapshot(keys, quarantine, exchanges, sessions)


def compare(expected: Snapshot, got: Snapshot, result: ChaosResult) -> None:
    """Count lost and duplicated rows into ``result``; list every difference, however small.

    Keys are unique by construction, so duplication can only show as a line folded twice into an
    exchange or session count, or a bad line quarantined twice.
    """
    missing = expected.keys - got.keys
    spurious = got.keys - expected.keys
    missing_bad = expected.quarantine - got.quarantine
    extra_bad = got.quarantine - expected.quarantine
    result.lost += len(missing) + sum(missing_bad.values())
    result.duplicated += sum(extra_bad.values())
    for key, (count, _) in got.exchanges.items():
        result.duplicated += max(0, count - expected.exchanges.get(key, (0, ""))[0])
    for session_id, count in got.sessions.items():
        result.duplicated += max(0, count - expected.sessions.get(session_id, 0))
    if missing:
        result.differences.append(f"{len(missing)} key(s) lost, e.g. {sorted(missing)[:3]}")
    if spurious:
        result.differences.append(f"{len(spurious)} key(s) no clean run stores, e.g. {sorted(spurious)[:3]}")
    if missing_bad or extra_bad:
        result.differences.append(f"quarantine differs: missing {missing_bad}, extra {extra_bad}")
    if got.exchanges != expected.exchanges:
        diff = {
            k
            for k in expected.exchanges.keys() | got.exchanges.keys()
            if expected.exchanges.get(k) != got.exchanges.get(k)
        }
        result.differences.append(f"{len(diff)} exchange(s) differ, e.g. {sorted(diff)[:3]}")
    if got.sessions != expected.sessions:
        result.differences.append("session entry counts differ")


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
                        if all(got.get(path) == offset for path, offset in expected.items()):
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
    telemetry export and no fixed health port (neither is under test here)."""
    env = clean_env()
    env.update(
        {
            "MNEMO_DATABASE_URL": dsn,
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


async def clean_reference(server: PostgresServer, root: Path, log: IO[bytes]) -> Snapshot:
    """What one uninterrupted ``mnemo-otel import`` of the files as they are now stores."""
    dsn = await fresh_database(server, "chaos_reference")
    async with importer_process(["import", "--json", str(root)], dsn, log) as proc:
        code = await proc.wait()
    assert code == 0, f"clean reference run exited with {code}"
    return await snapshot(dsn)


async def clean_reference_history(
    server: PostgresServer, root: Path, log: IO[bytes], states: list[Callable[[], None]]
) -> Snapshot:
    """Uninterrupted ``mnemo-otel import`` runs into one fresh database, one after each of ``states``
    (callables that put the files back as they once were): a clean run over all content ever written,
    in the order it was written, at the same paths."""
    dsn = await fresh_database(server, "chaos_reference")
    for state in states:
        state()
        async with importer_process(["import", "--json", str(root)], dsn, log) as proc:
            code = await proc.wait()
        assert code == 0, f"clean reference run exited with {code}"
    return await snapshot(dsn)


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
