-- How each session's user proved who they are (RFC 8176 values, space
-- separated), for the ID token's amr. Sessions from before this column
-- hold '' and were all started with a password.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';

-- An authenticator app (TOTP, RFC 6238) per user. The shared secret is
-- sealed by the accounts package under a key derived from the system
-- secret, so a copy of the table alone computes no codes. last_step is the
-- time step of the last code accepted: only a later one is, so a code
-- cannot be used twice.
CREATE TABLE totp (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed     BYTEA NOT NULL,
    last_step  BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- One-time recovery codes, kept as the SHA-256 of the code; used_at makes
-- each single-use.
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);
