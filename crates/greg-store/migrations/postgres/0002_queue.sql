-- greg-store schema 2, PostgreSQL flavour: the merge queue and tree closures. Keep in step with
-- ../sqlite/0002_queue.sql: the same tables, columns, constraints and indexes; only the
-- integer and identity types differ. Times are unix milliseconds set by the caller.

-- Merge and try requests ("@greg please", "@greg try") and test_merged test builds, from
-- request to landed, failed or cancelled. Queue order within (repo, target): priority DESC, approved_ms, id.
CREATE TABLE queue_entries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repo        TEXT    NOT NULL,
    pr          BIGINT  NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('merge', 'try', 'test')),
    target      TEXT    NOT NULL,
    head_sha    TEXT    NOT NULL,
    approver    TEXT    NOT NULL,
    command     TEXT    NOT NULL,
    priority    BIGINT  NOT NULL DEFAULT 0,
    approved_ms BIGINT  NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('waiting', 'staging', 'building', 'landing',
                                                  'landed', 'failed', 'cancelled')),
    base_sha    TEXT,
    staging_sha TEXT,
    build_id    BIGINT,
    attempts    BIGINT  NOT NULL DEFAULT 0,
    reason      TEXT,
    created_ms  BIGINT  NOT NULL,
    updated_ms  BIGINT  NOT NULL,
    -- When the entry first reached landed, failed or cancelled; NULL while active.
    finished_ms BIGINT
);
-- One active entry per pull request and kind: concurrent enqueues cannot both win.
CREATE UNIQUE INDEX queue_one_active ON queue_entries (repo, pr, kind)
    WHERE state IN ('waiting', 'staging', 'building', 'landing');
CREATE INDEX queue_order ON queue_entries (repo, target, priority DESC, approved_ms, id)
    WHERE state IN ('waiting', 'staging', 'building', 'landing');
CREATE INDEX queue_build ON queue_entries (build_id) WHERE build_id IS NOT NULL;
CREATE INDEX queue_finished ON queue_entries (repo, finished_ms) WHERE finished_ms IS NOT NULL;

-- "@greg treeclosed=N": merges below priority N into (repo, target) wait until "treeopen".
CREATE TABLE tree_closures (
    repo      TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    priority  BIGINT  NOT NULL,
    closed_by TEXT    NOT NULL,
    since_ms  BIGINT  NOT NULL,
    PRIMARY KEY (repo, target)
);
