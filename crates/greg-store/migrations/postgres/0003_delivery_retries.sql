-- greg-store schema 3, PostgreSQL flavour: durable retries and dead letters (SPEC §11). Keep in
-- step with ../sqlite/0003_delivery_retries.sql: the same columns and indexes; only the
-- integer types differ. Times are unix milliseconds set by the caller.

-- A pending delivery whose last attempt failed for a retryable reason waits until
-- next_attempt_ms (NULL: runs as soon as a lane takes it). last_error is that failure.
ALTER TABLE deliveries ADD COLUMN next_attempt_ms BIGINT;
ALTER TABLE deliveries ADD COLUMN last_error TEXT;
-- Where the retry window starts: NULL means received_ms; a redelivery restarts it.
ALTER TABLE deliveries ADD COLUMN window_start_ms BIGINT;
-- A failed delivery that carried a pull-request command: the error kind the person is told
-- in a comment (notice), and when that comment was posted (NULL: not yet, retried).
ALTER TABLE deliveries ADD COLUMN notice TEXT;
ALTER TABLE deliveries ADD COLUMN notice_posted_ms BIGINT;

CREATE INDEX deliveries_scheduled ON deliveries (next_attempt_ms)
    WHERE state = 'pending' AND next_attempt_ms IS NOT NULL;
CREATE INDEX deliveries_failed ON deliveries (seq) WHERE state = 'failed';
