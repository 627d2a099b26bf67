-- Blocks are compressed by the importer (zstd, in a worker thread beside the parse) instead of by the
-- server: PostgreSQL's pglz, all an embedded server offers, spent about as much CPU on the blocks as
-- on the entries themselves and kept them larger. codec says how a block's body is stored; blocks
-- written before this migration are 'identity' (the server still compresses those transparently).
-- EXTERNAL: the server stores the already-compressed bodies out of line without trying again.

ALTER TABLE mnemo.blocks ADD COLUMN codec text NOT NULL DEFAULT 'identity'
    CHECK (codec IN ('identity', 'zstd'));
ALTER TABLE mnemo.blocks ALTER COLUMN body SET STORAGE EXTERNAL;
