-- client_changes counts the writes to clients. Every instance keeps the
-- clients it has read in memory, tagged with the count it read first, and
-- reads the count again on each lookup: one integer on one row, cheaper
-- than the client's row with its JSON lists, and it changes with every
-- write to clients from any instance or process, psql included, as the
-- trigger fires on every path (cascades from a deleted user too). It runs
-- once per statement, so a cascade deleting many clients bumps it once.
CREATE TABLE client_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO client_changes (id, n) VALUES (1, 0);

CREATE FUNCTION gatehouse_client_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE client_changes SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_client_changed();
