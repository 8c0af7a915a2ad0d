//! The transactional outbox: effects (comments, commit statuses, staging-ref deletions, build
//! stops) written in the same transaction as the queue-state change that decided them, then
//! performed once by the engine's effect runner.
//!
//! Design note.
//! - Properties: a state change and the effects it calls for are committed together or not
//!   at all, so a crash can never leave an exit without its comment, nor a comment without
//!   its exit. Each effect has a `key` naming the outcome it belongs to
//!   (`queue:12:landed:comment`); a second effect with the same key is not written, so one
//!   outcome is announced once however often the step that decided it runs.
//! - The store does not know what an effect means: `kind` and `payload` are the engine's.
//! - The queue-state change is a compare-and-swap on the entry's state: two steps racing on
//!   one entry cannot both move it, and the loser writes none of its effects.

use crate::builds::repo_key;
use crate::model::{BuildChange, BuildRecord, QueueChange, QueueEntry, QueueMove, QueueState};
use crate::{Store, StoreError, row};
use greg_core::RepoName;

/// An effect to record: what to do for `repo`, under a unique outcome `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEffect {
    /// The repository whose lane performs it.
    pub repo: RepoName,
    /// Unique name of the outcome it belongs to; an effect whose key exists is not written.
    pub key: String,
    /// The engine's name for the effect (`comment`, `status`, ...), for logs and listings.
    pub kind: String,
    /// The engine's description of the effect, as JSON.
    pub payload: String,
}

/// A recorded effect, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// Outbox id: recording order.
    pub id: i64,
    /// As recorded: [`NewEffect::repo`].
    pub repo: RepoName,
    /// As recorded: [`NewEffect::key`].
    pub key: String,
    /// As recorded: [`NewEffect::kind`].
    pub kind: String,
    /// As recorded: [`NewEffect::payload`].
    pub payload: String,
    /// `pending`, `done` or `dead`.
    pub state: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not performed before this time (unix milliseconds).
    pub next_attempt_ms: i64,
    /// The error of the last failed attempt, if any.
    pub last_error: Option<String>,
    /// When it was recorded (unix milliseconds).
    pub created_ms: i64,
}

/// How an attempt to perform an effect ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectOutcome {
    /// Performed (or found already done); never attempted again.
    Done,
    /// Failed for a retryable reason; attempt again at `next_attempt_ms`.
    Retry {
        /// Unix milliseconds.
        next_attempt_ms: i64,
        /// What failed (no secrets: the engine's error text).
        error: String,
    },
    /// Failed for good, or retried past the retry window: kept for the operator, never
    /// attempted again.
    Dead {
        /// What failed.
        error: String,
    },
}

/// The columns of `effects` that [`decode`] reads, as a literal for `concat!`.
macro_rules! effect_columns {
    () => {
        "id, repo, key, kind, payload, state, attempts, next_attempt_ms, last_error, created_ms"
    };
}

fn decode(r: &impl row::Cols) -> Result<Effect, StoreError> {
    const T: &str = "effects";
    Ok(Effect {
        id: r.int(T, "id")?,
        repo: row::repo(T, &r.text(T, "repo")?)?,
        key: r.text(T, "key")?,
        kind: r.text(T, "kind")?,
        payload: r.text(T, "payload")?,
        state: r.text(T, "state")?,
        attempts: u32::try_from(r.int(T, "attempts")?).map_err(|_| StoreError::Corrupt {
            table: T,
            column: "attempts",
        })?,
        next_attempt_ms: r.int(T, "next_attempt_ms")?,
        last_error: r.opt_text(T, "last_error")?,
        created_ms: r.int(T, "created_ms")?,
    })
}

const INSERT_EFFECT: &str = "INSERT INTO effects (repo, key, kind, payload, state, attempts, \
     next_attempt_ms, created_ms, updated_ms) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5) \
     ON CONFLICT (key) DO NOTHING";

