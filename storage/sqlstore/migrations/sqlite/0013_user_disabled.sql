-- An operator can disable an account: it keeps its data but signs in no
-- more. NULL is an account in use; a disabled one records when.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
