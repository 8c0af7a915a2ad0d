//! Chat notifications of `repos[].notify` (SPEC §9): the wire format and the poster.
//!
//! Design note.
//! - Two bodies. `text`: `{"text": "..."}`, which Slack's and Mattermost's incoming webhooks
//!   and Microsoft Teams' workflow webhooks all accept. `json`: greg's own event
//!   ([`ChatEvent`]), for receivers that act on it.
//! - Every request carries `X-Greg-Event` (the event's name) and `X-Greg-Delivery` (the
//!   outbox's outcome key, the same on every retry, so a receiver can drop repeats); with a
//!   secret also `X-Greg-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, as GitHub signs
//!   its webhooks.
//! - The URL of a Slack webhook is its credential: it is a [`Secret`], and nothing here puts
//!   more than its host into an error (reqwest's errors name the URL, so they are stripped).
//! - Failures are classified into `greg_core::Error` in one function, [`classify`]: connection
//!   errors, timeouts, 408, 429 and 5xx are retryable (the engine's outbox retries them with
//!   backoff); any other answer is final.

use greg_core::{Error, Secret};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::Duration;

/// Header naming the event (`landed`, `failed`, `left_queue`, `tree_closed`).
pub const EVENT_HEADER: &str = "X-Greg-Event";
/// Header carrying the delivery's id: the outbox key, equal on every retry.
pub const DELIVERY_HEADER: &str = "X-Greg-Delivery";
/// Header carrying `sha256=<hex HMAC-SHA256 of the body with the target's secret>`.
pub const SIGNATURE_HEADER: &str = "X-Greg-Signature-256";

/// How long one post may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which body a target receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatFormat {
    /// `{"text": ...}` (Slack, Mattermost, Teams workflow webhooks).
    Text,
    /// The whole [`ChatEvent`] as JSON.
    Json,
}

/// One notification: what happened, in words and in fields. The JSON body of `format: json`
/// is this struct; absent fields are `null`. Field names are part of greg's interface
/// (docs/operations.md, "Notifications").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatEvent {
    /// `landed`, `failed`, `left_queue` or `tree_closed`.
    pub event: String,
    /// The outbox key of this notification (also `X-Greg-Delivery`), unique per event and
    /// target: `queue:12:landed:notify:0`.
    pub delivery: String,
    /// The provider name as configured (`github`, `bitbucket`).
    pub provider: String,
    /// `owner/name`.
    pub repository: String,
    /// The pull request (for `tree_closed`: the one the command was written on).
    pub pull_request: u64,
    /// The target branch.
    pub target: String,
    /// The approved head (`null` for `tree_closed`).
    pub head: Option<String>,
    /// Who approved the merge (`landed`, `failed`, `left_queue`) or closed the tree.
    pub by: String,
    /// Why it failed or left the queue, or the landed commit, in words.
    pub reason: Option<String>,
    /// The build that decided (`failed`), when greg knows its page.
    pub build_url: Option<String>,
    /// `tree_closed`: merges below this priority wait.
    pub priority: Option<i64>,
    /// When greg decided it, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The one-line text the `text` format posts.
    pub text: String,
}

/// A notification webhook: where to post, in which format, signed with which secret.
#[derive(Debug, Clone, Copy)]
pub struct ChatTarget<'a> {
    /// The full URL (a credential for Slack: never logged).
    pub url: &'a Secret,
    /// The URL's host, for errors and logs.
    pub host: &'a str,
    /// The body's format.
    pub format: ChatFormat,
    /// Signs the body when present.
    pub secret: Option<&'a Secret>,
}

/// The body `target` receives for `event`.
pub fn body(format: ChatFormat, event: &ChatEvent) -> Vec<u8> {
    let value = match format {
        ChatFormat::Text => serde_json::json!({ "text": event.text }),
        ChatFormat::Json => serde_json::to_value(event).unwrap_or(serde_json::Value::Null),
    };
    // A `Value` always serializes.
    serde_json::to_vec(&value).unwrap_or_default()
}

/// `sha256=<hex HMAC-SHA256 of body with secret>`, the value of [`SIGNATURE_HEADER`].
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    // HMAC accepts a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts notifications over HTTP (reqwest, rustls). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Poster {
    client: reqwest::Client,
}

