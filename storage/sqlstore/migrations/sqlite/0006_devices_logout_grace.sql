-- Device authorization grants (RFC 8628), post-logout redirect URIs (OpenID
-- Connect RP-Initiated Logout) and the refresh-token grace window.

ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';

-- A device code is kept by its HMAC signature and its user code by a keyed
-- digest, like every other token: the table holds nothing a reader could
-- redeem. status is pending, approved, denied or used.
CREATE TABLE device_codes (
    signature      TEXT PRIMARY KEY,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    status         TEXT NOT NULL,
    subject        TEXT NOT NULL, -- the user who decided; '' while pending
    interval_ms    INTEGER NOT NULL,
    last_polled_at INTEGER, -- NULL until the device first polls
    requested_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    data           BLOB NOT NULL
);

CREATE INDEX device_codes_expires_at ON device_codes (expires_at);

-- One row per rotated refresh token while its grace window lasts: the
-- answer it got, sealed with a key derived from the refresh token itself,
-- so the row answers only whoever presents that token again.
CREATE TABLE refresh_grace (
    signature  TEXT PRIMARY KEY, -- of the rotated refresh token
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    request_id TEXT NOT NULL,
    rotated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    sealed     BLOB -- NULL until the answer is written
);

CREATE INDEX refresh_grace_expires_at ON refresh_grace (expires_at);
CREATE INDEX refresh_grace_request_id ON refresh_grace (request_id);
