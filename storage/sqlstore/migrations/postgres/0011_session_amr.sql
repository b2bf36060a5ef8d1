-- How each session's user proved who they are (RFC 8176 values, space
-- separated), for the ID token's amr. Sessions from before this column
-- hold '' and were all started with a password.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