impl Poster {
    /// A poster with greg's timeouts (10 s a post, 5 s to connect).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the HTTP client cannot be built (no TLS backend).
    pub fn new() -> Result<Self, Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("greg/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::InvalidConfig {
                key: "repos[].notify".to_owned(),
                message: format!("cannot build the HTTP client: {}", e.without_url()),
            })?;
        Ok(Self { client })
    }

    /// Posts `event` to `target`: one request; the caller retries.
    ///
    /// # Errors
    /// As [`classify`]: retryable for connection failures, timeouts, 408, 429 and 5xx;
    /// final otherwise. Messages name `target.host` only.
    pub async fn post(&self, target: ChatTarget<'_>, event: &ChatEvent) -> Result<(), Error> {
        let body = body(target.format, event);
        let mut request = self
            .client
            .post(target.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, &event.event)
            .header(DELIVERY_HEADER, &event.delivery);
        if let Some(secret) = target.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| classify(target.host, Failure::Transport(e.without_url())))?;
        let code = response.status().as_u16();
        if (200..300).contains(&code) {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(classify(target.host, Failure::Status { code, retry_after }))
    }
}

/// What went wrong with one post.
#[derive(Debug)]
pub enum Failure {
    /// No answer: the connection failed or timed out (the error without its URL).
    Transport(reqwest::Error),
    /// An answer other than 2xx, with `Retry-After` in seconds when given.
    Status {
        /// The HTTP status.
        code: u16,
        /// `Retry-After`, when the receiver sent one in seconds.
        retry_after: Option<Duration>,
    },
}

/// The one place a notification failure becomes a `greg_core::Error`. Retryable
/// ([`Error::is_retryable`]): no answer, 408, 429 (with its `Retry-After`), 5xx. Final: 404
/// ([`Error::NotFound`]: the webhook was removed), 401, 403, and any other answer
/// ([`Error::Refused`]). Messages name `host` only, never the URL's path or query.
pub fn classify(host: &str, failure: Failure) -> Error {
    match failure {
        Failure::Transport(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "cannot connect"
            } else {
                "request failed"
            };
            Error::Transient {
                message: format!("notification webhook at {host}: {what}"),
            }
        }
        Failure::Status { code, retry_after } => {
            let message = format!("notification webhook at {host} answered HTTP {code}");
            match code {
                429 => Error::RateLimited { retry_after },
                408 | 500..=599 => Error::Transient { message },
                404 | 410 => Error::NotFound { what: message },
                401 => Error::Unauthenticated { message },
                403 => Error::PermissionDenied { message },
                _ => Error::Refused { message },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> ChatEvent {
        ChatEvent {
            event: "landed".to_owned(),
            delivery: "queue:12:landed:notify:0".to_owned(),
            provider: "github".to_owned(),
            repository: "acme/demo".to_owned(),
            pull_request: 12,
            target: "master".to_owned(),
            head: Some("a".repeat(40)),
            by: "alice".to_owned(),
            reason: None,
            build_url: None,
            priority: None,
            at_ms: 1_700_000_000_000,
            text: "acme/demo#12 landed on master (approved by alice)".to_owned(),
        }
    }

    #[test]
    fn the_text_body_is_slacks() {
        let body = body(ChatFormat::Text, &event());
        assert_eq!(
            String::from_utf8_lossy(&body),
            r#"{"text":"acme/demo#12 landed on master (approved by alice)"}"#
        );
    }

    #[test]
    fn the_json_body_has_every_field() {
        let body = body(ChatFormat::Json, &event());
        let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        insta::assert_snapshot!(serde_json::to_string_pretty(&value).expect("JSON"));
    }

    #[test]
    fn the_signature_is_githubs() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body
        // "Hello, World!" (docs.github.com, "Validating webhook deliveries").
        assert_eq!(
            signature(&Secret::new("It's a Secret to Everybody"), b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn failures_are_retryable_only_when_a_retry_can_succeed() {
        let status = |code| {
            classify(
                "hooks.example.com",
                Failure::Status {
                    code,
                    retry_after: None,
                },
            )
        };
        for code in [408, 429, 500, 502, 503] {
            assert!(status(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 422] {
            assert!(!status(code).is_retryable(), "{code}");
        }
        assert_eq!(
            status(404).to_string(),
            "not found: notification webhook at hooks.example.com answered HTTP 404"
        );
    }
}
