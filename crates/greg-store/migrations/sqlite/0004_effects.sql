-- greg-store schema 4, SQLite flavour: the transactional outbox. Keep in step with
-- ../postgres/0004_effects.sql. Times are unix milliseconds set by the caller.

-- Effects a decision calls for (a comment, a commit status, deleting a staging ref, stopping a
-- build), written in the same transaction as the state change that decided them, and
-- performed afterwards by the engine's effect runner. `key` names the outcome an effect
-- belongs to ("queue:12:landed:comment"): one outcome is recorded, and so performed, once.
CREATE TABLE effects (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    repo            TEXT    NOT NULL,
    key             TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX effects_due ON effects (repo, next_attempt_ms, id) WHERE state = 'pending';
