-- users.book_changes counts the writes to the user's books. Each instance
-- keeps the book pages it has served in memory, tagged with the count it
-- read first, and serves one again only while the count read now is the
-- same: one integer on one row instead of the page's rows. The triggers
-- fire on every path, any process, the CLI and the shell included; a
-- deleted user takes the count along, and a missing count caches nothing.
ALTER TABLE users ADD COLUMN book_changes INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER books_inserted AFTER INSERT ON books
BEGIN
    UPDATE users SET book_changes = book_changes + 1 WHERE id = NEW.user_id;
END;

-- The API never moves a book to another owner; the shell might.
CREATE TRIGGER books_updated AFTER UPDATE ON books
BEGIN
    UPDATE users SET book_changes = book_changes + 1 WHERE id IN (OLD.user_id, NEW.user_id);
END;

CREATE TRIGGER books_deleted AFTER DELETE ON books
BEGIN
    UPDATE users SET book_changes = book_changes + 1 WHERE id = OLD.user_id;
END;
