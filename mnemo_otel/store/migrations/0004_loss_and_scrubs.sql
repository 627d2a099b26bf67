-- mnemo schema v4: what the importer could not keep, and what its scrubs found.
-- source_losses: complete lines seen on disk that vanished (file deleted, cut short or replaced)
-- before they were committed. One row per event; the bytes are gone, the record of them is not.
CREATE TABLE mnemo.source_losses (
    id                  bigserial PRIMARY KEY,
    host_id             text NOT NULL,
    source_path         text NOT NULL,
    reason              text NOT NULL,
    lost_bytes          bigint NOT NULL CHECK (lost_bytes > 0),
    detected_at         timestamptz NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX source_losses_host ON mnemo.source_losses (host_id, detected_at);

-- verify_runs: one row per completed scrub of the daemon: when it last ran survives a restart.
CREATE TABLE mnemo.verify_runs (
    id                  bigserial PRIMARY KEY,
    host_id             text NOT NULL,
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL DEFAULT now(),
    files               bigint NOT NULL,
    lines               bigint NOT NULL,
    missing             bigint NOT NULL,
    repaired            bigint NOT NULL DEFAULT 0,
    trace_id            text
);
CREATE INDEX verify_runs_host ON mnemo.verify_runs (host_id, finished_at);
