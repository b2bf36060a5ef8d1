-- Passkeys (WebAuthn credentials). credential_id is the authenticator's
-- id, unique across users: a sign-in finds its user from it. sign_count
-- only moves forward (a count that goes back means a cloned key);
-- backup_eligible never changes for a credential.
CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    credential_id   BYTEA NOT NULL UNIQUE,
    public_key      BYTEA NOT NULL, -- COSE_Key
    sign_count      BIGINT NOT NULL DEFAULT 0,
    aaguid          BYTEA NOT NULL,
    transports      TEXT NOT NULL, -- JSON list
    backup_eligible BOOLEAN NOT NULL DEFAULT false,
    backup_state    BOOLEAN NOT NULL DEFAULT false,
    created_at      TIMESTAMPTZ NOT NULL,
    last_used_at    TIMESTAMPTZ
);

CREATE INDEX passkeys_user_id ON passkeys (user_id, created_at);

-- Ceremonies begun and not finished, keyed by the SHA-256 of the
-- challenge. binding ties a row to the browser that began it (a digest of
-- its session or pre-login cookie); finishing deletes the row with a
-- conditional DELETE, so a replay or a racing second use finds nothing.
CREATE TABLE webauthn_challenges (
    challenge_hash TEXT PRIMARY KEY,
    purpose        TEXT NOT NULL,
    binding        TEXT NOT NULL,
    user_id        TEXT NOT NULL, -- '' for a sign-in
    data           BYTEA NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX webauthn_challenges_expires_at ON webauthn_challenges (expires_at);
