//! The one-line answers of SPEC §3, in one place.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

/// An answer to a webhook or callback: a status code and a one-line reason that never contains
/// a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub reason: String,
}

impl Answer {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }

    /// 202: stored for processing.
    pub fn accepted(seq: i64) -> Self {
        Self::new(
            StatusCode::ACCEPTED,
            format!("accepted: delivery {seq} queued"),
        )
    }

    /// 202: this delivery id was accepted before.
    pub fn duplicate() -> Self {
        Self::new(
            StatusCode::ACCEPTED,
            "duplicate: this delivery was already accepted",
        )
    }

    /// 202: understood, and nothing to do.
    pub fn ignored(why: &str) -> Self {
        Self::new(StatusCode::ACCEPTED, format!("ignored: {why}"))
    }

    /// 401: token or signature missing or wrong.
    pub fn unauthorized(why: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, format!("unauthorized: {why}"))
    }

    /// 404: unknown provider or builder.
    pub fn not_found(why: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("not found: {why}"))
    }

    /// 400: malformed JSON or a missing header.
    pub fn bad_request(why: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format!("bad request: {why}"))
    }

    /// 413: body over the limit.
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "payload too large: bodies over {} MiB are refused",
                crate::MAX_BODY_BYTES / (1024 * 1024)
            ),
        )
    }

    /// 415: not JSON.
    pub fn unsupported_media(content_type: &str) -> Self {
        let hint = if content_type.starts_with("application/x-www-form-urlencoded") {
            "; set the webhook content type to application/json"
        } else {
            ""
        };
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported media type: expected application/json, got {content_type}{hint}"),
        )
    }

    /// 503: the store is unavailable; the sender should retry.
    pub fn unavailable(why: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unavailable: {why}"),
        )
    }

    /// The HTTP response: `text/plain`, the reason and a newline.
    pub fn into_response(self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type("text/plain; charset=utf-8")
            .body(format!("{}\n", self.reason))
    }
}
