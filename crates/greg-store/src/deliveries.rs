//! The durable inbox: deliveries written before the 202, read back until finished.

use crate::model::{Delivery, DeliveryOutcome, Inserted, NewDelivery};
use crate::store::Pools;
use crate::{Store, StoreError, row};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use std::collections::HashMap;

impl Store {
    /// Writes a batch of accepted deliveries in ONE transaction (group commit), in order.
    ///
    /// Returns one [`Inserted`] per input, in input order: `New(seq)` with the inbox sequence
    /// number, or `Duplicate` when `(source, delivery_id)` is already stored — by an earlier
    /// call or earlier in this batch. A duplicate is not an error and changes nothing.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`] when a field contains NUL (check each delivery first
    /// with [`NewDelivery::validate`] to keep one bad delivery from failing the batch);
    /// [`StoreError::Database`] when the transaction fails, in which case nothing of the
    /// batch is stored.
    pub async fn insert_deliveries(
        &self,
        batch: &[NewDelivery],
    ) -> Result<Vec<Inserted>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        for delivery in batch {
            delivery.validate()?;
        }
        match self.pools() {
            Pools::Sqlite { writer, .. } => insert_sqlite(writer, batch).await,
            Pools::Postgres(pool) => insert_postgres(pool, batch).await,
        }
        .map_err(StoreError::db("insert_deliveries"))
    }

    /// Up to `limit` deliveries not yet finished and not waiting for a scheduled retry
    /// (see [`schedule_retry`](Self::schedule_retry)), oldest (lowest `seq`) first. A
    /// negative `limit` is taken as 0.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] for an undecodable row.
    pub async fn pending_deliveries(&self, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE state = 'pending' AND next_attempt_ms IS NULL ORDER BY seq LIMIT $1"
        );
        let limit = limit.max(0);
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("pending_deliveries"))?;
            rows.iter().map(row::delivery).collect()
        })
    }

    /// How many deliveries are pending (not yet processed, including those waiting for a
    /// scheduled retry): the inbox's backlog, for `/metrics`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn pending_delivery_count(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending'";
        with_reader!(self, pool => {
            let r = sqlx::query(SQL)
                .fetch_one(pool)
                .await
                .map_err(StoreError::db("pending_delivery_count"))?;
            row::Cols::int(&r, "deliveries", "n")
        })
    }

    /// Counts one processing attempt of delivery `seq` and returns the new count. Call it
    /// before processing: a delivery that makes greg fail on every restart then shows a
    /// growing [`Delivery::attempts`].
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown `seq`; [`StoreError::Database`].
    pub async fn start_delivery(&self, seq: i64) -> Result<i64, StoreError> {
        const SQL: &str =
            "UPDATE deliveries SET attempts = attempts + 1 WHERE seq = $1 RETURNING attempts";
        let attempts: Option<i64> = with_writer!(self, pool => {
            sqlx::query_scalar(SQL)
                .bind(seq)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("start_delivery"))?
        });
        attempts.ok_or(StoreError::NotFound {
            what: "delivery",
            id: seq,
        })
    }

    /// Marks delivery `seq` finished (`done`, or `failed` with its error kept), at `now_ms`
    /// (unix milliseconds). It is no longer pending. Finishing again overwrites the outcome.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown `seq`; [`StoreError::InvalidText`] for an
    /// error text with NUL; [`StoreError::Database`].
    pub async fn finish_delivery(
        &self,
        seq: i64,
        outcome: DeliveryOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.finish_deliveries(&[(seq, outcome)], now_ms).await
    }

    /// [`finish_delivery`](Self::finish_delivery) for many deliveries in one transaction.
    ///
    /// # Errors
    /// As `finish_delivery`; on any error nothing is finished.
    pub async fn finish_deliveries(
        &self,
        finished: &[(i64, DeliveryOutcome)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE deliveries SET state = $2, error = $3, finished_ms = $4 WHERE seq = $1";
        let mut rows = Vec::with_capacity(finished.len());
        for (seq, outcome) in finished {
            let (state, error) = match outcome {
                DeliveryOutcome::Done => ("done", None),
                DeliveryOutcome::Failed { error } => {
                    ("failed", Some(row::text("delivery error", error)?))
                }
            };
            rows.push((*seq, state, error));
        }
        if let [(seq, state, error)] = rows[..] {
            // One delivery (the common case): one autocommitted statement, no BEGIN/COMMIT.
            let done = with_writer!(self, pool => {
                sqlx::query(SQL)
                    .bind(seq)
                    .bind(state)
                    .bind(error)
                    .bind(now_ms)
                    .execute(pool)
                    .await
                    .map_err(StoreError::db("finish_delivery"))?
                    .rows_affected()
            });
            return match done {
                0 => Err(StoreError::NotFound {
                    what: "delivery",
                    id: seq,
                }),
                _ => Ok(()),
            };
        }
        if rows.is_empty() {
            return Ok(());
        }
        with_writer!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::db("finish_delivery"))?;
            for (seq, state, error) in &rows {
                let done = sqlx::query(SQL)
                    .bind(*seq)
                    .bind(*state)
                    .bind(*error)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("finish_delivery"))?;
                if done.rows_affected() == 0 {
                    // Dropping the transaction rolls it back.
                    return Err(StoreError::NotFound { what: "delivery", id: *seq });
                }
            }
            tx.commit().await.map_err(StoreError::db("finish_delivery"))?;
        });
        Ok(())
    }

    /// Marks deliveries `seqs` done at `now_ms` in one statement (the engine's batched
    /// completion). Sequence numbers that are unknown or no longer pending are skipped.
    /// Returns how many were marked.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn finish_done(&self, seqs: &[i64], now_ms: i64) -> Result<u64, StoreError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let db = StoreError::db("finish_done");
        let marked = match self.pools() {
            Pools::Sqlite { writer, .. } => {
                let list = sqlite_seq_list(seqs);
                sqlx::query(
                    "UPDATE deliveries SET state = 'done', error = NULL, finished_ms = $1 \
                     WHERE state = 'pending' AND seq IN (SELECT value FROM json_each($2))",
                )
                .bind(now_ms)
                .bind(list)
                .execute(writer)
                .await
                .map_err(db)?
                .rows_affected()
            }
            Pools::Postgres(pool) => sqlx::query(
                "UPDATE deliveries SET state = 'done', error = NULL, finished_ms = $1 \
                 WHERE state = 'pending' AND seq = ANY($2)",
            )
            .bind(now_ms)
            .bind(seqs)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected(),
        };
        Ok(marked)
    }

    /// Deletes processed (`done`) deliveries whose `finished_ms` is before `before_ms` (unix
    /// milliseconds) and returns how many. Pending and failed deliveries (dead letters, kept
    /// until redelivered or deleted by hand) are never deleted. A delivery id seen again after
    /// its row is pruned is stored and processed as new.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn prune_deliveries(&self, before_ms: i64) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM deliveries WHERE state = 'done' AND finished_ms < $1";
        let deleted = with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(before_ms)
                .execute(pool)
                .await
                .map_err(StoreError::db("prune_deliveries"))?
                .rows_affected()
        });
        Ok(deleted)
    }
}

