//! The store's one error type, and the URL redaction that keeps passwords out of it.

/// What went wrong in the store.
///
/// `Display` never contains a password: URLs are shown redacted by [`redact_url`], and
/// messages from a failed connection are scrubbed of the password before they are kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL names no supported backend or cannot be parsed.
    #[error("unsupported database URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database could not be opened or reached.
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The URL, redacted.
        url: String,
        /// The driver's or server's reason, with the password removed.
        message: String,
    },
    /// Applying the schema migrations failed (for example a migration already applied was
    /// edited, or the database holds a newer schema).
    #[error("cannot migrate {url}: {source}")]
    Migrate {
        /// The URL, redacted.
        url: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("store {operation} failed: {source}")]
    Database {
        /// The store method, e.g. `insert_deliveries`.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The row the operation needs does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// `delivery`, `build` or `queue entry`.
        what: &'static str,
        /// The sequence number or id asked for.
        id: i64,
    },
    /// The change would move a finished row back to an active state (a landed, failed or
    /// cancelled queue entry to waiting, staging, building or landing); nothing was written.
    #[error("{what} {id} is {from} and cannot become {to}")]
    InvalidTransition {
        /// `queue entry`.
        what: &'static str,
        /// The row's id.
        id: i64,
        /// The stored state, e.g. `landed`.
        from: &'static str,
        /// The state asked for, e.g. `waiting`.
        to: &'static str,
    },
    /// A write kept colliding with concurrent writers and gave up after a few tries; retry
    /// later.
    #[error("store {operation} gave up under concurrent writes")]
    Contended {
        /// The store method.
        operation: &'static str,
    },
    /// A stored value cannot be decoded (an invalid sha, an unknown state, a negative id):
    /// the database was edited by hand or by a newer greg.
    #[error("corrupt value in {table}.{column}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },
    /// An id is above `i64::MAX` (the largest BIGINT) and cannot be stored.
    #[error("{what} {value} is too large to store (the limit is {limit})", limit = i64::MAX)]
    OutOfRange {
        /// What the id is, e.g. `pull request`.
        what: &'static str,
        /// The id.
        value: u64,
    },
    /// Another process already serves this SQLite database ([`Store::serve_exclusively`]):
    /// SQLite serves one `greg serve`; replicas need PostgreSQL.
    ///
    /// [`Store::serve_exclusively`]: crate::Store::serve_exclusively
    #[error(
        "another greg process already serves {url} (it holds {lock}); a SQLite database serves one process: stop the other one, or run replicas on PostgreSQL (SPEC §11)"
    )]
    InUse {
        /// The URL, redacted.
        url: String,
        /// The lock file.
        lock: String,
    },
    /// A fenced write (made inside [`Fence::scope`](crate::Fence::scope)) found that the
    /// lane's lease on the repository is no longer held with that epoch: another replica took
    /// the repository over. Nothing was written; the caller must stop working on it.
    #[error("the lease on {repo_key} (epoch {epoch}) is lost; nothing was written")]
    Fenced {
        /// The repository key.
        repo_key: String,
        /// The epoch the write carried.
        epoch: i64,
    },
    /// A text value contains a NUL character, which PostgreSQL cannot store in TEXT; refused
    /// on every backend so that both behave the same.
    #[error("{what} contains a NUL character")]
    InvalidText {
        /// Which value, e.g. `branch`.
        what: &'static str,
    },
}

impl StoreError {
    /// True when the same call may succeed if retried unchanged: pool exhausted, connection
    /// lost, SQLite busy or locked, PostgreSQL serialization failure, deadlock or shutdown.
    pub fn is_transient(&self) -> bool {
        let source = match self {
            StoreError::Database { source, .. } => source,
            StoreError::Contended { .. } => return true,
            _ => return false,
        };
        match source {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => matches!(
                db.code().as_deref(),
                // SQLite: SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
                Some("5" | "6" | "261" | "262" | "517" | "773")
                // PostgreSQL: serialization_failure, deadlock_detected, admin_shutdown,
                // cannot_connect_now.
                | Some("40001" | "40P01" | "57P01" | "57P03")
            ),
            _ => false,
        }
    }

    /// Wraps a driver error with the store method it came from.
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { operation, source }
    }
}

/// Returns `url` with its password replaced by `***`: the password of the user-info part
/// (`postgres://user:secret@host/db`) and `password=` / `sslpassword=` query parameters
/// (libpq's URL parameters, <https://www.postgresql.org/docs/current/libpq-connect.html>).
/// Everything else is kept so that the operator can recognise the database.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    match base.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    match userinfo.split_once(':') {
                        Some((user, _password)) => {
                            out.push_str(user);
                            out.push_str(":***");
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push('@');
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(base),
    }
    if let Some(query) = query {
        out.push('?');
        let parts: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if is_password_key(key) => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

/// Every password that appears in `url`, raw and percent-decoded, for scrubbing messages.
pub(crate) fn url_passwords(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    if let Some((_, rest)) = base.split_once("://") {
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            found.push(password.to_owned());
        }
    }
    if let Some(query) = query {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=')
                && is_password_key(key)
            {
                found.push(value.to_owned());
            }
        }
    }
    let decoded: Vec<String> = found.iter().map(|p| percent_decode(p)).collect();
    found.extend(decoded);
    found.retain(|p| !p.is_empty());
    found.sort();
    found.dedup();
    // Longest first, so that a password containing another is scrubbed whole.
    found.sort_by_key(|p| std::cmp::Reverse(p.len()));
    found
}

/// Replaces every password of `url` in `message` by `***`.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_owned();
    for password in url_passwords(url) {
        out = out.replace(&password, "***");
    }
    out
}

fn is_password_key(key: &str) -> bool {
    key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("sslpassword")
}

/// Decodes `%XX` escapes; invalid escapes and invalid UTF-8 are kept as they are (lossy).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_password() {
        assert_eq!(
            redact_url("postgres://greg:s3cr%40t@db.example.com:5432/greg"),
            "postgres://greg:***@db.example.com:5432/greg"
        );
    }

    #[test]
    fn keeps_urls_without_password() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/test",
            "sqlite://greg.db",
            "sqlite:///var/lib/greg/greg.db",
            "sqlite::memory:",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn redacts_password_query_parameters() {
        assert_eq!(
            redact_url("postgres://db/greg?user=greg&password=hunter2&sslmode=require"),
            "postgres://db/greg?user=greg&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db/greg?SSLPassword=x"),
            "postgres://db/greg?SSLPassword=***"
        );
    }

    #[test]
    fn at_sign_in_path_is_not_userinfo() {
        assert_eq!(
            redact_url("sqlite:///tmp/a@b:c.db"),
            "sqlite:///tmp/a@b:c.db"
        );
    }

    #[test]
    fn scrub_removes_raw_and_decoded_passwords() {
        let url = "postgres://greg:p%40ss@db/greg?password=other";
        assert_eq!(
            scrub("failed for p%40ss, p@ss and other", url),
            "failed for ***, *** and ***"
        );
        assert_eq!(
            scrub("nothing secret", "sqlite://greg.db"),
            "nothing secret"
        );
    }
}
