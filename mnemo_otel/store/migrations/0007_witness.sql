-- mnemo schema v7: a second witness of zero loss. Claude Code's own telemetry names the transcript
-- lines it wrote (`message.uuid` on its user_prompt and assistant_response events); each such line
-- is recorded here, without content, and reconciled against the archive. A witnessed line the
-- archive still lacks after a grace period is *unarchived*: lost, or never seen by any importer.

CREATE TABLE mnemo.witnessed (
    event_id        bytea PRIMARY KEY,          -- digest of the event's identity: a re-sent export is a no-op
    host            text,                       -- NULL: the event named no host
    session_id      text NOT NULL,
    event_name      text NOT NULL,
    message_uuid    text,                       -- the line promised (its key in mnemo.entries)
    prompt_id       text,                       -- older clients: the user line's promptId instead
    event_time      timestamptz NOT NULL,       -- Claude Code's event.timestamp (the producer's clock)
    client_version  text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    archived_at     timestamptz                 -- when the line was committed to the archive
);
CREATE INDEX witnessed_pending ON mnemo.witnessed (event_time) WHERE archived_at IS NULL;

-- Every host the witness heard from, and when last: a witness that goes quiet proves nothing.
CREATE TABLE mnemo.witness_hosts (
    host            text PRIMARY KEY,           -- '' for events that named no host
    first_heard_at  timestamptz NOT NULL DEFAULT now(),
    last_heard_at   timestamptz NOT NULL DEFAULT now(),
    client_version  text
);
