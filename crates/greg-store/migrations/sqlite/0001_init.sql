-- greg-store schema, SQLite flavour. Keep in step with ../postgres/0001_init.sql: the same
-- tables, columns, constraints and indexes; only the integer and identity types differ.
-- Times are unix milliseconds set by the caller; the store never reads the clock.

-- The durable inbox: every accepted webhook or build notification, written before the 202.
CREATE TABLE deliveries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT    NOT NULL,
    delivery_id TEXT    NOT NULL,
    repo_key    TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    received_ms INTEGER NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    finished_ms INTEGER,
    UNIQUE (source, delivery_id)
);
CREATE INDEX deliveries_pending ON deliveries (seq) WHERE state = 'pending';
CREATE INDEX deliveries_finished ON deliveries (finished_ms) WHERE state <> 'pending';

-- Builds greg started, keyed by (repo, sha, context).
CREATE TABLE builds (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    repo       TEXT    NOT NULL,
    pr         INTEGER,
    sha        TEXT    NOT NULL,
    context    TEXT    NOT NULL,
    builder    TEXT    NOT NULL,
    job        TEXT    NOT NULL,
    branch     TEXT    NOT NULL,
    target     TEXT,
    state      TEXT    NOT NULL CHECK (state IN ('pending', 'queued', 'running', 'success', 'failure',
                                                 'aborted', 'superseded', 'timed_out', 'error')),
    queue_item INTEGER,
    number     INTEGER,
    url        TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
-- One active build per head and context: concurrent inserts cannot both win.
CREATE UNIQUE INDEX builds_one_active ON builds (repo, sha, context)
    WHERE state IN ('pending', 'queued', 'running');
CREATE INDEX builds_key ON builds (repo, sha, context, id);
CREATE INDEX builds_pr ON builds (repo, pr) WHERE state IN ('pending', 'queued', 'running');
CREATE INDEX builds_queue_item ON builds (builder, queue_item) WHERE queue_item IS NOT NULL;
CREATE INDEX builds_number ON builds (builder, job, number) WHERE number IS NOT NULL;

-- "@greg lgtm" approvals, one per person and pull request, bound to the head approved.
-- login_key is the login lower-cased (logins compare case-insensitively).
CREATE TABLE approvals (
    repo        TEXT    NOT NULL,
    pr          INTEGER NOT NULL,
    login_key   TEXT    NOT NULL,
    login       TEXT    NOT NULL,
    sha         TEXT    NOT NULL,
    approved_ms INTEGER NOT NULL,
    PRIMARY KEY (repo, pr, login_key)
);

-- Reviewers named by "@greg review @a @b".
CREATE TABLE required_reviewers (
    repo      TEXT    NOT NULL,
    pr        INTEGER NOT NULL,
    login_key TEXT    NOT NULL,
    login     TEXT    NOT NULL,
    PRIMARY KEY (repo, pr, login_key)
);

-- Commit statuses greg has set, latest per (repo, sha, context).
CREATE TABLE commit_statuses (
    repo       TEXT    NOT NULL,
    sha        TEXT    NOT NULL,
    context    TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (repo, sha, context)
);
