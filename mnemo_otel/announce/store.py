"""``mnemo.announcements``: what the hooks announced, per host and path, and whether it is archived.

Recording is idempotent (one row per (host, path), the latest event wins), so a spool read again
after a crash changes nothing and counts nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..store.postgres import Conn, PostgresSink, translate_errors

__all__ = ("AnnouncedStatus", "AnnouncementStore", "Observed", "OpenAnnouncement", "announced_status")


@dataclass(frozen=True, slots=True)
class Observed:
    """One path's announcements from one read of the spool, folded (first and last event)."""

    path: str
    session_id: str
    first_event: str
    first_at: float
    last_event: str
    last_at: float
    under_root: bool
    refused: str | None


@dataclass(frozen=True, slots=True)
class OpenAnnouncement:
    path: str
    session_id: str
    last_at: float
    ended: bool


_RECORD = """
INSERT INTO mnemo.announcements AS a (host, path, session_id, first_event, last_event,
    first_announced_at, last_announced_at, ended_at, under_root, refused)
SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
    $7::timestamptz[], $8::timestamptz[], $9::boolean[], $10::text[]) AS u
ON CONFLICT (host, path) DO UPDATE SET
    session_id = EXCLUDED.session_id,
    first_event = CASE WHEN EXCLUDED.first_announced_at < a.first_announced_at
                       THEN EXCLUDED.first_event ELSE a.first_event END,
    first_announced_at = LEAST(a.first_announced_at, EXCLUDED.first_announced_at),
    last_event = CASE WHEN EXCLUDED.last_announced_at >= a.last_announced_at
                      THEN EXCLUDED.last_event ELSE a.last_event END,
    ended_at = CASE WHEN EXCLUDED.last_announced_at >= a.last_announced_at
                    THEN EXCLUDED.ended_at ELSE a.ended_at END,
    last_announced_at = GREATEST(a.last_announced_at, EXCLUDED.last_announced_at),
    under_root = EXCLUDED.under_root,
    refused = EXCLUDED.refused,
    closed_at = CASE WHEN EXCLUDED.last_announced_at > a.last_announced_at THEN NULL ELSE a.closed_at END
RETURNING (xmax = 0) AS inserted
"""

_OPEN = """
SELECT path, session_id, last_announced_at, ended_at IS NOT NULL AS ended
FROM mnemo.announcements
WHERE host = $1 AND closed_at IS NULL AND NOT under_root AND refused IS NULL
"""

_CLOSE = "UPDATE mnemo.announcements SET closed_at = now() WHERE host = $1 AND path = ANY($2::text[])"

# Archived: the importer holds a checkpoint past byte 0 for the path. A file never written (a
# session that ended before its first line) is not held against the archive once it was closed.
_STATUS = """
SELECT a.host, a.path, a.session_id, a.last_event, a.refused,
       extract(epoch FROM now() - a.last_announced_at)::float8 AS age,
       f.committed_offset IS NOT NULL AND f.committed_offset > 0 AS archived,
       a.closed_at IS NOT NULL AND f.path IS NULL AS closed_unwritten
FROM mnemo.announcements a
LEFT JOIN mnemo.files f ON f.host = a.host AND f.path = a.path
WHERE $1::text IS NULL OR a.host = $1
ORDER BY a.host, a.last_announced_at
"""


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class AnnouncementStore:
    """This host's announcements, through the daemon's sink."""

    def __init__(self, sink: PostgresSink) -> None:
        self.sink = sink
        self.host = sink.host_id

    async def record(self, observed: list[Observed]) -> int:
        """Record each path's announcements; the number of paths announced for the first time."""
        if not observed:
            return 0
        columns: list[list[Any]] = [
            [o.path for o in observed],
            [o.session_id for o in observed],
            [o.first_event for o in observed],
            [o.last_event for o in observed],
            [_time(o.first_at) for o in observed],
            [_time(o.last_at) for o in observed],
            [_time(o.last_at) if o.last_event == "SessionEnd" else None for o in observed],
            [o.under_root for o in observed],
            [o.refused for o in observed],
        ]
        async with translate_errors(), self.sink.connection() as conn:
            rows = await conn.fetch(_RECORD, self.host, *columns)
        return sum(1 for row in rows if row["inserted"])

    async def open(self) -> list[OpenAnnouncement]:
        """The announcements still watched (a restart picks them up where it left them)."""
        async with translate_errors(), self.sink.connection() as conn:
            rows = await conn.fetch(_OPEN, self.host)
        return [
            OpenAnnouncement(r["path"], r["session_id"], r["last_announced_at"].timestamp(), r["ended"])
            for r in rows
        ]

    async def close(self, paths: list[str]) -> None:
        async with translate_errors(), self.sink.connection() as conn:
            await conn.execute(_CLOSE, self.host, paths)


@dataclass
class AnnouncedStatus:
    """Announced files, archived or not; "not archived" counts only those announced longer ago than
    the grace period (a live session's first lines are seconds away from their commit), refused
    ones at once."""

    announced: int = 0
    archived: int = 0
    not_archived: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "announced": self.announced,
            "archived": self.archived,
            "not_archived": self.not_archived,
            "files": self.files,
        }


async def announced_status(conn: Conn, grace_seconds: float, host: str | None) -> AnnouncedStatus:
    report = AnnouncedStatus()
    for row in await conn.fetch(_STATUS, host):
        report.announced += 1
        if row["archived"]:
            report.archived += 1
            continue
        if row["closed_unwritten"] or (row["refused"] is None and row["age"] < grace_seconds):
            continue
        report.not_archived += 1
        report.files.append(
            {
                "host": row["host"],
                "path": row["path"],
                "session_id": row["session_id"],
                "last_event": row["last_event"],
                "refused": row["refused"],
                "age_seconds": row["age"],
            }
        )
    return report
