-- users.book_changes counts the writes to the user's books. Each instance
-- keeps the book pages it has served in memory, tagged with the count it
-- read first, and serves one again only while the count read now is the
-- same: one integer on one row instead of the page's rows. The trigger
-- fires on every path, any instance or process, psql included; a deleted
-- user takes the count along, and a missing count caches nothing.
ALTER TABLE users ADD COLUMN book_changes BIGINT NOT NULL DEFAULT 0;

-- Per row, since the count is per owner. OLD is NULL for an insert and NEW
-- for a delete; an update may (from psql) move a book to another owner.
CREATE FUNCTION gatehouse_book_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET book_changes = book_changes + 1 WHERE id IN (OLD.user_id, NEW.user_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER books_changed AFTER INSERT OR UPDATE OR DELETE ON books
    FOR EACH ROW EXECUTE FUNCTION gatehouse_book_changed();
