//! Counts of the requests greg makes to GitHub, Bitbucket and Jenkins, for `/metrics`
//! (SPEC §9: "upstream API requests by service and status; rate-limit remaining").
//!
//! The adapters record each answer here (plain counters behind a mutex, no metrics library:
//! adapters stay free of the exposition format); the engine reads a snapshot at each scrape.
//! One [`UpstreamCounts`] is shared by every adapter of a process.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Requests per (service, status) and the last rate-limit reading per service.
#[derive(Debug, Default)]
pub struct UpstreamCounts {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    requests: BTreeMap<(String, String), u64>,
    remaining: BTreeMap<String, u64>,
}

/// What a scrape reads: `((service, status), requests)` and `(service, remaining)`, sorted.
pub type UpstreamSnapshot = (Vec<((String, String), u64)>, Vec<(String, u64)>);

impl UpstreamCounts {
    /// Records one request to `service` (the adapter's configured name: `github`,
    /// `bitbucket`, `jenkins`): `status` is the HTTP status, `None` when no answer came
    /// (connection refused, timeout: counted as status `error`). `remaining`: the
    /// `X-RateLimit-Remaining` header when the answer carried one (GitHub).
    pub fn record(&self, service: &str, status: Option<u16>, remaining: Option<u64>) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        let mut c = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *c.requests.entry((service.to_owned(), status)).or_insert(0) += 1;
        if let Some(r) = remaining {
            c.remaining.insert(service.to_owned(), r);
        }
    }

    /// The counts so far (see [`UpstreamSnapshot`]).
    pub fn snapshot(&self) -> UpstreamSnapshot {
        let c = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (
            c.requests.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            c.remaining.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_service_and_status_and_the_last_reading_wins() {
        let c = UpstreamCounts::default();
        c.record("github", Some(200), Some(4999));
        c.record("github", Some(200), Some(4998));
        c.record("github", Some(502), None);
        c.record("jenkins", None, None);
        let (requests, remaining) = c.snapshot();
        assert_eq!(
            requests,
            vec![
                (("github".into(), "200".into()), 2),
                (("github".into(), "502".into()), 1),
                (("jenkins".into(), "error".into()), 1),
            ]
        );
        assert_eq!(remaining, vec![("github".into(), 4998)]);
    }
}
