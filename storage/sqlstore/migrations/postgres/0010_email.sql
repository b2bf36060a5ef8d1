-- An optional email address per user. Verified addresses are unique
-- whatever their case; unverified ones may repeat, so typing someone
-- else's address claims nothing.
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT false;

CREATE UNIQUE INDEX users_verified_email ON users (lower(email)) WHERE email_verified;
CREATE INDEX users_email ON users (lower(email)) WHERE email <> '';

-- Links sent by mail (address verification, password reset), keyed by the
-- SHA-256 of the token: the token itself is never stored. email is the
-- address the link was sent to, so a link stops working once the account's
-- address changes. used_at makes a link single-use.
CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);
CREATE INDEX email_tokens_user_id ON email_tokens (user_id);
