"""Checking keyed lines against the archive: in memory first, the database only for the doubts.

Keys were tested against a snapshot of this host's stored keys by the worker that keyed them
(``stored.py``, ``segments.py``); those it lacks (stored first by another host, committed since the
snapshot, or not stored) are looked up with ``= ANY($1)`` on the primary key, and what is still not
found (and every bad line) is looked for in the quarantine, by (host, path, offset). A line PostgreSQL
refused is quarantined under its offset as ``rejected_by_db``: that counts as kept too. A clean
segment costs no round trip at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeAlias

import asyncpg

from .segments import Keyed

__all__ = ("Findings", "Missing", "check_keyed")

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

STORED_KEYS: Final = "SELECT key FROM mnemo.entries WHERE key = ANY($1::text[])"
QUARANTINED_AT: Final = """
SELECT q.source_offset, q.line_sha256, q.error_kind
FROM mnemo.quarantine AS q
WHERE q.source_host = $3 AND q.source_path = $1 AND q.source_offset = ANY($2::bigint[])
"""
_REJECTED = "rejected_by_db"


@dataclass(frozen=True, slots=True)
class Missing:
    """A complete line on disk that the archive does not hold; ``key`` is ``sha256:`` for bad lines."""

    path: str
    root: str
    offset: int
    key: str
    bad: bool


@dataclass(slots=True)
class Findings:
    """What one segment's check found."""

    lines: int = 0
    stored: int = 0
    quarantined: int = 0
    missing: list[Missing] = field(default_factory=list)


async def check_keyed(conn: Conn, keyed: Keyed, host_id: str) -> Findings:
    """Lines found in the snapshot are stored; the others are asked about, first in the entries (a
    row committed since the snapshot), then in the quarantine."""
    found = Findings(lines=keyed.lines, stored=keyed.stored)
    path, root = keyed.segment.path, keyed.segment.root
    doubtful = keyed.doubtful
    if doubtful:
        stored = {row[0] for row in await conn.fetch(STORED_KEYS, list({key for _, key in doubtful}))}
        found.stored += sum(1 for _, key in doubtful if key in stored)
        doubtful = [(offset, key) for offset, key in doubtful if key not in stored]
    if not doubtful and not keyed.bad:
        return found
    offsets = [offset for offset, _ in doubtful] + [offset for offset, _ in keyed.bad]
    rows = await conn.fetch(QUARANTINED_AT, path, offsets, host_id)
    rejected = {row[0] for row in rows if row[2] == _REJECTED}
    kept_bad = {(row[0], row[1]) for row in rows}
    for offset, key in doubtful:
        if offset in rejected:
            found.quarantined += 1
        else:
            found.missing.append(Missing(path, root, offset, key, bad=False))
    for offset, sha in keyed.bad:
        if (offset, sha) in kept_bad:
            found.quarantined += 1
        else:
            found.missing.append(Missing(path, root, offset, f"sha256:{sha}", bad=True))
    return found
