"""The witness's statements: record what Claude Code said it wrote, reconcile it with the archive,
and report what the archive still lacks. Never any content: ids, event names, times, hosts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from ..announce.store import AnnouncedStatus
from ..store.postgres import Conn
from .events import Heard

__all__ = ("WitnessStatus", "reconcile", "record", "status", "unarchived_by_host")

_RECORD: Final = """
INSERT INTO mnemo.witnessed
    (event_id, host, session_id, event_name, message_uuid, prompt_id, event_time, client_version)
SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::text[])
ON CONFLICT (event_id) DO NOTHING
"""
_HEARD: Final = """
INSERT INTO mnemo.witness_hosts AS h (host, client_version)
SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT (host) DO UPDATE SET last_heard_at = now(),
    client_version = coalesce(EXCLUDED.client_version, h.client_version)
"""
# A witnessed line is archived once an entry holds its uuid (or, for clients before message.uuid,
# the session's user line with its promptId). Returned: each newly matched line's host and its lag,
# commit time on our clock minus the event's time on the producer's.
_RECONCILE: Final = """
WITH pending AS (
    SELECT event_id, session_id, message_uuid, prompt_id FROM mnemo.witnessed WHERE archived_at IS NULL
), matched AS (
    SELECT p.event_id, e.imported_at
    FROM pending p JOIN mnemo.entries e ON e.key = p.message_uuid
    UNION ALL
    SELECT p.event_id, min(e.imported_at)
    FROM pending p
    JOIN mnemo.entries e ON e.session_id = p.session_id AND e.entry_type = 'user'
        AND e.data->>'promptId' = p.prompt_id
    WHERE p.message_uuid IS NULL
    GROUP BY p.event_id
)
UPDATE mnemo.witnessed w SET archived_at = m.imported_at
FROM matched m WHERE w.event_id = m.event_id
RETURNING w.host, extract(epoch FROM m.imported_at - w.event_time)::float8 AS lag_seconds
"""
_UNARCHIVED: Final = """
SELECT coalesce(host, '') AS host, count(*) AS lines
FROM mnemo.witnessed WHERE archived_at IS NULL AND event_time < now() - make_interval(secs => $1)
GROUP BY 1
"""
_FIGURES: Final = """
SELECT coalesce(host, '') AS host,
       count(*) AS witnessed,
       count(archived_at) AS archived,
       count(*) FILTER (WHERE archived_at IS NULL AND event_time < now() - make_interval(secs => $1)) AS unarchived,
       extract(epoch FROM now() - min(event_time) FILTER (
           WHERE archived_at IS NULL AND event_time < now() - make_interval(secs => $1)))::float8 AS oldest,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM archived_at - event_time))
           FILTER (WHERE archived_at IS NOT NULL) AS lag_p99
FROM mnemo.witnessed WHERE ($2::text IS NULL OR coalesce(host, '') = $2)
GROUP BY 1 ORDER BY 1
"""
_SESSIONS: Final = """
SELECT session_id, count(*) AS lines FROM mnemo.witnessed
WHERE archived_at IS NULL AND event_time < now() - make_interval(secs => $1)
  AND ($2::text IS NULL OR coalesce(host, '') = $2)
GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 100
"""


async def record(conn: Conn, heard: Heard) -> None:
    """Store the export's witnessed lines (each once, however often it is sent) and its hosts."""
    async with conn.transaction():
        if heard.lines:
            lines = heard.lines
            await conn.execute(
                _RECORD,
                [w.event_id for w in lines],
                [w.host for w in lines],
                [w.session_id for w in lines],
                [w.event_name for w in lines],
                [w.message_uuid for w in lines],
                [w.prompt_id for w in lines],
                [w.event_time for w in lines],
                [w.client_version for w in lines],
            )
        if heard.hosts:
            await conn.execute(_HEARD, list(heard.hosts), list(heard.hosts.values()))


async def reconcile(conn: Conn) -> list[tuple[str, float]]:
    """Mark the witnessed lines the archive now holds; ``(host, lag seconds)`` of each."""
    rows = await conn.fetch(_RECONCILE)
    return [(row["host"] or "", row["lag_seconds"]) for row in rows]


