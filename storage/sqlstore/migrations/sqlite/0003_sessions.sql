-- Signed-in browsers. The cookie carries a random session id; only its
-- SHA-256 digest is kept, so the table signs no one in. DeleteExpired
-- drops rows past expires_at, the end of their absolute lifetime.

CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    user_agent   TEXT NOT NULL,
    address      TEXT NOT NULL
);

CREATE INDEX sessions_user_id ON sessions (user_id, created_at);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
