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

    /// Up to `limit` deliveries not yet finished, oldest (lowest `seq`) first. A negative
    /// `limit` is taken as 0.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] for an undecodable row.
    pub async fn pending_deliveries(&self, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE state = 'pending' ORDER BY seq LIMIT $1"
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

    /// Deletes finished deliveries whose `finished_ms` is before `before_ms` (unix
    /// milliseconds) and returns how many. Pending deliveries are never deleted. A delivery
    /// id seen again after its row is pruned is stored and processed as new.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn prune_deliveries(&self, before_ms: i64) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM deliveries WHERE state <> 'pending' AND finished_ms < $1";
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

/// SQLite: the same prepared statement (cached per connection by sqlx) once per row, in one
/// transaction on the single writer connection.
async fn insert_sqlite(
    pool: &SqlitePool,
    batch: &[NewDelivery],
) -> Result<Vec<Inserted>, sqlx::Error> {
    const SQL: &str = "INSERT INTO deliveries \
         (source, delivery_id, repo_key, event, payload, received_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (source, delivery_id) DO NOTHING \
         RETURNING seq";
    let mut tx = pool.begin().await?;
    let mut out = Vec::with_capacity(batch.len());
    for d in batch {
        let seq: Option<i64> = sqlx::query_scalar(SQL)
            .bind(d.source.as_str())
            .bind(d.delivery_id.as_str())
            .bind(d.repo_key.as_str())
            .bind(d.event.as_str())
            .bind(d.payload.as_str())
            .bind(d.received_ms)
            .fetch_optional(&mut *tx)
            .await?;
        out.push(seq.map_or(Inserted::Duplicate, Inserted::New));
    }
    tx.commit().await?;
    Ok(out)
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
