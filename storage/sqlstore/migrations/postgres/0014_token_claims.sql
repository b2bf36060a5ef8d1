-- What a resource needs of an access token, kept beside data so that
-- checking the token reads a few columns rather than decoding the stored
-- request. has_claims is false on rows written before these columns
-- existed (and on rows whose claims could not be kept): they are checked
-- from data, until they expire. scopes and audience are space-separated,
-- as no scope or resource URI contains a space.

ALTER TABLE tokens ADD COLUMN has_claims BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tokens ADD COLUMN username TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN audience TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
