"""The durable records of zero loss: source losses and completed scrubs, per host (migration 0004).

Plain functions over a connection: the daemon's maintenance task, ``verify`` and the health
start-up read and write these; the import path never waits on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeAlias

import asyncpg

__all__ = (
    "LastScrub",
    "LossTotals",
    "checkpoint_offset",
    "last_scrub",
    "loss_totals",
    "record_loss",
    "record_scrub",
    "recorded_events",
)

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

INSERT_LOSS: Final = """
INSERT INTO mnemo.source_losses (host_id, source_path, reason, lost_bytes, detected_at, event_id)
VALUES ($1, $2, $3, $4, $5, $6::text::uuid)
ON CONFLICT (event_id) DO NOTHING
"""
RECORDED_EVENTS: Final = """
SELECT replace(event_id::text, '-', '') FROM mnemo.source_losses WHERE event_id = ANY($1::text[]::uuid[])
"""
LOSS_TOTALS: Final = """
SELECT count(*) AS events, COALESCE(sum(lost_bytes), 0)::bigint AS lost_bytes
FROM mnemo.source_losses WHERE $1::text IS NULL OR host_id = $1
"""
INSERT_SCRUB: Final = """
INSERT INTO mnemo.verify_runs (host_id, started_at, files, lines, missing, repaired, trace_id)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING finished_at
"""
LAST_SCRUB: Final = """
SELECT finished_at, missing FROM mnemo.verify_runs WHERE host_id = $1 ORDER BY finished_at DESC LIMIT 1
"""
CHECKPOINT_OFFSET: Final = "SELECT committed_offset FROM mnemo.files WHERE path = $1 AND host = $2"


@dataclass(frozen=True, slots=True)
class LossTotals:
    events: int
    lost_bytes: int


@dataclass(frozen=True, slots=True)
class LastScrub:
    finished_at: float
    missing: int


async def record_loss(
    conn: Conn, host_id: str, path: str, reason: str, lost_bytes: int, detected_at: float, event_id: str
) -> None:
    """Once per ``event_id``: recording an event again (a replayed journal) changes nothing."""
    when = datetime.fromtimestamp(detected_at, UTC)
    await conn.execute(INSERT_LOSS, host_id, path, reason, lost_bytes, when, event_id)


async def recorded_events(conn: Conn, event_ids: list[str]) -> set[str]:
    """Which of these events (32 hex digits each) the database holds already."""
    return {row[0] for row in await conn.fetch(RECORDED_EVENTS, event_ids)}


async def loss_totals(conn: Conn, host_id: str | None) -> LossTotals:
    """This host's recorded losses (``None``: every host's)."""
    row = await conn.fetchrow(LOSS_TOTALS, host_id)
    assert row is not None
    return LossTotals(row["events"], row["lost_bytes"])


async def record_scrub(
    conn: Conn,
    host_id: str,
    *,
    started_at: float,
    counts: tuple[int, int, int, int],
    trace_id: str | None,
) -> float:
    """Record a completed scrub (files, lines, missing, repaired); returns when it finished."""
    files, lines, missing, repaired = counts
    started = datetime.fromtimestamp(started_at, UTC)
    finished: datetime = await conn.fetchval(
        INSERT_SCRUB, host_id, started, files, lines, missing, repaired, trace_id
    )
    return finished.timestamp()


async def last_scrub(conn: Conn, host_id: str) -> LastScrub | None:
    row = await conn.fetchrow(LAST_SCRUB, host_id)
    return None if row is None else LastScrub(row["finished_at"].timestamp(), row["missing"])


async def checkpoint_offset(conn: Conn, host_id: str, path: str) -> int:
    value: int | None = await conn.fetchval(CHECKPOINT_OFFSET, path, host_id)
    return value or 0