/// A delivery that failed for good (a dead letter), as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedDelivery {
    /// Inbox sequence number (what `greg redeliver` names).
    pub seq: i64,
    /// As written: [`NewDelivery::source`].
    pub source: String,
    /// As written: [`NewDelivery::delivery_id`].
    pub delivery_id: String,
    /// As written: [`NewDelivery::repo_key`].
    pub repo_key: String,
    /// As written: [`NewDelivery::event`].
    pub event: String,
    /// When greg accepted it, unix milliseconds.
    pub received_ms: i64,
    /// When greg gave up on it, unix milliseconds.
    pub failed_ms: Option<i64>,
    /// Processing attempts counted so far.
    pub attempts: i64,
    /// Why it failed, in one line, without secrets.
    pub error: String,
}

/// What [`Store::redeliver`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redelivery {
    /// The failed delivery is pending again (its retry window restarted); run it.
    Reset(Delivery),
    /// No delivery has this sequence number.
    NotFound,
    /// The delivery exists but has not failed (it is pending or done).
    NotFailed,
}

/// A failed delivery whose person is still to be told (see [`Store::dead_letter`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNotice {
    /// Inbox sequence number.
    pub seq: i64,
    /// As written: [`NewDelivery::source`].
    pub source: String,
    /// As written: [`NewDelivery::payload`].
    pub payload: String,
    /// The error kind to tell, as given to [`Store::dead_letter`].
    pub notice: String,
}

