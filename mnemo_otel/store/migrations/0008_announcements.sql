-- mnemo schema v8: transcripts announced by Claude Code's hooks (`mnemo-otel hook`). Discovery only
-- sees the roots; a hook names every transcript the client writes, wherever it is. Each announced
-- file is recorded here by the daemon that read the announcement, so "announced, not archived" is a
-- question for the database alone (`witness status`), telemetry or not.

CREATE TABLE mnemo.announcements (
    host                text NOT NULL,              -- the importer that read the announcement
    path                text NOT NULL,              -- normalised as mnemo.files.path is (its key)
    session_id          text NOT NULL,
    first_event         text NOT NULL,              -- SessionStart, Stop, SessionEnd, ...
    last_event          text NOT NULL,
    first_announced_at  timestamptz NOT NULL,       -- the hook's clock
    last_announced_at   timestamptz NOT NULL,
    ended_at            timestamptz,                -- a SessionEnd, cleared by any later event
    under_root          boolean NOT NULL DEFAULT false,  -- discovery imports it; the hook only confirms
    refused             text,                       -- why it is not imported: not_jsonl, symlink, ...
    closed_at           timestamptz,                -- no longer watched: ended, idle, imported
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, path)
);
CREATE INDEX announcements_open ON mnemo.announcements (host) WHERE closed_at IS NULL;
