//! greg-store: greg's persistence on sqlx — SQLite by default, PostgreSQL by URL.
//!
//! # What it keeps
//! - **deliveries**, the durable inbox: every accepted webhook and build notification is
//!   written before the HTTP 202, and stays `pending` until the engine finishes it, so a
//!   restart resumes where greg stopped. `(source, delivery_id)` is unique: a repeated
//!   delivery is reported as [`Inserted::Duplicate`] and processed once.
//! - **builds**, keyed by `(repo, sha, context)`: at most one *active* build (pending, queued
//!   or running) per key, enforced by a partial unique index so that concurrent inserts
//!   cannot both win; a finished build never becomes active again.
//! - **approvals** from "@greg lgtm", bound to the head approved; **required reviewers** from
//!   "@greg review"; the **commit statuses** greg has set.
//! - the **merge queue**: one [`QueueEntry`] per "@greg please" or "@greg try", at most one
//!   *active* entry (waiting, staging, building or landing) per `(repo, pr, kind)`, enforced
//!   by the `queue_one_active` partial unique index; a finished entry (landed, failed,
//!   cancelled) never becomes active again. The store keeps the entries; the order and the
//!   transitions are decided by the engine's pure queue state machine. Plus **tree
//!   closures** ("@greg treeclosed=N"), one per `(repo, target)`.
//! - **CI reports** (`greg report`, SPEC §8): every job result in arrival order per commit
//!   ([`StoredReport`], opaque JSON), the **metadata files** they carry, one per
//!   `(repo, sha, file)` (a later file replaces the earlier), and one **report comment** row
//!   per pull request ([`ReportCommentRow`]): how many reports it received (`wanted`), how
//!   many the comment shows (`done`), the comment id and body hash, and the **lease** on
//!   rendering it with its fencing token.
//! - the **title and author** of each pull request greg has seen ([`PullRequestTitle`]), one
//!   row per `(repo, number)`, for the queue and pull-request pages.
//!
//! # Design
//! - One concrete [`Store`], no trait (STYLE.md: the store has one implementation with two
//!   backends). It holds an enum of native pools, and every query is written once: both
//!   SQLite and PostgreSQL accept `$1` placeholders, `ON CONFLICT`, `RETURNING` and partial
//!   indexes. The one exception is the batch insert of deliveries, the webhook hot path:
//!   SQLite takes the whole batch as one JSON array in one statement (`json_each`: sqlx hands
//!   every SQLite statement to the connection's worker thread, so a statement per row cost a
//!   thread hand-off per row), PostgreSQL `INSERT ... SELECT FROM
//!   UNNEST(...)` statements of at most 12 KiB each (a few round trips per batch; the limit
//!   works around sqlx 0.9.0 no longer setting TCP_NODELAY, see `deliveries.rs`).
//! - Migrations are embedded (`migrations/sqlite`, `migrations/postgres`: the same schema,
//!   differing only in integer and identity types) and run by [`Store::connect`].
//! - SQLite runs in WAL mode with `synchronous=NORMAL` (a commit survives a crash of greg,
//!   not necessarily of the machine), `busy_timeout` 5 s and foreign keys on. Writes go
//!   through a pool of exactly one connection, so writers queue in the pool rather than
//!   spinning in SQLite's busy handler; reads use a separate pool of read-only connections,
//!   which WAL lets run beside the writer. `sqlite::memory:` uses a single connection.
//! - A SQLite file's checkpoints run on a connection of their own, every 250 ms
//!   (`store.rs`, `Checkpointer`: `PRAGMA wal_checkpoint(PASSIVE)`, `TRUNCATE` at close); the
//!   writer's automatic checkpoint only fires at 64 MiB of log (a backstop), since it runs
//!   inside the commit that crosses the limit and every webhook waiting on that commit waits
//!   for its fsyncs. Under ordinary loads the log starts over after every checkpoint; under
//!   sustained heavy writes a passive checkpoint never catches up, and the log starts over at
//!   the backstop. The file is cut back to 64 MiB when it does (`journal_size_limit`).
//! - Times are unix milliseconds passed in by the caller: the store never reads the clock.
//! - Ids are `u64` in greg-core and BIGINT here; the conversions are checked both ways.
//!
//! - The report-comment lease (details in `reports.rs`). Properties: at most one renderer
//!   per pull request across processes (taking it is one atomic `UPDATE ... WHERE free or
//!   expired or mine ... RETURNING`); no report left unshown (a report bumps `wanted` in the
//!   transaction that stores it, a release is refused while `done < wanted`, and the sweeper
//!   lists rows behind with no live lease). Invariants: `done <= wanted`; `lease_seq` only
//!   grows, bumped at every take; every write by a holder is a compare-and-swap on
//!   `(holder, lease_seq)`, so a holder that lost its lease changes nothing. Races accepted:
//!   a fenced-out holder may have edited the comment once more for nothing, and one that
//!   outlived its lease while creating the comment may leave a second one (the hidden
//!   marker finds it again); expiry is judged on the callers' clocks.
//!
//! Architecture invariant: no SQL outside this crate, and no type of this crate's driver in
//! its public API except inside [`StoreError`].

#![warn(missing_docs)]

/// The columns of `deliveries` that `row::delivery` decodes, as a literal for `concat!`.
macro_rules! delivery_columns {
    () => {
        "seq, source, delivery_id, repo_key, event, payload, received_ms, attempts"
    };
}

/// The columns of `builds` that `row::build` decodes, as a literal for `concat!`.
macro_rules! build_columns {
    () => {
        "id, repo, pr, sha, context, builder, job, branch, target, state, queue_item, number, \
         url, created_ms, updated_ms"
    };
}

