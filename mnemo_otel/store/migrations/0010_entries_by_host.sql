-- mnemo schema v10: a host's stored keys, found without reading the fleet's.
--
-- A scrub checks one host's files against a snapshot of the keys the archive holds. Taking every
-- key of every host made each scrub cost the whole archive (10 M lines: seconds and hundreds of MB
-- per host per scrub). This index lets the snapshot take only the keys the host stored itself, by an
-- index-only scan; a line another host stored first is then looked up by its key, one query per
-- segment. One more B-tree per entry written: its cost on import is in BENCHMARKS.md.
CREATE INDEX entries_host_key ON mnemo.entries (source_host, key);
