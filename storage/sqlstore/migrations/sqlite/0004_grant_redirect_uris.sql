-- The registered redirect URIs a user was shown when allowing a client, as
-- a JSON array: a remembered consent answers silently only for these, so a
-- redirect URI the owner adds later asks the user again. Grants given
-- before this column existed record none and ask once more.
ALTER TABLE grants ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
