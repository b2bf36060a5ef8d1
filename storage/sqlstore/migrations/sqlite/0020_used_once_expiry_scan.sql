-- Every DPoP proof and client assertion inserts a used_once row, and the
-- index on expires_at cost each insert a page of its own in the WAL. The
-- cleanup finds the expired rows without it: SQLite scans the table in
-- rowid order, which is the order of insertion and so close to the order
-- of expiry, and a deleted row is gone from the b-tree at once.
DROP INDEX used_once_expires_at;
