-- mnemo schema v3: many machines, one archive. Two machines may hold different files at the same
-- absolute path, so a checkpoint is keyed by (host, path), and every row that names a source path
-- also names the host it came from.
--
-- Rows written before this migration carry the host '' until the first importer that starts on the
-- migrated database claims them (mnemo.legacy_rows, claimed once under its row lock): its own
-- checkpoints continue where they were, so nothing already imported is read again.
-- Adding a column with a constant default rewrites no table; the defaults are dropped afterwards, so
-- every new row must name its host.

-- Every host that ever imported. A host where the daemon runs is monitored: live importers export
-- the monitored, unretired hosts, and the heartbeat alert fires for each of them that stops beating.
CREATE TABLE mnemo.hosts (
    host_id         text PRIMARY KEY CHECK (host_id <> ''),
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    version         text NOT NULL DEFAULT '',
    monitored       boolean NOT NULL DEFAULT false,
    retired_at      timestamptz
);

CREATE TABLE mnemo.legacy_rows (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    claimed_by      text,
    claimed_at      timestamptz
);
INSERT INTO mnemo.legacy_rows DEFAULT VALUES;

ALTER TABLE mnemo.files ADD COLUMN host text NOT NULL DEFAULT '';
ALTER TABLE mnemo.files DROP CONSTRAINT files_pkey;
ALTER TABLE mnemo.files ADD CONSTRAINT files_pkey PRIMARY KEY (host, path);
ALTER TABLE mnemo.files ALTER COLUMN host DROP DEFAULT;

ALTER TABLE mnemo.entries ADD COLUMN source_host text NOT NULL DEFAULT '';
ALTER TABLE mnemo.entries ALTER COLUMN source_host DROP DEFAULT;

ALTER TABLE mnemo.exchanges ADD COLUMN source_host text NOT NULL DEFAULT '';
ALTER TABLE mnemo.exchanges ALTER COLUMN source_host DROP DEFAULT;

ALTER TABLE mnemo.quarantine ADD COLUMN source_host text NOT NULL DEFAULT '';
ALTER TABLE mnemo.quarantine ALTER COLUMN source_host DROP DEFAULT;
ALTER TABLE mnemo.quarantine DROP CONSTRAINT quarantine_source_path_source_offset_line_sha256_key;
ALTER TABLE mnemo.quarantine ADD CONSTRAINT quarantine_line_key
    UNIQUE (source_host, source_path, source_offset, line_sha256);
