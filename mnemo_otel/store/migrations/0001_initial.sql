-- mnemo schema v1: entries (the archive), quarantine, per-file checkpoints, sessions, exchanges.
CREATE SCHEMA IF NOT EXISTS mnemo;

-- One row per transcript file: the checkpoint and what identifies the file it was taken on.
CREATE TABLE mnemo.files (
    path                text PRIMARY KEY,
    root                text NOT NULL,
    device              bigint,
    inode               bigint,
    head_sha256         text,
    head_length         integer NOT NULL DEFAULT 0,
    committed_offset    bigint NOT NULL DEFAULT 0 CHECK (committed_offset >= 0),
    generation          integer NOT NULL DEFAULT 0,
    open_session_id     text,
    open_prompt_uuid    text,
    first_seen_at       timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    missing_since       timestamptz
);

-- One row per stored line. key = the line's uuid, or 'sha256:' || hex digest of the line.
-- data holds the line as jsonb; raw holds the exact original only when jsonb needed a sanitised copy.
CREATE TABLE mnemo.entries (
    key                 text PRIMARY KEY,
    entry_type          text NOT NULL,
    uuid                text,
    parent_uuid         text,
    session_id          text,
    ts                  timestamptz,
    data                jsonb NOT NULL,
    raw                 text,
    source_path         text NOT NULL,
    source_offset       bigint NOT NULL,
    imported_at         timestamptz NOT NULL DEFAULT now(),
    import_trace_id     text
);
CREATE INDEX entries_session_ts ON mnemo.entries (session_id, ts);

-- One row per line that could not be stored as an entry; raw keeps its bytes (a sample if oversize).
CREATE TABLE mnemo.quarantine (
    id                  bigserial PRIMARY KEY,
    source_path         text NOT NULL,
    source_offset       bigint NOT NULL,
    error_kind          text NOT NULL,
    detail              text NOT NULL,
    raw                 bytea NOT NULL,
    line_length         bigint NOT NULL,
    line_sha256         text NOT NULL,
    quarantined_at      timestamptz NOT NULL DEFAULT now(),
    import_trace_id     text,
    UNIQUE (source_path, source_offset, line_sha256)
);

CREATE TABLE mnemo.sessions (
    session_id          text PRIMARY KEY,
    first_entry_at      timestamptz,
    last_entry_at       timestamptz,
    entry_count         bigint NOT NULL DEFAULT 0,
    first_imported_at   timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A real user prompt and the assistant turn that follows it, up to the next real prompt.
CREATE TABLE mnemo.exchanges (
    session_id          text NOT NULL,
    prompt_uuid         text NOT NULL,
    prompt_text         text NOT NULL,
    assistant_text      text NOT NULL DEFAULT '',
    entry_count         integer NOT NULL DEFAULT 0,
    started_at          timestamptz,
    last_entry_at       timestamptz,
    last_entry_uuid     text,
    source_path         text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, prompt_uuid)
);
