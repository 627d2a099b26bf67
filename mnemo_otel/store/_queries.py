"""Every SQL statement the PostgreSQL sink runs. Content travels only in parameters, never in SQL text
(so the instrumentation's ``db.statement`` carries no conversation content)."""

from __future__ import annotations

from typing import Final

# The batch travels as ONE JSON array of rows, one per distinct key, already in key order:
# ``[key, type, uuid, parentUuid, sessionId, timestamp, offset, sha256 hex, raw, file, line]``, the timestamp in
# whole microseconds since the epoch (far cheaper to format than ISO text; added back as whole seconds and
# microseconds, both exact in the float arithmetic of interval multiplication, for any year), ``file`` the
# 1-based index of the row's file in the statement's arrays of paths and trace ids. The client parsed every
# line, so it sends the envelope as scalars beside the line instead of making the server copy each
# line's jsonb out once per field (half of this statement's time); each line is already JSON, so the
# payload is built by concatenation and PostgreSQL parses every line exactly once. Column arrays cost
# more on the client (the driver type-checks every element) than they save. ``line`` is the original,
# or its sanitised copy when jsonb refuses the original; ``raw`` keeps the original only in that case.
# First seen wins: of a key repeated within the batch, the client sends the first line only. Rows go
# in key order (code-point order, the same on every client): importers on several hosts that store
# the same lines (a session resumed on two machines, a synced home directory) then wait on each
# other's keys in one global order, never in a cycle, so they cannot deadlock.
_ENTRY_COLUMNS = """
    (key, entry_type, uuid, parent_uuid, session_id, ts, source_offset, line_sha256, raw, data, source_path,
     import_trace_id, source_host)"""


def _entry_rows(payload: str, paths: str, trace_ids: str, host: str, where: str = "") -> str:
    """The rows of a batch's payload parameter, for ``INSERT INTO mnemo.entries``."""
    return f"""
SELECT r.row->>0, r.row->>1, r.row->>2, r.row->>3, r.row->>4,
       'epoch'::timestamptz + ((r.row->>5)::bigint / 1000000) * interval '1 second'
           + ((r.row->>5)::bigint % 1000000) * interval '1 microsecond',
       (r.row->>6)::bigint, decode(r.row->>7, 'hex'),
       r.row->>8, r.row->10, ({paths}::text[])[(r.row->>9)::int], ({trace_ids}::text[])[(r.row->>9)::int], {host}
FROM jsonb_array_elements(convert_from({payload}::bytea, 'UTF8')::jsonb) WITH ORDINALITY AS r(row, ord)
{where}
ORDER BY r.ord
ON CONFLICT (key) DO NOTHING
RETURNING e.key"""


INSERT_ENTRIES: Final = (
    f"INSERT INTO mnemo.entries AS e {_ENTRY_COLUMNS} {_entry_rows('$1', '$2', '$3', '$4')}"
)

# A commit's first round trip, for one file's batch or several files' (a catch-up of small sessions):
# lock the files' rows (creating them on first sight; in path order, so two commits never wait on each
# other in a cycle), then, only if every checkpoint is where its batch starts, store the entries and the
# exact bytes. One statement instead of three: for many small sessions the round trips cost more than the
# rows. The entries and blocks read the locked rows, so the locks are taken before any key (the order
# that keeps importers of one file from deadlocking). On a moved checkpoint nothing is written and the
# caller rolls back. Returned, in one row: the locked files as arrays, and the keys this commit stored first.
LOCK_AND_STORE: Final = f"""
WITH locked AS (
    INSERT INTO mnemo.files AS f (path, root, host)
    SELECT p.path, p.root, $3 FROM unnest($1::text[], $2::text[]) AS p(path, root) ORDER BY p.path
    ON CONFLICT (host, path) DO UPDATE SET root = f.root
    RETURNING path, committed_offset, open_session_id, open_prompt_uuid, file_id, generation
), ready AS (
    SELECT bool_and(l.committed_offset = s.start) AS ok
    FROM locked l JOIN unnest($1::text[], $4::bigint[]) AS s(path, start) USING (path)
), blocks AS (
    INSERT INTO mnemo.blocks (file_id, generation, start_offset, end_offset, sha256, body, codec)
    SELECT l.file_id, l.generation, b.start_offset, b.end_offset, b.sha256, b.body, b.codec
    FROM unnest($7::int[], $8::bigint[], $9::bigint[], $10::bytea[], $11::bytea[], $12::text[])
         AS b(file, start_offset, end_offset, sha256, body, codec)
    JOIN locked l ON l.path = ($1::text[])[b.file]
    WHERE (SELECT ok FROM ready)
), stored AS (
    INSERT INTO mnemo.entries AS e {_ENTRY_COLUMNS}
    {_entry_rows("$5", "$1", "$6", "$3", "WHERE (SELECT ok FROM ready)")}
)
SELECT array_agg(l.path) AS paths, array_agg(l.committed_offset) AS committed_offsets,
       array_agg(l.open_session_id) AS open_session_ids, array_agg(l.open_prompt_uuid) AS open_prompt_uuids,
       array_agg(l.file_id) AS file_ids, array_agg(l.generation) AS generations,
       ARRAY(SELECT key FROM stored) AS stored_keys
FROM locked l
"""

