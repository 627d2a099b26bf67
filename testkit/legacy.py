"""A database as the schema-2 importer left it: for testing migrations on real, already-imported data.

The statements are those the PostgreSQL sink ran before hosts were recorded (checkpoints keyed by path
alone, no host on any row), frozen here; the lines, identities and exchanges come from today's reader
and fold, which did not change. A later importer must continue exactly where this one stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import asyncpg
import orjson

from mnemo_otel.importer.batches import read_batch
from mnemo_otel.model import Entry, FileRead
from mnemo_otel.settings import ImportSettings
from mnemo_otel.store._fold import fold
from mnemo_otel.store.migrate import apply_migrations
from mnemo_otel.transcripts.discovery import discover

__all__ = ("SCHEMA_BEFORE_HOSTS", "import_before_hosts")

SCHEMA_BEFORE_HOSTS: Final = 2


def _entries_payload(entries: list[Entry]) -> str:
    """``[[key, line, ts, raw, offset], ...]`` as JSON text: how schema 2's importer sent a batch."""
    parts = [
        b"["
        + orjson.dumps(e.key)
        + b","
        + (e.jsonb or e.line)
        + b","
        + (orjson.dumps(e.timestamp.isoformat()) if e.timestamp is not None else b"null")
        + b","
        + (orjson.dumps(e.line.decode()) if e.jsonb is not None else b"null")
        + b","
        + str(e.offset).encode()
        + b"]"
        for e in entries
    ]
    return (b"[" + b",".join(parts) + b"]").decode()


_INSERT_ENTRIES: Final = """
INSERT INTO mnemo.entries AS e
    (key, entry_type, uuid, parent_uuid, session_id, ts, data, raw, source_path, source_offset, import_trace_id)
SELECT r.row->>0,
       COALESCE(CASE WHEN jsonb_typeof(r.row->1->'type') = 'string' THEN r.row->1->>'type' END, ''),
       CASE WHEN jsonb_typeof(r.row->1->'uuid') = 'string' THEN NULLIF(r.row->1->>'uuid', '') END,
       CASE WHEN jsonb_typeof(r.row->1->'parentUuid') = 'string' THEN NULLIF(r.row->1->>'parentUuid', '') END,
       CASE WHEN jsonb_typeof(r.row->1->'sessionId') = 'string' THEN NULLIF(r.row->1->>'sessionId', '') END,
       (r.row->>2)::timestamptz, r.row->1, r.row->>3, $2, (r.row->>4)::bigint, $3
FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS r(row, ord)
ORDER BY r.ord
ON CONFLICT (key) DO NOTHING
RETURNING e.key
"""
_LOCK_FILE: Final = """
INSERT INTO mnemo.files AS f (path, root) VALUES ($1, $2)
ON CONFLICT (path) DO UPDATE SET root = f.root
RETURNING committed_offset
"""
_ADVANCE: Final = """
UPDATE mnemo.files
SET committed_offset = $2, device = $3, inode = $4, head_sha256 = $5, head_length = $6, mark_sha256 = $7,
    open_session_id = $8, open_prompt_uuid = $9, updated_at = now()
WHERE path = $1
"""
_QUARANTINE: Final = """
INSERT INTO mnemo.quarantine
    (source_path, source_offset, error_kind, detail, raw, line_length, line_sha256, import_trace_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (source_path, source_offset, line_sha256) DO NOTHING
"""
_EXCHANGE: Final = """
INSERT INTO mnemo.exchanges (session_id, prompt_uuid, prompt_text, assistant_text, entry_count, source_path)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (session_id, prompt_uuid) DO NOTHING
"""


async def import_before_hosts(dsn: str, root: Path, trace_id: str) -> None:
    """Migrate to schema 2 and import every complete line under ``root`` the way schema 2 did."""
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, target=SCHEMA_BEFORE_HOSTS)
        for transcript in discover([root]):
            await _import_file(conn, transcript.path, root, trace_id)
    finally:
        await conn.close()


async def _import_file(conn: asyncpg.Connection, path: Path, root: Path, trace_id: str) -> None:
    start, exhausted = 0, False
    while not exhausted:
        read = read_batch(path, start, ImportSettings())
        await _commit(conn, path, root, trace_id, read)
        start, exhausted = read.end, read.exhausted


async def _commit(conn: asyncpg.Connection, path: Path, root: Path, trace_id: str, read: FileRead) -> None:
    async with conn.transaction():
        await conn.fetchrow(_LOCK_FILE, str(path), str(root))
        rows = await conn.fetch(_INSERT_ENTRIES, _entries_payload(read.entries), str(path), trace_id)
        stored_keys = {row["key"] for row in rows}
        stored = {i for i, e in enumerate(read.entries) if e.key in stored_keys}
        for bad in read.bad_lines:
            await conn.execute(
                _QUARANTINE,
                *(
                    str(path),
                    bad.offset,
                    bad.kind.value,
                    bad.detail,
                    bad.raw,
                    bad.length,
                    bad.sha256,
                    trace_id,
                ),
            )
        folded = fold(read.entries, stored, None)
        for x in folded.exchanges:
            await conn.execute(
                _EXCHANGE,
                *(
                    x.session_id,
                    x.prompt_uuid,
                    x.prompt_text,
                    "\n".join(x.assistant_parts),
                    x.entry_count,
                    str(path),
                ),
            )
        session_id, prompt_uuid = folded.open_exchange or (None, None)
        identity = read.identity
        await conn.execute(
            _ADVANCE,
            *(str(path), read.end, identity.device, identity.inode, identity.head_sha256),
            *(identity.head_length, identity.mark_sha256, session_id, prompt_uuid),
        )
