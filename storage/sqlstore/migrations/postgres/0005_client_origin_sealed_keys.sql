-- How each client was registered, so the consent page can say who vouches
-- for it: 'console' (a user on /apps), 'cli' (the operator), 'dynamic'
-- (RFC 7591, by anyone), 'metadata' (a client ID metadata document). Before
-- this migration an ownerless client came from the CLI or from dynamic
-- registration, which nothing recorded: 'unknown'.
ALTER TABLE clients ADD COLUMN origin TEXT NOT NULL DEFAULT 'unknown';
UPDATE clients SET origin = 'console' WHERE owner_id IS NOT NULL;

-- Private signing keys are sealed with AES-GCM under a key derived from the
-- system secret. Rows from 0001 hold PKCS#8 DER in clear; the server seals
-- them on its next start.
ALTER TABLE signing_keys ADD COLUMN sealed BOOLEAN NOT NULL DEFAULT FALSE;

-- Requests counted per key in fixed windows (dynamic registrations per
-- client address): one row per key, so that a single upsert counts a
-- request atomically. DeleteExpired drops rows of windows over a day old.
CREATE TABLE request_counts (
    throttle_key TEXT PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL,
    requests     INTEGER NOT NULL
);

CREATE INDEX request_counts_window_start ON request_counts (window_start);
