//! A PostgreSQL schema of its own for one test (replica tests share it between processes),
//! dropped at the end. Included with `#[path = "common/pg_schema.rs"] mod pg_schema;`.
#![allow(dead_code)]

use sqlx::Connection as _;

/// The schema, and the server it lives on.
pub struct Schema {
    base: String,
    name: String,
}

impl Schema {
    /// Creates a fresh schema on `base` (a PostgreSQL URL) and returns it with the URL that
    /// selects it (`options[search_path]`).
    pub async fn create(base: &str) -> anyhow::Result<(Self, String)> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos();
        let name = format!("greg_replicas_{}_{nanos}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(base).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await?;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options[search_path]={name}");
        Ok((
            Self {
                base: base.to_owned(),
                name,
            },
            url,
        ))
    }

    /// Drops the schema and everything in it.
    pub async fn drop_now(&self) -> anyhow::Result<()> {
        let mut conn = sqlx::PgConnection::connect(&self.base).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.name
        )))
        .execute(&mut conn)
        .await?;
        Ok(())
    }

    /// Reads one integer from the schema.
    pub async fn scalar(&self, url: &str, sql: &'static str) -> anyhow::Result<i64> {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        Ok(sqlx::query_scalar(sql).fetch_one(&mut conn).await?)
    }
}
