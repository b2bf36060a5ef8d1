-- Failed sign-ins, one row each, so that every instance throttles on the
-- same figures. throttle_key identifies an account or a client address;
-- DeleteExpired drops rows older than a day.

CREATE TABLE login_failures (
    -- Lets DeleteExpired delete old rows in batches.
    id           INTEGER PRIMARY KEY,
    throttle_key TEXT NOT NULL,
    failed_at    INTEGER NOT NULL
);

CREATE INDEX login_failures_key_failed_at ON login_failures (throttle_key, failed_at);
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);
