-- greg-store schema 4, PostgreSQL flavour: the transactional outbox. Keep in step with
-- ../sqlite/0004_effects.sql. Times are unix milliseconds set by the caller.

-- Effects a decision calls for (a comment, a commit status, deleting a staging ref, stopping a
-- build), written in the same transaction as the state change that decided them, and
-- performed afterwards by the engine's effect runner. `key` names the outcome an effect
-- belongs to ("queue:12:landed:comment"): one outcome is recorded, and so performed, once.
CREATE TABLE effects (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repo            TEXT    NOT NULL,
    key             TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_error      TEXT,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL
);
CREATE INDEX effects_due ON effects (repo, next_attempt_ms, id) WHERE state = 'pending';
