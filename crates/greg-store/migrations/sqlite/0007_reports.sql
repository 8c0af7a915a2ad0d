-- greg-store schema 7, SQLite flavour: CI reports ("greg report", SPEC §8). Keep in step with
-- ../postgres/0007_reports.sql: the same tables, columns, constraints and indexes; only the
-- integer and identity types differ. Times are unix milliseconds set by the caller.

-- One row per job result received, in arrival order. `report` is the engine's JSON, opaque
-- to the store; `pr` is the pull request the report named, if any.
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    repo        TEXT    NOT NULL,
    sha         TEXT    NOT NULL,
    job         TEXT    NOT NULL,
    pr          INTEGER,
    status      TEXT    NOT NULL,
    report      TEXT    NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX reports_commit ON reports (repo, sha);
CREATE INDEX reports_received ON reports (received_ms);

-- The metadata files of reports (`--metadata-dir`, kome's $KOME_PATH), one per file name and
-- commit: a later report's file replaces the earlier one. `body` is JSON, opaque here.
CREATE TABLE report_metadata (
    repo        TEXT    NOT NULL,
    sha         TEXT    NOT NULL,
    pr          INTEGER,
    file        TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    received_ms INTEGER NOT NULL,
    UNIQUE (repo, sha, file)
);
CREATE INDEX report_metadata_pr ON report_metadata (repo, pr) WHERE pr IS NOT NULL;
CREATE INDEX report_metadata_received ON report_metadata (received_ms);

-- The report comment of each pull request and the lease on rendering it. `wanted` counts the
-- reports received for the pull request, `done` is the `wanted` last rendered: the comment is
-- behind while wanted > done. `lease_seq` is bumped at every take (the fencing token); a
-- render is recorded only by the holder with the current `lease_seq`.
CREATE TABLE report_comments (
    repo           TEXT    NOT NULL,
    pr             INTEGER NOT NULL,
    comment_id     INTEGER,
    body_hash      TEXT,
    head_sha       TEXT    NOT NULL,
    wanted         INTEGER NOT NULL,
    done           INTEGER NOT NULL,
    holder         TEXT,
    lease_seq      INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL,
    PRIMARY KEY (repo, pr)
);
CREATE INDEX report_comments_behind ON report_comments (updated_ms) WHERE wanted > done;
