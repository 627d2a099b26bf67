"""Every SQL statement the PostgreSQL sink runs. Content travels only in parameters and COPY data."""

from __future__ import annotations

from typing import Final

CREATE_STAGE: Final = """
CREATE TEMPORARY TABLE IF NOT EXISTS mnemo_stage (
    ord integer, key text, entry_type text, uuid text, parent_uuid text, session_id text,
    ts timestamptz, line text, jsonb text, source_offset bigint
) ON COMMIT DELETE ROWS
"""
STAGE_COLUMNS: Final = [
    "ord",
    "key",
    "entry_type",
    "uuid",
    "parent_uuid",
    "session_id",
    "ts",
    "line",
    "jsonb",
    "source_offset",
]

# The sanitised copy (stage.jsonb) is used only when jsonb refuses the original; COALESCE evaluates
# lazily, so the original is not parsed in that case. First seen wins: rows go in file order.
INSERT_FROM_STAGE: Final = """
INSERT INTO mnemo.entries AS e
    (key, entry_type, uuid, parent_uuid, session_id, ts, data, raw, source_path, source_offset, import_trace_id)
SELECT s.key, s.entry_type, s.uuid, s.parent_uuid, s.session_id, s.ts,
       COALESCE(s.jsonb::jsonb, s.line::jsonb),
       CASE WHEN s.jsonb IS NULL THEN NULL ELSE s.line END,
       $1, s.source_offset, $2
FROM mnemo_stage s
ORDER BY s.ord
ON CONFLICT (key) DO NOTHING
RETURNING e.key
"""

SELECT_CHECKPOINT: Final = """
SELECT path, committed_offset, device, inode, head_sha256, head_length FROM mnemo.files WHERE path = $1
"""
ENSURE_FILE: Final = """
INSERT INTO mnemo.files (path, root) VALUES ($1, $2) ON CONFLICT (path) DO NOTHING
"""
LOCK_FILE: Final = """
SELECT committed_offset, open_session_id, open_prompt_uuid FROM mnemo.files WHERE path = $1 FOR UPDATE
"""
ADVANCE_CHECKPOINT: Final = """
UPDATE mnemo.files
SET committed_offset = $2, device = $3, inode = $4, head_sha256 = $5, head_length = $6,
    open_session_id = $7, open_prompt_uuid = $8, updated_at = now(), missing_since = NULL
WHERE path = $1
"""
RESET_FILE: Final = """
UPDATE mnemo.files
SET committed_offset = 0, generation = generation + 1, device = NULL, inode = NULL, head_sha256 = NULL,
    head_length = 0, open_session_id = NULL, open_prompt_uuid = NULL, updated_at = now()
WHERE path = $1 AND committed_offset = $2
"""
MARK_MISSING: Final = """
UPDATE mnemo.files SET missing_since = now() WHERE path = ANY($1::text[]) AND missing_since IS NULL
"""
TRACKED_PATHS: Final = """
SELECT path FROM mnemo.files WHERE missing_since IS NULL
"""

INSERT_QUARANTINE: Final = """
INSERT INTO mnemo.quarantine
    (source_path, source_offset, error_kind, detail, raw, line_length, line_sha256, import_trace_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (source_path, source_offset, line_sha256) DO NOTHING
"""
INSERT_TAIL_REPORT: Final = INSERT_QUARANTINE
# A tail reported as unterminated that was later completed (and imported) is no longer quarantined.
CLEAR_TAIL_REPORTS: Final = """
DELETE FROM mnemo.quarantine
WHERE source_path = $1 AND error_kind = 'unterminated_tail' AND source_offset < $2
"""

UPSERT_EXCHANGES: Final = """
INSERT INTO mnemo.exchanges AS x
    (session_id, prompt_uuid, prompt_text, assistant_text, entry_count, started_at, last_entry_at,
     last_entry_uuid, source_path)
SELECT d.session_id, d.prompt_uuid, d.prompt_text, d.assistant_text, d.entry_count, d.started_at,
       d.last_entry_at, d.last_entry_uuid, $9
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[],
            $7::timestamptz[], $8::text[])
     AS d(session_id, prompt_uuid, prompt_text, assistant_text, entry_count, started_at, last_entry_at,
          last_entry_uuid)
ON CONFLICT (session_id, prompt_uuid) DO UPDATE SET
    prompt_text = CASE WHEN x.prompt_text = '' THEN EXCLUDED.prompt_text ELSE x.prompt_text END,
    assistant_text = CASE
        WHEN EXCLUDED.assistant_text = '' THEN x.assistant_text
        WHEN x.assistant_text = '' THEN EXCLUDED.assistant_text
        ELSE x.assistant_text || E'\\n' || EXCLUDED.assistant_text END,
    entry_count = x.entry_count + EXCLUDED.entry_count,
    started_at = COALESCE(x.started_at, EXCLUDED.started_at),
    last_entry_at = GREATEST(x.last_entry_at, EXCLUDED.last_entry_at),
    last_entry_uuid = COALESCE(EXCLUDED.last_entry_uuid, x.last_entry_uuid),
    updated_at = now()
RETURNING (xmax = 0) AS created
"""
UPSERT_SESSIONS: Final = """
INSERT INTO mnemo.sessions AS s (session_id, first_entry_at, last_entry_at, entry_count)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::bigint[])
ON CONFLICT (session_id) DO UPDATE SET
    first_entry_at = LEAST(s.first_entry_at, EXCLUDED.first_entry_at),
    last_entry_at = GREATEST(s.last_entry_at, EXCLUDED.last_entry_at),
    entry_count = s.entry_count + EXCLUDED.entry_count,
    updated_at = now()
"""
