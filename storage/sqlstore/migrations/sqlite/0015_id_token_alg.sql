-- The algorithm a client's ID tokens are signed with (OpenID Connect
-- Dynamic Client Registration §2, id_token_signed_response_alg): RS256,
-- ES256 or EdDSA; '' (every client from before) is RS256, the default
-- every relying party verifies.
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT '';
