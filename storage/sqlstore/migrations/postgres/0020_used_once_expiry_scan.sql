-- SQLite's used_once loses its index on expires_at in 0020. PostgreSQL
-- keeps it: its heap keeps deleted rows until VACUUM, so each cleanup
-- batch would scan again the rows the batches before it deleted, and its
-- inserts do not queue for a single writer.
SELECT 1;
