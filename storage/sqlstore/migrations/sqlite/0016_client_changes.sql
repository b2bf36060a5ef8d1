-- client_changes counts the writes to clients. Every instance keeps the
-- clients it has read in memory, tagged with the count it read first, and
-- reads the count again on each lookup: one integer on one row, cheaper
-- than the client's row with its JSON lists, and it changes with every
-- write to clients from any process, the CLI and the shell included, as
-- the triggers fire on every path (cascades from a deleted user too).
CREATE TABLE client_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO client_changes (id, n) VALUES (1, 0);

CREATE TRIGGER clients_inserted AFTER INSERT ON clients
BEGIN
    UPDATE client_changes SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER clients_updated AFTER UPDATE ON clients
BEGIN
    UPDATE client_changes SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER clients_deleted AFTER DELETE ON clients
BEGIN
    UPDATE client_changes SET n = n + 1 WHERE id = 1;
END;
