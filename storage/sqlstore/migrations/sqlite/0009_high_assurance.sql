-- High-assurance clients (PAR, DPoP, private_key_jwt). A client's
-- token_endpoint_auth_method is '' for the secret-or-none default; jwks is
-- a JSON Web Key Set ('' when none), jwks_uri where to fetch one.

ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN jwks TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN jwks_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN require_par BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN dpop_bound BOOLEAN NOT NULL DEFAULT 0;

-- Values that may be used once (DPoP proof and client assertion jti), kept
-- until they could no longer be accepted anyway; shared by every instance.
CREATE TABLE used_once (
    key        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

CREATE INDEX used_once_expires_at ON used_once (expires_at);
