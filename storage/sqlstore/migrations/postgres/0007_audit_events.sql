-- Security events (package audit), append-only: rows are inserted and,
-- past --audit-retention, deleted, never changed. No foreign keys: the
-- record of a deleted user or client must outlive them.

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL,
    type        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    subject     TEXT NOT NULL, -- user id, '' when none
    client_id   TEXT NOT NULL, -- '' when none
    address     TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    detail      TEXT NOT NULL  -- JSON object of strings
);

CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_subject ON audit_events (subject, occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor, occurred_at);
CREATE INDEX audit_events_client_id ON audit_events (client_id, occurred_at);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
