//! [`RequestSink`]: an HTTP endpoint that records every request and answers a fixed status,
//! standing in for greg's `/build` callback when a test drives [`crate::FakeJenkins`] alone,
//! or for a chat webhook (`repos[].notify`) that greg posts to; [`RequestSink::scripted`]
//! answers a script of statuses first (`502, 502`, then `200`) for retry tests.

use crate::http::{self, Reply};
use actix_web::dev::ServerHandle;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the sink received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Upper-case method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl Received {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A recording HTTP endpoint on `127.0.0.1:0`. Stops when dropped.
pub struct RequestSink {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    handle: ServerHandle,
}

impl std::fmt::Debug for RequestSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSink")
            .field("url", &self.url)
            .finish()
    }
}

impl RequestSink {
    /// Starts a sink answering every request with `status` and an empty body. Errors when the
    /// port cannot be bound.
    pub fn start(status: u16) -> std::io::Result<Self> {
        Self::scripted(&[], status)
    }

    /// Starts a sink answering its first requests with `first`, in order, and every later
    /// one with `then`. Errors when the port cannot be bound.
    pub fn scripted(first: &[u16], then: u16) -> std::io::Result<Self> {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script: Arc<Mutex<std::collections::VecDeque<u16>>> =
            Arc::new(Mutex::new(first.iter().copied().collect()));
        let r = received.clone();
        let (addr, handle) = http::serve(
            "sink",
            move |req| {
                r.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(Received {
                        method: req.method.clone(),
                        path: req.path.clone(),
                        query: req.raw_query.clone(),
                        headers: req.headers.clone(),
                        body: String::from_utf8_lossy(&req.body).into_owned(),
                    });
                let status = script
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pop_front()
                    .unwrap_or(then);
                Reply::empty(status)
            },
            || {},
        )?;
        Ok(Self {
            url: format!("http://{addr}"),
            received,
            handle,
        })
    }

    /// Everything received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits until at least `n` requests arrived (polling every 5 ms); fails after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return Ok(got);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "timed out after {timeout:?}: the sink received {} of {n} requests",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for RequestSink {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}