impl Store {
    /// Records `tries` failed attempts of pending delivery `seq` and schedules its next
    /// attempt at `next_attempt_ms` (unix milliseconds), keeping `error` as its last error.
    /// Until then [`pending_deliveries`](Self::pending_deliveries) skips it and
    /// [`claim_due_deliveries`](Self::claim_due_deliveries) hands it out when due, also after
    /// a restart.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when `seq` is not a pending delivery;
    /// [`StoreError::InvalidText`] for an error with NUL; [`StoreError::Database`].
    pub async fn schedule_retry(
        &self,
        seq: i64,
        tries: i64,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE deliveries SET attempts = attempts + $2, next_attempt_ms = $3, \
             last_error = $4 WHERE seq = $1 AND state = 'pending'";
        let error = row::text("delivery error", error)?;
        let done = with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(seq)
                .bind(tries)
                .bind(next_attempt_ms)
                .bind(error)
                .execute(pool)
                .await
                .map_err(StoreError::db("schedule_retry"))?
                .rows_affected()
        });
        match done {
            0 => Err(StoreError::NotFound {
                what: "pending delivery",
                id: seq,
            }),
            _ => Ok(()),
        }
    }

    /// Takes up to `limit` scheduled deliveries whose next attempt is due at `now_ms`, oldest
    /// first, and clears their schedule in the same statement, so each is handed out once
    /// (a crash before it runs leaves it pending, and the next start runs it).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] for an undecodable row.
    pub async fn claim_due_deliveries(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        const SQL: &str = concat!(
            "UPDATE deliveries SET next_attempt_ms = NULL WHERE seq IN (SELECT seq FROM deliveries \
             WHERE state = 'pending' AND next_attempt_ms <= $1 ORDER BY seq LIMIT $2) RETURNING ",
            delivery_columns!()
        );
        let mut due = with_writer!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(now_ms)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("claim_due_deliveries"))?;
            rows.iter().map(row::delivery).collect::<Result<Vec<_>, _>>()?
        });
        due.sort_by_key(|d| d.seq);
        Ok(due)
    }

    /// Where the retry window of delivery `seq` starts: when it was received, or when it was
    /// last redelivered. `None` for an unknown `seq`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn retry_window_start(&self, seq: i64) -> Result<Option<i64>, StoreError> {
        const SQL: &str =
            "SELECT COALESCE(window_start_ms, received_ms) FROM deliveries WHERE seq = $1";
        with_reader!(self, pool => {
            sqlx::query_scalar::<_, i64>(SQL)
                .bind(seq)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("retry_window_start"))
        })
    }

    /// Gives up on delivery `seq` after `tries` more failed attempts: it becomes `failed`
    /// (a dead letter) with `error` kept, at `now_ms`. `notice`, for a delivery that carried
    /// a person's command, is the error kind to tell them; it stays due (see
    /// [`due_notices`](Self::due_notices)) until [`notice_posted`](Self::notice_posted).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown `seq`; [`StoreError::InvalidText`];
    /// [`StoreError::Database`].
    pub async fn dead_letter(
        &self,
        seq: i64,
        tries: i64,
        error: &str,
        notice: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE deliveries SET state = 'failed', attempts = attempts + $2, \
             error = $3, last_error = $3, next_attempt_ms = NULL, finished_ms = $4, \
             notice = $5, notice_posted_ms = NULL WHERE seq = $1";
        let error = row::text("delivery error", error)?;
        let notice = notice
            .map(|n| row::text("delivery notice", n))
            .transpose()?;
        let done = with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(seq)
                .bind(tries)
                .bind(error)
                .bind(now_ms)
                .bind(notice)
                .execute(pool)
                .await
                .map_err(StoreError::db("dead_letter"))?
                .rows_affected()
        });
        match done {
            0 => Err(StoreError::NotFound {
                what: "delivery",
                id: seq,
            }),
            _ => Ok(()),
        }
    }

    /// Up to `limit` failed deliveries (dead letters), oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] for an undecodable row.
    pub async fn failed_deliveries(&self, limit: i64) -> Result<Vec<FailedDelivery>, StoreError> {
        const SQL: &str = "SELECT seq, source, delivery_id, repo_key, event, received_ms, \
             finished_ms, attempts, error FROM deliveries WHERE state = 'failed' \
             ORDER BY seq LIMIT $1";
        const T: &str = "deliveries";
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("failed_deliveries"))?;
            rows.iter()
                .map(|r| {
                    use row::Cols as _;
                    Ok(FailedDelivery {
                        seq: r.int(T, "seq")?,
                        source: r.text(T, "source")?,
                        delivery_id: r.text(T, "delivery_id")?,
                        repo_key: r.text(T, "repo_key")?,
                        event: r.text(T, "event")?,
                        received_ms: r.int(T, "received_ms")?,
                        failed_ms: r.opt_int(T, "finished_ms")?,
                        attempts: r.int(T, "attempts")?,
                        error: r.opt_text(T, "error")?.unwrap_or_default(),
                    })
                })
                .collect()
        })
    }

    /// Makes failed delivery `seq` pending again, to run at once: its error, schedule and
    /// notice are cleared and its retry window restarts at `now_ms` (its attempts are kept).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] for an undecodable row.
    pub async fn redeliver(&self, seq: i64, now_ms: i64) -> Result<Redelivery, StoreError> {
        const SQL: &str = concat!(
            "UPDATE deliveries SET state = 'pending', error = NULL, finished_ms = NULL, \
             next_attempt_ms = NULL, window_start_ms = $2, notice = NULL, \
             notice_posted_ms = NULL WHERE seq = $1 AND state = 'failed' RETURNING ",
            delivery_columns!()
        );
        const EXISTS: &str = "SELECT seq FROM deliveries WHERE seq = $1";
        with_writer!(self, pool => {
            let reset = sqlx::query(SQL)
                .bind(seq)
                .bind(now_ms)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("redeliver"))?;
            if let Some(r) = reset {
                return Ok(Redelivery::Reset(row::delivery(&r)?));
            }
            let exists: Option<i64> = sqlx::query_scalar(EXISTS)
                .bind(seq)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("redeliver"))?;
            Ok(if exists.is_some() { Redelivery::NotFailed } else { Redelivery::NotFound })
        })
    }

    /// Whether the inbox holds delivery `delivery_id` of `source`, whole or split into
    /// events (`<id>#<n>`), in any state.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn has_delivery(&self, source: &str, delivery_id: &str) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT seq FROM deliveries WHERE source = $1 AND (delivery_id = $2 \
             OR substr(delivery_id, 1, length(CAST($2 AS TEXT)) + 1) = CAST($2 AS TEXT) || '#') LIMIT 1";
        let source = row::text("delivery source", source)?;
        let delivery_id = row::text("delivery id", delivery_id)?;
        let found: Option<i64> = with_reader!(self, pool => {
            sqlx::query_scalar(SQL)
                .bind(source)
                .bind(delivery_id)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("has_delivery"))?
        });
        Ok(found.is_some())
    }

    /// Failed deliveries of repository `repo_key` whose notice is not posted yet, oldest
    /// first.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] for an undecodable row.
    pub async fn due_notices(&self, repo_key: &str) -> Result<Vec<DueNotice>, StoreError> {
        const SQL: &str = "SELECT seq, source, payload, notice FROM deliveries \
             WHERE state = 'failed' AND repo_key = $1 AND notice IS NOT NULL \
             AND notice_posted_ms IS NULL ORDER BY seq";
        const T: &str = "deliveries";
        let repo_key = row::text("delivery repo_key", repo_key)?;
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(repo_key)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("due_notices"))?;
            rows.iter()
                .map(|r| {
                    use row::Cols as _;
                    Ok(DueNotice {
                        seq: r.int(T, "seq")?,
                        source: r.text(T, "source")?,
                        payload: r.text(T, "payload")?,
                        notice: r.text(T, "notice")?,
                    })
                })
                .collect()
        })
    }

    /// Records that the notice of failed delivery `seq` was posted at `now_ms`, so it is
    /// posted once.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn notice_posted(&self, seq: i64, now_ms: i64) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE deliveries SET notice_posted_ms = $2 WHERE seq = $1";
        with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(seq)
                .bind(now_ms)
                .execute(pool)
                .await
                .map_err(StoreError::db("notice_posted"))?;
        });
        Ok(())
    }
}

