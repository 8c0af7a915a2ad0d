//! The request log (every request a fake received, for counting and validating API calls),
//! one-shot fault injection (answer the next matching request with 500, 502, 403 rate-limit or
//! 429, for retry tests), and request holds (keep the next matching request waiting until the
//! test releases it, so a test can kill greg at an exact point of a multi-step operation).

use super::World;
use regex::Regex;
use serde_json::Value;

/// Which fake received a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Server {
    /// [`crate::FakeGithub`].
    Github,
    /// [`crate::FakeJenkins`].
    Jenkins,
}

/// One request as a fake received it, with the status it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    /// Position in the log, from 0.
    pub seq: u64,
    /// The fake that received it.
    pub server: Server,
    /// Upper-case HTTP method.
    pub method: String,
    /// Percent-encoded path as sent, without the query.
    pub path: String,
    /// The raw query string (empty when absent).
    pub query: String,
    /// The body parsed as JSON, when it was JSON.
    pub json: Option<Value>,
    /// The body decoded as `application/x-www-form-urlencoded`, when it was a form.
    pub form: Option<Vec<(String, String)>>,
    /// The raw body as text (lossy UTF-8); empty when there was none.
    pub body: String,
    /// The status the fake answered.
    pub status: u16,
    /// True when an armed [`Fault`] produced the answer.
    pub faulted: bool,
    /// When the fake had answered it (monotonic clock; benchmarks time greg's calls by it).
    pub at: std::time::Instant,
}

/// A one-shot failure armed with [`World::fail_next`].
#[derive(Debug, Clone)]
pub struct Fault {
    /// The fake it applies to.
    pub server: Server,
    /// Matched against the request path (without the query).
    pub path: Regex,
    /// Status to answer: 500, 502, 403 (answered as a rate-limit), 429, or anything else.
    pub status: u16,
    /// Seconds for the `Retry-After` header, if any.
    pub retry_after: Option<u64>,
}

/// What a held request does once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldMode {
    /// It is answered 503 without being applied: the call never reached the vendor.
    Drop,
    /// It is applied and answered normally: the vendor did it, whether or not the caller is
    /// still there to read the answer.
    Apply,
}

/// Where a hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    /// Waiting for a matching request.
    Armed,
    /// A matching request arrived and is waiting.
    Holding,
    /// Released by the test.
    Released,
}

/// A request hold armed with [`World::hold_next`].
#[derive(Debug, Clone)]
pub struct Hold {
    /// Its id, for [`World::wait_held`] and [`World::release`].
    pub id: u64,
    /// The fake it applies to.
    pub server: Server,
    /// Upper-case method to match.
    pub method: String,
    /// Matched against the request path (without the query).
    pub path: Regex,
    /// What happens on release.
    pub mode: HoldMode,
    /// Where it stands.
    pub state: HoldState,
}

/// How long a held request waits for its release before it is let go anyway.
const HOLD_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

impl World {
    /// Arms a hold: the next request to `server` with `method` whose path matches
    /// `path_regex` waits (blocking one worker of the fake) until [`World::release`], then is
    /// dropped or applied per `mode`. Returns the hold's id. Errors when the regex does not
    /// compile.
    pub fn hold_next(
        &self,
        server: Server,
        method: &str,
        path_regex: &str,
        mode: HoldMode,
    ) -> Result<u64, regex::Error> {
        let path = Regex::new(path_regex)?;
        Ok(self.update(|s| {
            let id = s.holds.len() as u64;
            s.holds.push(Hold {
                id,
                server,
                method: method.to_ascii_uppercase(),
                path,
                mode,
                state: HoldState::Armed,
            });
            id
        }))
    }

