-- Every DPoP proof and client assertion inserts a used_once row. Stored
-- WITHOUT ROWID and without the index on expires_at, the row is one entry
-- in one b-tree, so an insert writes one page to the WAL instead of three
-- (the rowid table, the index on key, the index on expires_at). The
-- cleanup finds the expired rows without the index: the keys are hashes,
-- so expired rows are spread evenly over the table and a batch of them is
-- never far into a scan.
CREATE TABLE used_once_keyed (
    key        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO used_once_keyed (key, expires_at) SELECT key, expires_at FROM used_once;
DROP TABLE used_once;
ALTER TABLE used_once_keyed RENAME TO used_once;
