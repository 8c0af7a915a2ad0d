-- greg-store schema 11, SQLite flavour: the lease on each repository's lane (SPEC §11,
-- replicas). One row per repository key (lower case, as everywhere): the replica that holds it
-- (`<host>:<pid>:<start ms>`), its fencing token `epoch` (bumped at every change of holder,
-- never lowered) and when it expires unless renewed (unix milliseconds). Every queue-state
-- write of a lane checks (holder, epoch) in its own transaction.
-- Keep in step with ../postgres/0011_repo_leases.sql.
CREATE TABLE repo_leases (
    repo_key   TEXT   PRIMARY KEY,
    repo       TEXT   NOT NULL,
    holder     TEXT   NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX repo_leases_holder ON repo_leases (holder);
CREATE INDEX deliveries_pending_repo ON deliveries (repo_key, seq) WHERE state = 'pending';