    /// Waits until hold `id` holds a request.
    ///
    /// # Errors
    /// When nothing matched within `timeout`.
    pub async fn wait_held(&self, id: u64, timeout: std::time::Duration) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let state = self.read(|s| s.holds.iter().find(|h| h.id == id).map(|h| h.state));
            if state != Some(HoldState::Armed) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("no request matched hold {id} within {timeout:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Lets the request held by `id` go (or disarms the hold when nothing matched yet).
    pub fn release(&self, id: u64) {
        self.update(|s| {
            if let Some(h) = s.holds.iter_mut().find(|h| h.id == id) {
                h.state = HoldState::Released;
            }
        });
    }

    /// Called by the fakes for every request: when an armed hold matches, blocks until it is
    /// released and returns its mode.
    pub(crate) fn gate(&self, server: Server, method: &str, path: &str) -> Option<HoldMode> {
        let (id, mode) = self.update(|s| {
            let h = s.holds.iter_mut().find(|h| {
                h.state == HoldState::Armed
                    && h.server == server
                    && h.method.eq_ignore_ascii_case(method)
                    && h.path.is_match(path)
            })?;
            h.state = HoldState::Holding;
            Some((h.id, h.mode))
        })?;
        let deadline = std::time::Instant::now() + HOLD_LIMIT;
        while std::time::Instant::now() < deadline {
            let released = self.read(|s| {
                s.holds
                    .iter()
                    .any(|h| h.id == id && h.state == HoldState::Released)
            });
            if released {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Some(mode)
    }

    /// Arms a one-shot fault: the next request to `server` whose path matches `path_regex`
    /// is answered with `status` (403 and 429 carry GitHub's rate-limit headers
    /// `x-ratelimit-remaining: 0` and `x-ratelimit-reset`; `retry_after` adds `Retry-After`).
    /// Faults fire in the order they were armed. Errors when the regex does not compile.
    pub fn fail_next(
        &self,
        server: Server,
        path_regex: &str,
        status: u16,
        retry_after: Option<u64>,
    ) -> Result<(), regex::Error> {
        let path = Regex::new(path_regex)?;
        self.update(|s| {
            s.faults.push(Fault {
                server,
                path,
                status,
                retry_after,
            })
        });
        Ok(())
    }

    /// Arms a standing fault: every `every`-th request to `server` whose path matches
    /// `path_regex` (counting from the first one after this call) is answered with `status`
    /// (as [`World::fail_next`] answers), until [`World::stop_failing`]; `every: 20` fails 5 %
    /// of them, deterministically. One-shot faults go first. Errors when the regex does not
    /// compile; `every` 0 is taken as 1.
    pub fn fail_every(
        &self,
        server: Server,
        path_regex: &str,
        status: u16,
        every: u64,
    ) -> Result<(), regex::Error> {
        let path = Regex::new(path_regex)?;
        self.update(|s| {
            s.fault_rates.push((
                Fault {
                    server,
                    path,
                    status,
                    retry_after: None,
                },
                every.max(1),
                0,
            ))
        });
        Ok(())
    }

    /// Removes every standing fault armed with [`World::fail_every`].
    pub fn stop_failing(&self) {
        self.update(|s| s.fault_rates.clear());
    }

    /// A copy of the request log.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.read(|s| s.requests.clone())
    }

    /// The logged requests to `server` with `method` whose path matches `path_regex`
    /// (an invalid regex matches nothing).
    pub fn requests_matching(
        &self,
        server: Server,
        method: &str,
        path_regex: &str,
    ) -> Vec<LoggedRequest> {
        let Ok(re) = Regex::new(path_regex) else {
            return Vec::new();
        };
        self.read(|s| {
            s.requests
                .iter()
                .filter(|r| {
                    r.server == server
                        && r.method.eq_ignore_ascii_case(method)
                        && re.is_match(&r.path)
                })
                .cloned()
                .collect()
        })
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.update(|s| s.requests.clear());
    }

    /// Takes the first armed fault matching this request, if any.
    pub(crate) fn take_fault(&self, server: Server, path: &str) -> Option<Fault> {
        self.update(|s| {
            if let Some(i) = s
                .faults
                .iter()
                .position(|f| f.server == server && f.path.is_match(path))
            {
                return Some(s.faults.remove(i));
            }
            s.fault_rates
                .iter_mut()
                .filter(|(f, _, _)| f.server == server && f.path.is_match(path))
                .find_map(|(f, every, seen)| {
                    *seen += 1;
                    (*seen % *every == 0).then(|| f.clone())
                })
        })
    }

    /// Appends a request to the log.
    pub(crate) fn log_request(&self, mut entry: LoggedRequest) {
        self.update(|s| {
            entry.seq = s.requests.len() as u64;
            s.requests.push(entry);
        });
    }
}
