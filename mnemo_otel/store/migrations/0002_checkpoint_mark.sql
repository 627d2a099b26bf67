-- mnemo schema v2: a digest of the bytes just before each checkpoint. A file cut short and grown back
-- past its old checkpoint keeps its inode, its head and a large enough size; only this tells.
ALTER TABLE mnemo.files ADD COLUMN mark_sha256 text;