/// Inserts the checked effects in transaction `$tx` (skipping keys that exist) and evaluates
/// to how many were new; written once, compiled for each backend inside `with_writer!`.
macro_rules! insert_effects {
    ($tx:ident, $checked:expr, $now:expr, $db:expr) => {{
        let mut new = 0usize;
        for (repo, key, kind, payload) in &$checked {
            let done = sqlx::query(INSERT_EFFECT)
                .bind(repo)
                .bind(*key)
                .bind(*kind)
                .bind(*payload)
                .bind($now)
                .execute(&mut *$tx)
                .await
                .map_err($db)?;
            new += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        new
    }};
}

/// The texts of an effect, checked for NUL before anything is written.
fn checked(e: &NewEffect) -> Result<(String, &str, &str, &str), StoreError> {
    Ok((
        repo_key(&e.repo)?,
        row::text("effect key", &e.key)?,
        row::text("effect kind", &e.kind)?,
        row::text("effect payload", &e.payload)?,
    ))
}

impl Store {
    /// Moves queue entry `id` from state `from` by `change` and records `effects`, in one
    /// transaction, at `now_ms`. Returns the entry as stored afterwards, or `None` when the
    /// entry is no longer in state `from` (another step moved it first): then nothing is
    /// written. Fields of `change` left `None` keep their value; `clear_staging` empties
    /// `base_sha`, `staging_sha`, `build_id`, `candidate` and `parent` first. Effects whose key
    /// exists are skipped.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`] for text with NUL; [`StoreError::Database`];
    /// [`StoreError::Corrupt`].
    pub async fn transition_queue_entry(
        &self,
        id: i64,
        from: QueueState,
        change: &QueueChange,
        effects: &[NewEffect],
        now_ms: i64,
    ) -> Result<Option<QueueEntry>, StoreError> {
        let moves = [QueueMove {
            id,
            from,
            change: change.clone(),
        }];
        let moved = self
            .transition_queue_entries(&moves, effects, now_ms)
            .await?;
        Ok(moved.and_then(|m| m.into_iter().next()))
    }

    /// [`Store::transition_queue_entry`] for several entries at once (the entries of one
    /// merge-pipeline candidate, a landed chain of candidates, or an entry that leaves its
    /// candidate with the candidate's other entries going back to waiting): each move is a
    /// compare-and-swap on its entry's state, and `effects` are recorded, all in one
    /// transaction. All or nothing: when any entry is no longer in its `from` state, nothing
    /// is written and the answer is `None`; otherwise the entries as stored afterwards, in the
    /// order given.
    ///
    /// # Errors
    /// As [`Store::transition_queue_entry`].
    pub async fn transition_queue_entries(
        &self,
        moves: &[QueueMove],
        effects: &[NewEffect],
        now_ms: i64,
    ) -> Result<Option<Vec<QueueEntry>>, StoreError> {
        const UPDATE: &str = concat!(
            queue_change_set!(),
            "WHERE id = $1 AND state = $16 RETURNING ",
            queue_columns!()
        );
        let reasons = moves
            .iter()
            .map(|m| {
                m.change
                    .reason
                    .as_deref()
                    .map(|r| row::text("queue reason", r))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let checked: Vec<_> = effects.iter().map(checked).collect::<Result<_, _>>()?;
        let db = |e: sqlx::Error| StoreError::db("transition_queue_entries")(e);
        with_writer!(self, pool => {
            let mut tx = pool.begin().await.map_err(db)?;
            check_fence!(tx, "transition_queue_entries");
            let mut entries = Vec::with_capacity(moves.len());
            for (m, reason) in moves.iter().zip(&reasons) {
                let updated = bind_queue_change!(sqlx::query(UPDATE), m.id, m.change, reason, now_ms)
                    .bind(m.from.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                let Some(updated) = updated else {
                    tx.rollback().await.map_err(db)?;
                    return Ok(None);
                };
                entries.push(row::queue_entry(&updated)?);
            }
            insert_effects!(tx, checked, now_ms, db);
            tx.commit().await.map_err(db)?;
            Ok(Some(entries))
        })
    }

    /// Finishes build `id` with `change` (a finished state, its number and URL) and records
    /// `effects` (the result relayed: status, comment), in one transaction, only while the
    /// build is still active (pending, queued, running); returns the build as stored, or `None`
    /// when it had already finished (a repeated result): then nothing is written.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`]; [`StoreError::InvalidText`]; [`StoreError::Database`];
    /// [`StoreError::Corrupt`].
    pub async fn finish_build(
        &self,
        id: i64,
        change: &BuildChange,
        effects: &[NewEffect],
        now_ms: i64,
    ) -> Result<Option<BuildRecord>, StoreError> {
        const UPDATE: &str = concat!(
            "UPDATE builds SET state = COALESCE($2, state), \
             queue_item = COALESCE($3, queue_item), number = COALESCE($4, number), \
             url = COALESCE($5, url), updated_ms = $6 \
             WHERE id = $1 AND state IN ",
            active_states!(),
            " RETURNING ",
            build_columns!()
        );
        let crate::builds::Binds {
            state,
            queue_item,
            number,
            url,
        } = crate::builds::Binds::of(change)?;
        let checked: Vec<_> = effects.iter().map(checked).collect::<Result<_, _>>()?;
        let db = |e: sqlx::Error| StoreError::db("finish_build")(e);
        with_writer!(self, pool => {
            let mut tx = pool.begin().await.map_err(db)?;
            check_fence!(tx, "finish_build");
            let updated = sqlx::query(UPDATE)
                .bind(id)
                .bind(state)
                .bind(queue_item)
                .bind(number)
                .bind(url)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            let Some(updated) = updated else {
                tx.rollback().await.map_err(db)?;
                return Ok(None);
            };
            let build = row::build(&updated)?;
            insert_effects!(tx, checked, now_ms, db);
            tx.commit().await.map_err(db)?;
            Ok(Some(build))
        })
    }

    /// Records `effects` that belong to no queue-state change (a build result relayed, a
    /// build that has not started), in one transaction. Effects whose key exists are skipped.
    /// Returns how many were new.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn add_effects(
        &self,
        effects: &[NewEffect],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let checked: Vec<_> = effects.iter().map(checked).collect::<Result<_, _>>()?;
        let db = |e: sqlx::Error| StoreError::db("add_effects")(e);
        with_writer!(self, pool => {
            let mut tx = pool.begin().await.map_err(db)?;
            check_fence!(tx, "add_effects");
            let new = insert_effects!(tx, checked, now_ms, db);
            tx.commit().await.map_err(db)?;
            Ok(new)
        })
    }

    /// The pending effects of `repo` due at `now_ms`, in recording order, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn due_effects(
        &self,
        repo: &RepoName,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<Effect>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            effect_columns!(),
            " FROM effects WHERE repo = $1 AND state = 'pending' AND next_attempt_ms <= $2 \
             ORDER BY id LIMIT $3"
        );
        let repo = repo_key(repo)?;
        with_writer!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .bind(now_ms)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("due_effects"))?;
            rows.iter().map(decode).collect()
        })
    }

    /// The repositories with pending effects due at `now_ms`.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn repos_with_due_effects(&self, now_ms: i64) -> Result<Vec<RepoName>, StoreError> {
        const SQL: &str = "SELECT DISTINCT repo FROM effects \
             WHERE state = 'pending' AND next_attempt_ms <= $1";
        with_writer!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(now_ms)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("repos_with_due_effects"))?;
            rows.iter()
                .map(|r| row::repo("effects", &row::Cols::text(r, "effects", "repo")?))
                .collect()
        })
    }

    /// How many effects are pending (due or waiting for a retry), across repositories.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn pending_effects(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) AS n FROM effects WHERE state = 'pending'";
        with_writer!(self, pool => {
            let r = sqlx::query(SQL)
                .fetch_one(pool)
                .await
                .map_err(StoreError::db("pending_effects"))?;
            row::Cols::int(&r, "effects", "n")
        })
    }

    /// Every effect of `repo` in recording order, whatever its state (the JSON API, tests).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn effects(&self, repo: &RepoName) -> Result<Vec<Effect>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            effect_columns!(),
            " FROM effects WHERE repo = $1 ORDER BY id"
        );
        let repo = repo_key(repo)?;
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("effects"))?;
            rows.iter().map(decode).collect()
        })
    }

    /// Records how an attempt at effect `id` ended, at `now_ms`: done, to be retried, or dead.
    /// Each call counts one attempt.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn finish_effect(
        &self,
        id: i64,
        outcome: &EffectOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE effects SET state = $2, next_attempt_ms = $3, \
             last_error = COALESCE($4, last_error), attempts = attempts + 1, updated_ms = $5 \
             WHERE id = $1";
        let (state, next, error) = match outcome {
            EffectOutcome::Done => ("done", now_ms, None),
            EffectOutcome::Retry {
                next_attempt_ms,
                error,
            } => ("pending", *next_attempt_ms, Some(error.as_str())),
            EffectOutcome::Dead { error } => ("dead", now_ms, Some(error.as_str())),
        };
        let error = error.map(|e| row::text("effect error", e)).transpose()?;
        with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(id)
                .bind(state)
                .bind(next)
                .bind(error)
                .bind(now_ms)
                .execute(pool)
                .await
                .map_err(StoreError::db("finish_effect"))?;
            Ok(())
        })
    }
}
