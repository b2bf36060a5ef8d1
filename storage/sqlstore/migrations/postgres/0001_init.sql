-- Timestamps are TIMESTAMPTZ, written in UTC with microsecond precision.
-- Lists are JSON arrays in text columns, as in SQLite.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE, -- lower-case
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE clients (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT REFERENCES users (id) ON DELETE CASCADE, -- NULL when created from the CLI
    name          TEXT NOT NULL,
    secret_hash   BYTEA, -- NULL for public clients
    public        BOOLEAN NOT NULL,
    redirect_uris TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    grant_types   TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX clients_owner_id ON clients (owner_id, created_at);
CREATE INDEX clients_created_at ON clients (created_at);

CREATE TABLE grants (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Serves the cascade when a client is deleted.
CREATE INDEX grants_client_id ON grants (client_id);

CREATE TABLE tokens (
    kind             TEXT NOT NULL,
    signature        TEXT NOT NULL,
    request_id       TEXT NOT NULL,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject          TEXT NOT NULL, -- user id; '' for client credentials
    active           BOOLEAN NOT NULL,
    access_signature TEXT NOT NULL,
    requested_at     TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    data             BYTEA NOT NULL,
    PRIMARY KEY (kind, signature)
);

CREATE INDEX tokens_request_id ON tokens (request_id);
-- Serves RevokeGrant and the cascade when a client is deleted.
CREATE INDEX tokens_client_id_subject ON tokens (client_id, subject);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

-- Byte order, as in SQLite and Go, whatever the database's collation:
-- ListBooks pages through ids with id > ?.
CREATE TABLE books (
    id         TEXT COLLATE "C" PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    author     TEXT NOT NULL,
    year       INTEGER,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX books_user_id_id ON books (user_id, id);

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BYTEA NOT NULL, -- PKCS#8 DER
    created_at  TIMESTAMPTZ NOT NULL
);
