//! Bitbucket webhook deliveries: signature check, delivery id, then parsing into [`Parsed`].
//! Pure functions over (flavor, headers, raw body); no IO.
//!
//! Formats:
//! - Cloud: <https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/> (the event
//!   is named only by the `X-Event-Key` header; `X-Request-UUID` identifies the delivery);
//!   captured deliveries in tests/data/bitbucket-cloud/.
//! - Server/Data Center: <https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html>
//!   (`X-Event-Key` header and `eventKey` body field; `X-Request-Id` identifies the delivery;
//!   `diagnostics:ping` is the "Test connection" button); captured deliveries in
//!   tests/data/bitbucket-server/.
//! - Signature, both flavors: with a webhook secret, `X-Hub-Signature: sha256=<hex HMAC-SHA256
//!   of the raw body>` (<https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/>,
//!   <https://confluence.atlassian.com/bitbucketserver/manage-webhooks-938025878.html>).
//!   Test vector: tests/data/bitbucket-cloud/repo_push.signed.json (SOURCES.md).

mod cloud;
mod server;

use crate::config::Flavor;
use crate::event::Parsed;
use crate::wire::{self, printable};
use greg_core::{Headers, Secret, WebhookError};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header naming the event (`repo:push`, `pr:opened`, ...), both flavors.
pub const EVENT_HEADER: &str = "X-Event-Key";
/// Header carrying `sha256=<hex HMAC-SHA256 of the body>`, both flavors.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature";
/// Cloud: the delivery's id (a UUID); a retried delivery keeps it.
pub const CLOUD_DELIVERY_HEADER: &str = "X-Request-UUID";
/// Server/Data Center: the delivery's id (a UUID).
pub const SERVER_DELIVERY_HEADER: &str = "X-Request-Id";

/// Checks `X-Hub-Signature` against the HMAC-SHA256 of the raw `body` keyed with `secret`.
///
/// `Ok(())` without looking at the headers when `secret` is `None` or empty (not configured).
/// The comparison is constant-time (`hmac`'s `verify_slice`).
///
/// # Errors
/// [`WebhookError::Unauthorized`] with a one-line reason when the header is missing, is not
/// `sha256=<hex>`, or does not match. The reason never contains the secret or the digest.
pub fn verify_signature(
    secret: Option<&Secret>,
    headers: &Headers,
    body: &[u8],
) -> Result<(), WebhookError> {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let unauthorized = |reason: &str| WebhookError::Unauthorized(reason.to_owned());
    let header = headers
        .get(SIGNATURE_HEADER)
        .ok_or_else(|| unauthorized("missing X-Hub-Signature header"))?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| unauthorized("X-Hub-Signature does not start with sha256="))?;
    let digest =
        hex::decode(hex_digest).map_err(|_| unauthorized("X-Hub-Signature is not a hex digest"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| unauthorized("webhook secret cannot key HMAC-SHA256"))?;
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| unauthorized("X-Hub-Signature does not match the body"))
}

/// The delivery id: Cloud `X-Request-UUID`, Server `X-Request-Id`; trimmed, `None` when
/// absent or empty. (Cloud's `X-Hook-UUID` names the webhook, the same for every delivery, so
/// it is no substitute.)
pub fn delivery_id(flavor: Flavor, headers: &Headers) -> Option<String> {
    let name = match flavor {
        Flavor::Cloud => CLOUD_DELIVERY_HEADER,
        Flavor::Server => SERVER_DELIVERY_HEADER,
    };
    headers
        .get(name)
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// Parses a (verified) delivery into [`Parsed`].
///
/// The event is named by `X-Event-Key`; Server deliveries without the header are named by
/// their `eventKey` body field. Cloud:
/// - `repo:push` → one [`Event::Push`](greg_core::Event::Push) per updated or created branch;
///   tags and deleted branches are skipped (all skipped: ignored).
/// - `pullrequest:created`, `:updated`, `:fulfilled`, `:rejected` → unresolved pull-request
///   events (opened, synchronize, closed merged, closed), since the payload abbreviates the
///   head.
/// - `pullrequest:approved`, `:unapproved`, `:changes_request_created` → unresolved reviews
///   (approved, dismissed, changes requested), bound to the head at that moment.
/// - `pullrequest:comment_created` → [`Event::Comment`](greg_core::Event::Comment).
/// - anything else → ignored (the body must still be JSON).
///
/// Server/Data Center:
/// - `repo:refs_changed` → one push per `ADD`ed or `UPDATE`d branch; deletions and tags skipped.
/// - `pr:opened`, `pr:from_ref_updated`, `pr:merged`, `pr:declined`, `pr:deleted` → pull-request
///   events (opened, synchronize, closed merged, closed, closed); `pr:modified` with a changed
///   target branch → retargeted.
/// - `pr:reviewer:approved`, `:unapproved`, `:needs_work` → reviews bound to the head of the
///   payload's pull request.
/// - `pr:comment:added` → comment.
/// - `diagnostics:ping` and anything else → ignored.
///
/// # Errors
/// [`WebhookError::MissingHeader`] without an event name; [`WebhookError::Malformed`] when
/// the body is not JSON or lacks a field greg needs, with the JSON path (e.g.
/// `invalid pr:from_ref_updated payload at pullRequest.fromRef.latestCommit: not a full commit
/// sha ...`). A field greg does not read is never a reason to fail.
pub fn parse(flavor: Flavor, headers: &Headers, body: &[u8]) -> Result<Parsed, WebhookError> {
    let header = headers
        .get(EVENT_HEADER)
        .map(str::trim)
        .filter(|e| !e.is_empty());
    match flavor {
        Flavor::Cloud => {
            let event = header.ok_or_else(|| {
                WebhookError::MissingHeader("missing X-Event-Key header".to_owned())
            })?;
            cloud::parse(event, body)
        }
        Flavor::Server => {
            let event = match header {
                Some(e) => e.to_owned(),
                None => server::event_key(body)?.ok_or_else(|| {
                    WebhookError::MissingHeader(
                        "missing X-Event-Key header and eventKey field".to_owned(),
                    )
                })?,
            };
            server::parse(&event, body)
        }
    }
}

/// Decodes the body of `event`, turning a failure into [`WebhookError::Malformed`].
fn decode<T: serde::de::DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, WebhookError> {
    wire::from_json(body).map_err(|err| {
        let event = printable(event);
        WebhookError::Malformed(if err.syntax {
            format!("{event} payload is {err}")
        } else {
            format!("invalid {event} payload {err}")
        })
    })
}

/// A [`WebhookError::Malformed`] for a problem found after decoding (`detail` starts with
/// `at <path>:`).
fn malformed(event: &str, detail: &str) -> WebhookError {
    WebhookError::Malformed(format!("invalid {} payload {detail}", printable(event)))
}

fn ignored(reason: impl Into<String>) -> Parsed {
    Parsed::Ignored {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests;