/// The active build states, as an SQL list; the same three as `BuildRunState::is_active`
/// and the `builds_one_active` index.
macro_rules! active_states {
    () => {
        "('pending', 'queued', 'running')"
    };
}

/// The columns of `queue_entries` that `row::queue_entry` decodes, as a literal for `concat!`.
macro_rules! queue_columns {
    () => {
        "id, repo, pr, kind, target, head_sha, approver, command, priority, approved_ms, state, \
         base_sha, staging_sha, build_id, attempts, reason, created_ms, updated_ms, candidate, \
         parent, batch_group, exit"
    };
}

/// The active queue states, as an SQL list; the same four as `QueueState::is_active` and the
/// `queue_one_active` index.
macro_rules! active_queue_states {
    () => {
        "('waiting', 'staging', 'building', 'landing')"
    };
}

/// `UPDATE queue_entries SET ...` applying a [`QueueChange`] bound by [`bind_queue_change!`]
/// as `$2`..`$15` (`$1` is the id); the caller adds its `WHERE` and `RETURNING`.
macro_rules! queue_change_set {
    () => {
        "UPDATE queue_entries SET state = COALESCE($2, state), \
         base_sha = COALESCE($3, CASE WHEN $9 THEN NULL ELSE base_sha END), \
         staging_sha = COALESCE($4, CASE WHEN $9 THEN NULL ELSE staging_sha END), \
         build_id = COALESCE($5, CASE WHEN $9 THEN NULL ELSE build_id END), \
         priority = COALESCE($6, priority), attempts = COALESCE($7, attempts), \
         reason = COALESCE($8, reason), updated_ms = $10, \
         finished_ms = CASE WHEN $11 THEN COALESCE(finished_ms, $10) ELSE finished_ms END, \
         candidate = COALESCE($12, CASE WHEN $9 THEN NULL ELSE candidate END), \
         parent = CASE WHEN $12 IS NOT NULL THEN $13 WHEN $9 THEN NULL ELSE parent END, \
         batch_group = COALESCE($14, batch_group), exit = COALESCE($15, exit) "
    };
}

/// Binds `$1`..`$15` of [`queue_change_set!`] on `$query`: the entry id, then the change
/// (`$reason` already checked for NUL) at `$now`.
macro_rules! bind_queue_change {
    ($query:expr, $id:expr, $change:expr, $reason:expr, $now:expr) => {
        $query
            .bind($id)
            .bind($change.state.map(|s| s.as_str()))
            .bind($change.base_sha.as_ref().map(|s| s.as_str()))
            .bind($change.staging_sha.as_ref().map(|s| s.as_str()))
            .bind($change.build_id)
            .bind($change.priority.map(i64::from))
            .bind($change.attempts.map(i64::from))
            .bind($reason)
            .bind($change.clear_staging)
            .bind($now)
            .bind($change.state.is_some_and(|s| !s.is_active()))
            .bind($change.candidate)
            .bind($change.parent)
            .bind($change.group)
            .bind($change.exit.as_ref().map($crate::model::QueueExit::to_json))
    };
}

/// Evaluates `$body` with `$pool` bound to the pool that takes writes, once per backend
/// (the body is written once and compiled for each driver).
macro_rules! with_writer {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.pools() {
            $crate::store::Pools::Sqlite { writer: $pool, .. } => $body,
            $crate::store::Pools::Postgres($pool) => $body,
        }
    };
}

/// Evaluates `$body` with `$pool` bound to the pool for reads, once per backend.
macro_rules! with_reader {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.pools() {
            $crate::store::Pools::Sqlite { reader: $pool, .. } => $body,
            $crate::store::Pools::Postgres($pool) => $body,
        }
    };
}

/// Checks the current task's fence (if any) inside transaction `$tx`; returns
/// `Err(StoreError::Fenced)` from the enclosing function when it no longer holds. Works for
/// both backends (the statement is picked from the transaction's type).
macro_rules! check_fence {
    ($tx:ident, $operation:expr) => {
        if let Some(fence) = $crate::leases::Fence::current() {
            let sql = $crate::leases::FenceSql::fence_sql(&*$tx);
            let held = sqlx::query(sql)
                .bind(&fence.repo_key)
                .bind(&fence.holder)
                .bind(fence.epoch)
                .fetch_optional(&mut *$tx)
                .await
                .map_err($crate::StoreError::db($operation))?;
            if held.is_none() {
                return Err($crate::StoreError::Fenced {
                    repo_key: fence.repo_key.clone(),
                    epoch: fence.epoch,
                });
            }
        }
    };
}

mod approvals;
mod builds;
mod deliveries;
mod effects;
mod error;
mod history;
mod leases;
mod levels;
mod model;
mod project;
mod queue;
mod reports;
mod row;
mod statuses;
mod store;
mod titles;
mod views;

pub use builds::OldHeadActivity;
pub use deliveries::{DueNotice, FailedDelivery, Redelivery};
pub use effects::{Effect, EffectOutcome, NewEffect};
pub use error::{StoreError, redact_url};
pub use leases::{ExpiredLease, Fence, LeaseGrant, RepoLease};
pub use levels::QueueLength;
pub use model::{
    BuildChange, BuildInsert, BuildRecord, BuildRunState, Delivery, DeliveryOutcome, Inserted,
    NewBuild, NewDelivery, NewQueueEntry, QueueChange, QueueEntry, QueueExit, QueueInsert,
    QueueKind, QueueMove, QueueState, ReportId, TreeClosure,
};
pub use reports::{
    LeaseRelease, NewReport, PrunedReports, ReportCommentRow, ReportLease, ReportMetadata,
    StoredReport,
};
pub use store::Store;
pub use titles::{MAX_TITLE_CHARS, PullRequestTitle};
