"""Fleet membership in PostgreSQL: which hosts import into this archive, and which were retired.

Every importer records its host when it starts. The daemon also touches its row while it runs, which
makes the host a member (monitored); every live daemon exports the list of members, so an alert can
name a host that stopped beating even after that host's own series are gone. A one-shot import never
makes its host a member. A member leaves the fleet only when someone retires it on purpose.

Enrolment also settles the rows written before hosts were recorded: the first importer to start
claims them, under the row lock of ``mnemo.legacy_rows``, so two importers starting together cannot
split them, and its checkpoints continue where they were.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeAlias

import asyncpg

from ..errors import ConfigError

__all__ = ("HostRecord", "RetireRefused", "enroll", "hosts", "retire", "touch")

logger = logging.getLogger(__name__)

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

RETIRE_QUIET_SECONDS: Final = 300.0
"""A host seen more recently than this is probably alive: retiring it needs ``force``."""

_CLAIM: Final = """
UPDATE mnemo.legacy_rows SET claimed_by = $1, claimed_at = now()
WHERE claimed_by IS NULL
RETURNING claimed_by
"""
# (table, host column): every table whose rows name the host a line came from.
_HOST_COLUMNS: Final = (
    ("files", "host"),
    ("entries", "source_host"),
    ("quarantine", "source_host"),
    ("exchanges", "source_host"),
)
_RECORD_HOST: Final = """
INSERT INTO mnemo.hosts AS h (host_id, version) VALUES ($1, $2)
ON CONFLICT (host_id) DO UPDATE SET last_seen_at = now(), version = EXCLUDED.version
RETURNING (xmax = 0) AS joined
"""
# A running daemon is a member, even one retired before: it beats again.
_TOUCH: Final = """
INSERT INTO mnemo.hosts AS h (host_id, version, monitored) VALUES ($1, $2, true)
ON CONFLICT (host_id) DO UPDATE SET last_seen_at = now(), version = EXCLUDED.version, monitored = true,
    retired_at = NULL
RETURNING (SELECT retired_at FROM mnemo.hosts WHERE host_id = $1) AS was_retired
"""
_MEMBERS: Final = "SELECT host_id FROM mnemo.hosts WHERE monitored AND retired_at IS NULL ORDER BY host_id"
_LIST: Final = """
SELECT h.host_id, h.version, h.first_seen_at, h.last_seen_at, h.monitored, h.retired_at,
       (SELECT count(*) FROM mnemo.files f WHERE f.host = h.host_id) AS files,
       (SELECT max(f.updated_at) FROM mnemo.files f WHERE f.host = h.host_id) AS last_import_at
FROM mnemo.hosts h ORDER BY h.host_id
"""
_RETIRE: Final = """
UPDATE mnemo.hosts SET retired_at = now()
WHERE host_id = $1 AND retired_at IS NULL
RETURNING host_id
"""


class RetireRefused(ConfigError):
    """The host looks alive, or is unknown: retiring it would hide a real problem or do nothing."""


@dataclass(frozen=True, slots=True)
class HostRecord:
    host_id: str
    version: str
    first_seen_at: datetime
    last_seen_at: datetime
    monitored: bool
    retired_at: datetime | None
    files: int
    last_import_at: datetime | None


async def enroll(conn: Conn, host_id: str, version: str) -> dict[str, int]:
    """Record this host and, if no importer did since the upgrade, claim the rows without a host.

    Returns the rows claimed per table; empty unless this is the first importer since the upgrade.
    """
    claimed: dict[str, int] = {}
    async with conn.transaction():
        if await conn.fetchval(_CLAIM, host_id) is not None:
            for table, column in _HOST_COLUMNS:
                status = await conn.execute(
                    f"UPDATE mnemo.{table} SET {column} = $1 WHERE {column} = ''",
                    host_id,
                )
                claimed[table] = int(status.split()[-1])
        joined = await conn.fetchval(_RECORD_HOST, host_id, version)
    if joined:
        logger.info("first import from this host", extra={"mnemo.host.id": host_id})
    if any(claimed.values()):
        logger.info(
            "rows imported before hosts were recorded now belong to this host",
            extra={f"mnemo.claimed.{table}": count for table, count in claimed.items()},
        )
    return claimed


async def touch(conn: Conn, host_id: str, version: str) -> list[str]:
    """The daemon on this host is alive: it is a member; returns the members (retired ones left out)."""
    async with conn.transaction():
        was_retired = await conn.fetchval(_TOUCH, host_id, version)
        members = [row["host_id"] for row in await conn.fetch(_MEMBERS)]
    if was_retired is not None:
        logger.warning(
            "retired host runs again: a member of the fleet again", extra={"mnemo.host.id": host_id}
        )
    return members


async def hosts(conn: Conn) -> list[HostRecord]:
    return [HostRecord(**dict(row)) for row in await conn.fetch(_LIST)]


async def retire(conn: Conn, host_id: str, *, force: bool = False) -> None:
    """Take a host out of the fleet: its stale heartbeat stops alerting. Its rows stay."""
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT retired_at, extract(epoch FROM now() - last_seen_at) AS quiet FROM mnemo.hosts "
            "WHERE host_id = $1 FOR UPDATE",
            host_id,
        )
        if row is None:
            raise RetireRefused(f"no host {host_id!r} in the fleet (see `mnemo-otel hosts list`)")
        if row["retired_at"] is not None:
            return
        if row["quiet"] < RETIRE_QUIET_SECONDS and not force:
            raise RetireRefused(
                f"host {host_id!r} was seen {row['quiet']:.0f} s ago: stop its importer first "
                "(a running importer rejoins the fleet), or pass --force"
            )
        await conn.execute(_RETIRE, host_id)