/// SQLite: the same prepared statement (cached per connection by sqlx) once per row, in one
/// transaction on the single writer connection.
/// Sequence numbers as one JSON array, for SQLite's `seq IN (SELECT value FROM json_each($n))`:
/// one statement for any number of them (a statement per number costs a hand-off to sqlx's
/// SQLite thread each).
pub(crate) fn sqlite_seq_list(seqs: &[i64]) -> String {
    serde_json::to_string(seqs).unwrap_or_else(|_| "[]".to_owned())
}

async fn insert_sqlite(
    pool: &SqlitePool,
    batch: &[NewDelivery],
) -> Result<Vec<Inserted>, sqlx::Error> {
    // One statement for the whole batch: the rows travel as one JSON array and SQLite's
    // json_each unpacks them. sqlx runs each SQLite statement on the connection's worker
    // thread, so a statement per row costs a thread hand-off per row, which dominated the
    // ingestion profile (issue 12).
    const SQL: &str = "INSERT INTO deliveries \
         (source, delivery_id, repo_key, event, payload, received_ms) \
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
                json_extract(value, '$[4]'), json_extract(value, '$[5]') \
         FROM json_each($1) WHERE true ORDER BY key \
         ON CONFLICT (source, delivery_id) DO NOTHING \
         RETURNING seq, source, delivery_id";
    let rows: Vec<(&str, &str, &str, &str, &str, i64)> = batch
        .iter()
        .map(|d| {
            (
                d.source.as_str(),
                d.delivery_id.as_str(),
                d.repo_key.as_str(),
                d.event.as_str(),
                d.payload.as_str(),
                d.received_ms,
            )
        })
        .collect();
    let json = serde_json::to_string(&rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let inserted: Vec<(i64, String, String)> =
        sqlx::query_as(SQL).bind(json).fetch_all(pool).await?;
    let mut seqs: HashMap<(String, String), i64> = inserted
        .into_iter()
        .map(|(seq, source, id)| ((source, id), seq))
        .collect();
    // The first occurrence of a key in the batch was inserted (if new at all); a later one in
    // the same batch is a duplicate of it.
    Ok(batch
        .iter()
        .map(|d| {
            seqs.remove(&(d.source.clone(), d.delivery_id.clone()))
                .map_or(Inserted::Duplicate, Inserted::New)
        })
        .collect())
}

/// The most delivery bytes one PostgreSQL statement carries. sqlx 0.9.0 no longer sets
/// TCP_NODELAY (<https://github.com/transact-rs/sqlx/issues/4335>, fixed after 0.9.0): over
/// TLS a message longer than one TLS record (16 KiB) has its tail held back by Nagle's
/// algorithm until the server's delayed ACK, about 40 ms. Statements below one record do not
/// wait, so a large batch is sent as several such statements in one transaction.
const PG_STATEMENT_BYTES: usize = 12 * 1024;

/// PostgreSQL: `INSERT ... SELECT FROM UNNEST` over arrays, one statement per
/// [`PG_STATEMENT_BYTES`] of deliveries, all in one transaction.
async fn insert_postgres(
    pool: &PgPool,
    batch: &[NewDelivery],
) -> Result<Vec<Inserted>, sqlx::Error> {
    let chunks = pg_chunks(batch);
    if let [only] = chunks[..] {
        return insert_postgres_chunk(pool, only).await;
    }
    let mut tx = pool.begin().await?;
    let mut out = Vec::with_capacity(batch.len());
    for chunk in chunks {
        out.extend(insert_postgres_chunk(&mut *tx, chunk).await?);
    }
    tx.commit().await?;
    Ok(out)
}

/// Splits `batch` into runs of at most [`PG_STATEMENT_BYTES`] (estimated as the field bytes
/// plus the array framing); a single larger delivery is a run of its own.
fn pg_chunks(batch: &[NewDelivery]) -> Vec<&[NewDelivery]> {
    let size = |d: &NewDelivery| {
        d.source.len()
            + d.delivery_id.len()
            + d.repo_key.len()
            + d.event.len()
            + d.payload.len()
            + 6 * 4
            + 8
    };
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, d) in batch.iter().enumerate() {
        let n = size(d);
        if i > start && bytes + n > PG_STATEMENT_BYTES {
            chunks.push(&batch[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += n;
    }
    chunks.push(&batch[start..]);
    chunks
}

/// One statement over arrays. Rows are inserted in batch order (`WITH ORDINALITY ... ORDER
/// BY`), so `seq` follows the batch; of two deliveries with the same key the first is stored
/// (a later one conflicts with it, in this statement or an earlier one of the transaction).
async fn insert_postgres_chunk<'e, E>(
    executor: E,
    batch: &[NewDelivery],
) -> Result<Vec<Inserted>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    const SQL: &str = "INSERT INTO deliveries \
         (source, delivery_id, repo_key, event, payload, received_ms) \
         SELECT source, delivery_id, repo_key, event, payload, received_ms \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) \
         WITH ORDINALITY AS batch(source, delivery_id, repo_key, event, payload, received_ms, ord) \
         ORDER BY ord \
         ON CONFLICT (source, delivery_id) DO NOTHING \
         RETURNING seq, source, delivery_id";
    let column = |f: fn(&NewDelivery) -> &str| batch.iter().map(f).collect::<Vec<&str>>();
    let rows: Vec<(i64, String, String)> = sqlx::query_as(SQL)
        .bind(column(|d| &d.source))
        .bind(column(|d| &d.delivery_id))
        .bind(column(|d| &d.repo_key))
        .bind(column(|d| &d.event))
        .bind(column(|d| &d.payload))
        .bind(batch.iter().map(|d| d.received_ms).collect::<Vec<i64>>())
        .fetch_all(executor)
        .await?;
    let mut stored: HashMap<(String, String), i64> = rows
        .into_iter()
        .map(|(seq, source, delivery_id)| ((source, delivery_id), seq))
        .collect();
    Ok(batch
        .iter()
        .map(|d| {
            // The first delivery of the statement with this key takes the stored row.
            match stored.remove(&(d.source.clone(), d.delivery_id.clone())) {
                Some(seq) => Inserted::New(seq),
                None => Inserted::Duplicate,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(payload_len: usize) -> NewDelivery {
        NewDelivery {
            source: "github".to_owned(),
            delivery_id: "d".to_owned(),
            repo_key: "a/b".to_owned(),
            event: "push".to_owned(),
            payload: "x".repeat(payload_len),
            received_ms: 0,
        }
    }

    #[test]
    fn postgres_statements_stay_below_one_tls_record() {
        let batch: Vec<_> = (0..20).map(|_| delivery(1_500)).collect();
        let chunks = pg_chunks(&batch);
        // 1,500 + 14 + 32 bytes a delivery: 7 fit in 12 KiB.
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [7, 7, 6]
        );

        let small: Vec<_> = (0..5).map(|_| delivery(10)).collect();
        assert_eq!(pg_chunks(&small).len(), 1);

        let big = [delivery(10), delivery(40_000), delivery(10)];
        let lens: Vec<_> = pg_chunks(&big).iter().map(|c| c.len()).collect();
        assert_eq!(lens, [1, 1, 1], "an oversized delivery goes alone");
    }
}