async def unarchived_by_host(conn: Conn, grace_seconds: float) -> dict[str, int]:
    return {row["host"]: row["lines"] for row in await conn.fetch(_UNARCHIVED, grace_seconds)}


@dataclass
class WitnessStatus:
    """``witness status --json``; figures over every host, then per host ('' = no host named)."""

    witnessed: int = 0
    archived: int = 0
    unarchived: int = 0
    oldest_unarchived_age_seconds: float | None = None
    lag_p99_seconds: float | None = None
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    announced: AnnouncedStatus = field(default_factory=AnnouncedStatus)
    """Transcripts Claude Code's hooks announced (``mnemo-otel hook``), and which are not archived."""

    @property
    def missing(self) -> bool:
        """Anything the archive lacks: a witnessed line, or an announced file."""
        return bool(self.unarchived or self.announced.not_archived)

    def as_dict(self) -> dict[str, Any]:
        return {
            "witnessed": self.witnessed,
            "archived": self.archived,
            "unarchived": self.unarchived,
            "oldest_unarchived_age_seconds": self.oldest_unarchived_age_seconds,
            "lag_p99_seconds": self.lag_p99_seconds,
            "hosts": self.hosts,
            "sessions": self.sessions,
            "announced": self.announced.as_dict(),
        }

    def summary(self) -> str:
        lines = [
            f"witnessed {self.witnessed} line(s): archived {self.archived}, unarchived {self.unarchived}"
            + (
                f" (oldest {self.oldest_unarchived_age_seconds:.0f} s)"
                if self.oldest_unarchived_age_seconds
                else ""
            )
        ]
        for host, figures in self.hosts.items():
            name = host or "(no host named: set OTEL_RESOURCE_ATTRIBUTES=mnemo.host.id=...)"
            archived_by = "" if figures["imported"] else "; nothing archives this host"
            lines.append(
                f"  {name}: witnessed {figures['witnessed']}, unarchived {figures['unarchived']}{archived_by}"
            )
        lines += [f"  unarchived in session {s['session_id']}: {s['count']}" for s in self.sessions]
        announced = self.announced
        lines.append(
            f"announced {announced.announced} transcript(s) by hooks: archived {announced.archived},"
            f" not archived {announced.not_archived}"
        )
        lines += [
            f"  not archived: {f['path']} (session {f['session_id']}"
            + (f", refused: {f['refused']})" if f["refused"] else ")")
            for f in announced.files
        ]
        return "\n".join(lines)


async def status(conn: Conn, grace_seconds: float, host: str | None) -> WitnessStatus:
    report = WitnessStatus()
    importing = {
        row["host_id"] for row in await conn.fetch("SELECT host_id FROM mnemo.hosts WHERE retired_at IS NULL")
    }
    oldest: list[float] = []
    for row in await conn.fetch(_FIGURES, grace_seconds, host):
        report.witnessed += row["witnessed"]
        report.archived += row["archived"]
        report.unarchived += row["unarchived"]
        if row["oldest"] is not None:
            oldest.append(row["oldest"])
        report.hosts[row["host"]] = {
            "witnessed": row["witnessed"],
            "archived": row["archived"],
            "unarchived": row["unarchived"],
            "oldest_unarchived_age_seconds": row["oldest"],
            "lag_p99_seconds": row["lag_p99"],
            "imported": row["host"] in importing,
        }
    report.oldest_unarchived_age_seconds = max(oldest) if oldest else None
    overall = await conn.fetchval(
        "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM archived_at - event_time))"
        " FROM mnemo.witnessed WHERE archived_at IS NOT NULL AND ($1::text IS NULL OR coalesce(host, '') = $1)",
        host,
    )
    report.lag_p99_seconds = overall
    report.sessions = [
        {"session_id": row["session_id"], "count": row["lines"]}
        for row in await conn.fetch(_SESSIONS, grace_seconds, host)
    ]
    return report