SELECT_CHECKPOINTS: Final = """
SELECT path, committed_offset, device, inode, head_sha256, head_length, mark_sha256
FROM mnemo.files WHERE path = ANY($1::text[]) AND host = $2
"""
# Of the lines not newly stored as entries, those whose key was first stored with other bytes (a
# forked session's copies name another sessionId) are kept as copies, each distinct copy once.
# Returned: the new ones, and whether their session differs from the first copy's (a fork's history,
# folded into the fork's exchanges). Entries from before exact archiving have no digest: nothing is
# taken for a conflict with them.
INSERT_LINE_COPIES: Final = """
INSERT INTO mnemo.line_copies
    (file_id, generation, line_offset, entry_key, sha256, session_id, first_session_id, body)
SELECT $1, $2, d.line_offset, d.key, d.sha256, d.session_id, e.session_id, d.body
FROM unnest($3::bigint[], $4::text[], $5::text[], $6::bytea[], $7::bytea[])
     AS d(line_offset, key, session_id, body, sha256)
JOIN mnemo.entries e ON e.key = d.key
WHERE e.line_sha256 IS NOT NULL AND e.line_sha256 <> d.sha256
ON CONFLICT DO NOTHING
RETURNING line_offset, session_id IS DISTINCT FROM first_session_id AS other_session
"""
# A commit's last round trip: its exchanges and sessions upserted (merged across the group by the client:
# a row once per statement), the tail reports its files completed forgotten (a completed line is no longer
# quarantined), and each file's checkpoint advanced, in one statement. Empty arrays upsert nothing.
# Returned: the exchanges it created.
FINISH_BATCH: Final = """
WITH exchanged AS (
    INSERT INTO mnemo.exchanges AS x
        (session_id, prompt_uuid, prompt_text, assistant_text, entry_count, started_at, last_entry_at,
         last_entry_uuid, source_path, source_host)
    SELECT d.session_id, d.prompt_uuid, d.prompt_text, d.assistant_text, d.entry_count, d.started_at,
           d.last_entry_at, d.last_entry_uuid, ($1::text[])[d.file], $23
    FROM unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::int[], $15::timestamptz[],
                $16::timestamptz[], $17::text[], $18::int[])
         AS d(session_id, prompt_uuid, prompt_text, assistant_text, entry_count, started_at, last_entry_at,
              last_entry_uuid, file)
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
    RETURNING session_id, prompt_uuid, (xmax = 0) AS created
), sessions AS (
    INSERT INTO mnemo.sessions AS s (session_id, first_entry_at, last_entry_at, entry_count)
    SELECT * FROM unnest($19::text[], $20::timestamptz[], $21::timestamptz[], $22::bigint[])
    ON CONFLICT (session_id) DO UPDATE SET
        first_entry_at = LEAST(s.first_entry_at, EXCLUDED.first_entry_at),
        last_entry_at = GREATEST(s.last_entry_at, EXCLUDED.last_entry_at),
        entry_count = s.entry_count + EXCLUDED.entry_count,
        updated_at = now()
), completed_tails AS (
    DELETE FROM mnemo.quarantine q USING unnest($1::text[], $2::bigint[]) AS c(path, end_offset)
    WHERE q.source_host = $23 AND q.source_path = c.path AND q.error_kind = 'unterminated_tail'
      AND q.source_offset < c.end_offset
), advanced AS (
    UPDATE mnemo.files f
    SET committed_offset = c.end_offset, device = c.device, inode = c.inode, head_sha256 = c.head_sha256,
        head_length = c.head_length, mark_sha256 = c.mark_sha256, open_session_id = c.open_session_id,
        open_prompt_uuid = c.open_prompt_uuid, updated_at = now(), missing_since = NULL
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::int[], $7::text[],
                $8::text[], $9::text[])
         AS c(path, end_offset, device, inode, head_sha256, head_length, mark_sha256, open_session_id,
              open_prompt_uuid)
    WHERE f.host = $23 AND f.path = c.path
)
SELECT session_id, prompt_uuid FROM exchanged WHERE created
"""
RESET_FILE: Final = """
UPDATE mnemo.files
SET committed_offset = 0, generation = generation + 1, exact_from = 0, device = NULL, inode = NULL,
    head_sha256 = NULL,
    head_length = 0, mark_sha256 = NULL, open_session_id = NULL, open_prompt_uuid = NULL, updated_at = now()
WHERE path = $1 AND committed_offset = $2 AND host = $3
"""
MARK_MISSING: Final = """
UPDATE mnemo.files SET missing_since = now()
WHERE path = ANY($1::text[]) AND host = $2 AND missing_since IS NULL
"""
INSERT_QUARANTINE: Final = """
INSERT INTO mnemo.quarantine
    (source_path, source_offset, error_kind, detail, raw, line_length, line_sha256, import_trace_id, source_host)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (source_host, source_path, source_offset, line_sha256) DO NOTHING
"""

# A document's version is stored once; seeing it again only says when.
UPSERT_DOCUMENTS: Final = """
INSERT INTO mnemo.documents AS d (host, path, sha256, body)
SELECT $1, u.path, u.sha256, u.body FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS u(path, sha256, body)
ON CONFLICT (host, path, sha256) DO UPDATE SET last_seen_at = now()
"""
