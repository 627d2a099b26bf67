-- mnemo schema v5: each source-loss event carries its own id. Events the database could not take yet
-- wait in a journal on the importer's disk; after a crash the journal may hold an event that was
-- already recorded, and the id makes recording it again a no-op. Rows from before have none.
ALTER TABLE mnemo.source_losses ADD COLUMN event_id uuid;
CREATE UNIQUE INDEX source_losses_event ON mnemo.source_losses (event_id);
