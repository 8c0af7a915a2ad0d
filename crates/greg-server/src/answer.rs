//! The one-line answers of SPEC §3, in one place.
//!
//! Reasons often quote the sender (a serde message names the unknown value it met), so every
//! reason is made one line here: control characters are escaped (`\n` stays two characters)
//! and the reason is cut at [`Answer::MAX_REASON_BYTES`]. The answer and the log line are then
//! safe from injected lines and from a megabyte-long echo.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

/// An answer to a webhook or callback: a status code and a one-line reason that never contains
/// a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// One line, no control characters, at most [`Answer::MAX_REASON_BYTES`] plus `…`.
    pub reason: String,
}

impl Answer {
    /// The longest reason, in bytes, before it is cut (with `…` appended).
    pub const MAX_REASON_BYTES: usize = 400;

    pub(crate) fn new(status: StatusCode, reason: impl AsRef<str>) -> Self {
        Self {
            status,
            reason: one_line(reason.as_ref()),
        }
    }

    /// 202: stored for processing.
    pub fn accepted(seq: i64) -> Self {
        Self::new(
            StatusCode::ACCEPTED,
            format!("accepted: delivery {seq} queued"),
        )
    }

    /// 202: a delivery of several events, each stored with its own sequence number (the
    /// duplicates among them, accepted before, are not listed).
    pub fn accepted_several(seqs: &[i64]) -> Self {
        let list: Vec<String> = seqs.iter().map(i64::to_string).collect();
        Self::new(
            StatusCode::ACCEPTED,
            format!("accepted: deliveries {} queued", list.join(", ")),
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

/// `reason` with control characters escaped (`\n` → `\\n`), cut at
/// [`Answer::MAX_REASON_BYTES`] on a character boundary with `…` appended.
fn one_line(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len().min(Answer::MAX_REASON_BYTES + 3));
    for c in reason.chars() {
        let before = out.len();
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > Answer::MAX_REASON_BYTES {
            out.truncate(before);
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_line() {
        let a = Answer::bad_request("unknown variant `DONE\nINJECTED: two\r\u{1b}[31m`");
        assert_eq!(
            a.reason,
            "bad request: unknown variant `DONE\\nINJECTED: two\\r\\u{1b}[31m`"
        );
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let a = Answer::bad_request(&"é".repeat(1000));
        assert!(a.reason.ends_with('…'), "{}", a.reason);
        assert!(a.reason.len() <= Answer::MAX_REASON_BYTES + '…'.len_utf8());
        assert!(a.reason.len() > Answer::MAX_REASON_BYTES - 2);
        // Short reasons are untouched.
        assert_eq!(
            Answer::ignored("ping events are not used").reason,
            "ignored: ping events are not used"
        );
    }
}
