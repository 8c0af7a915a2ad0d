//! The one error taxonomy at the adapter boundary (SPEC §1). Every adapter maps its HTTP
//! status codes onto these variants in a single function; the engine decides on retries and
//! user-facing messages from the variant alone.

use std::time::Duration;

/// What went wrong when greg talked to a provider or a builder.
///
/// Messages never contain credentials: adapters build them from the status code, the
/// operation and the vendor's own error text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The object does not exist (HTTP 404, or 410 on GitHub).
    #[error("not found: {what}")]
    NotFound { what: String },
    /// The request conflicts with the current state (HTTP 409, GitHub 405 "not mergeable").
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// A precondition carried by the request no longer holds (HTTP 412, 422 on a sha mismatch).
    #[error("precondition failed: {message}")]
    PreconditionFailed { message: String },
    /// Credentials missing or rejected (HTTP 401).
    #[error("unauthenticated: {message}")]
    Unauthenticated { message: String },
    /// Credentials valid but not allowed to do this (HTTP 403 without rate-limit headers).
    #[error("permission denied: {message}")]
    PermissionDenied { message: String },
    /// The provider refused the operation for good because of a rule on its side: a protected
    /// branch that rejects the update (GitHub 422/403 "protected branch", "required status
    /// checks"), a merge check that vetoes a pull-request merge (Bitbucket Server 409, Cloud
    /// 400). `message` is the provider's own reason, quoted to people as is; retrying the same
    /// request cannot succeed until someone changes the rule.
    #[error("refused by the provider: {message}")]
    Refused { message: String },
    /// Too many requests (HTTP 429, or 403 with a rate-limit signal); retry after the delay
    /// when the server named one.
    #[error("rate limited (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// A failure worth retrying: HTTP 5xx, connection reset, timeout.
    #[error("transient: {message}")]
    Transient { message: String },
    /// The backend cannot do this operation at all.
    #[error("{operation} is not supported by {implementer}")]
    NotSupported {
        operation: &'static str,
        implementer: &'static str,
    },
    /// greg's configuration for this backend is wrong (bad URL, missing credential).
    #[error("invalid configuration: {key}: {message}")]
    InvalidConfig { key: String, message: String },
    /// The backend answered something greg cannot understand (unexpected JSON, bad header).
    #[error("unexpected response: {message}")]
    Protocol { message: String },
}

impl Error {
    /// True when the same request may succeed later without any change (5xx, timeouts,
    /// rate limits).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Transient { .. } | Error::RateLimited { .. })
    }

    /// The delay a rate-limited server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// Result with the boundary [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
