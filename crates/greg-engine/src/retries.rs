//! Durable retries and dead letters (SPEC §11 "Retries").
//!
//! A delivery whose handling fails for a retryable reason (5xx, timeouts, rate limits, the
//! store) gets a few quick attempts in its lane (`dispatch::with_retries`, a few seconds at
//! most). If those fail too, the failure is written on the delivery row with the time of its
//! next attempt, and the lane moves on to the repository's next delivery. The retry timer
//! ([`timer`]) claims due deliveries from the store every [`RETRY_TICK`] and hands them to
//! their lane again; because the schedule lives in the store, it survives a restart. Delays
//! grow exponentially from `EngineOptions::retry_delay` with jitter, a server's `Retry-After`
//! is honoured, and no delay exceeds [`MAX_RETRY_DELAY`]. Once `server.retry_window` has passed
//! since the delivery was received (or redelivered), the next failure dead-letters it: state
//! `failed`, its error kept, listed by `GET /api/deliveries?state=failed` until someone
//! redelivers it. A non-retryable failure is dead-lettered at once.
//!
//! When a dead letter carried a person's command (a pull-request comment addressed to greg),
//! greg tells them in a comment on the pull request, once: the notice is stored with the dead
//! letter and posted at once, or by the next reconciliation if posting fails.

use crate::dispatch::Work;
use crate::handlers::{self, HandlerError};
use crate::{Inner, texts};
use greg_core::Event;
use greg_store::Delivery;
use std::hash::{BuildHasher, Hasher};
use std::sync::Weak;
use std::time::Duration;

/// Longest wait between two attempts, whatever a server's `Retry-After` asks for.
pub(crate) const MAX_RETRY_DELAY: Duration = Duration::from_secs(120);

/// How often the retry timer looks for due deliveries.
pub(crate) const RETRY_TICK: Duration = Duration::from_secs(1);

/// Most deliveries the timer claims per tick.
const CLAIM_BATCH: i64 = 256;

/// Decodes a stored delivery and submits it to its lane; one that does not decode fails.
pub(crate) async fn submit_stored(inner: &Inner, d: Delivery) {
    if !inner.claims.claim(d.seq) {
        // This process has it in hand already, or finished it since the store was read.
        return;
    }
    match serde_json::from_str::<Event>(&d.payload) {
        Ok(event) => inner.submit(Work::Delivery {
            seq: d.seq,
            source: d.source,
            attempts: d.attempts,
            event: Box::new(event),
        }),
        Err(e) => {
            tracing::error!(seq = d.seq, error = %e, "Stored delivery does not decode; marking it failed");
            let error = format!("undecodable payload: {e}");
            if let Err(e) = inner
                .store
                .dead_letter(d.seq, 0, &error, None, inner.now_ms())
                .await
            {
                tracing::error!(seq = d.seq, error = %e, "Could not mark the delivery failed");
            }
        }
    }
}

/// Submits every delivery whose scheduled retry is due now.
pub(crate) async fn run_due(inner: &Inner) {
    loop {
        let due = match inner
            .store
            .claim_due_deliveries(inner.now_ms(), CLAIM_BATCH)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "Cannot read the deliveries due for a retry");
                return;
            }
        };
        let full = due.len() as i64 >= CLAIM_BATCH;
        for d in due {
            tracing::info!(seq = d.seq, attempts = d.attempts, "Retrying a delivery");
            // Handed out once by the store (the schedule is cleared in the same statement).
            inner.claims.forget(d.seq);
            submit_stored(inner, d).await;
        }
        if !full {
            return;
        }
    }
}

/// Claims due retries every [`RETRY_TICK`] until the engine stops.
pub(crate) async fn timer(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(RETRY_TICK).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.is_stopping() {
            return;
        }
        run_due(&inner).await;
    }
}

/// A delivery `seq` (with `attempts` failed attempts before this run) failed `tries` more
/// times with `error`: schedules its next attempt, or dead-letters it.
pub(crate) async fn on_failure(
    inner: &Inner,
    seq: i64,
    source: &str,
    event: &Event,
    attempts: i64,
    tries: u32,
    error: &HandlerError,
) {
    let now = inner.now_ms();
    let text = scrub(inner, &error.to_string());
    let tries = i64::from(tries);
    if error.is_retryable() {
        let start = match inner.store.retry_window_start(seq).await {
            Ok(Some(start)) => start,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "Cannot read the retry window; the delivery runs again after a restart");
                return;
            }
        };
        let window =
            i64::try_from(inner.config.server.retry_window.as_millis()).unwrap_or(i64::MAX);
        let deadline = start.saturating_add(window);
        if now < deadline {
            let delay = next_delay(inner, attempts + tries, error.retry_after());
            let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            let next = now.saturating_add(delay_ms).min(deadline);
            match inner.store.schedule_retry(seq, tries, next, &text).await {
                Ok(()) => {
                    tracing::warn!(error = %text, attempt = attempts + tries, retry_in_ms = next - now, "Delivery failed; retry scheduled")
                }
                Err(e) => {
                    tracing::error!(error = %e, "Could not schedule the retry; the delivery runs again after a restart")
                }
            }
            return;
        }
        tracing::error!(error = %text, attempt = attempts + tries, "Delivery failed for the whole retry window; dead-lettered");
    } else {
        tracing::error!(error = %text, attempt = attempts + tries, "Delivery failed for good; dead-lettered");
    }
    let notice = carries_command(inner, source, event).then(|| error_kind(error));
    if let Err(e) = inner
        .store
        .dead_letter(seq, tries, &text, notice.as_deref(), now)
        .await
    {
        tracing::error!(error = %e, "Could not mark the delivery failed; it runs again after a restart");
        return;
    }
    if let (Some(kind), Event::Comment(c)) = (notice, event) {
        post_notice(inner, seq, source, c, &kind).await;
    }
}

/// The delay before attempt number `failed + 1`: `retry_delay` doubled per failed attempt,
/// with jitter (between half and all of it), or the server's `Retry-After`; at most
/// [`MAX_RETRY_DELAY`].
fn next_delay(inner: &Inner, failed: i64, retry_after: Option<Duration>) -> Duration {
    if let Some(d) = retry_after {
        return d.min(MAX_RETRY_DELAY);
    }
    let exponent = u32::try_from(failed.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let full = inner
        .options
        .retry_delay
        .saturating_mul(1 << exponent)
        .min(MAX_RETRY_DELAY);
    // Jitter from the standard library's randomly keyed hasher: no RNG dependency needed.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(failed);
    let fraction = (h.finish() % 1_000) as u32;
    full / 2 + (full / 2) * fraction / 1_000
}

/// Whether `event` is a pull-request comment that addresses greg with a command.
fn carries_command(inner: &Inner, source: &str, event: &Event) -> bool {
    let Event::Comment(c) = event else {
        return false;
    };
    let addressing = greg_command::Addressing {
        bot_name: inner.config.server.bot_name.clone(),
        bot_login: inner
            .providers
            .get(source)
            .and_then(|p| p.bot_login().cloned()),
    };
    !greg_command::parse_comment(&c.body, &c.author, &addressing).is_empty()
}

/// The kind of a failure, for people: the backend and what went wrong, never a message.
pub(crate) fn error_kind(e: &HandlerError) -> String {
    use greg_core::Error as E;
    match e {
        HandlerError::Backend { backend, source } => {
            let what = match source {
                E::NotFound { .. } => "something it needed was not found",
                E::Conflict { .. } => "a conflict",
                E::PreconditionFailed { .. } => "a failed precondition",
                E::Unauthenticated { .. } => "greg's credentials were refused",
                E::PermissionDenied { .. } => "greg lacks the permission",
                E::Refused { .. } => "refused by a rule of the provider",
                E::RateLimited { .. } => "rate limited",
                E::Transient { .. } => "unavailable (server errors or timeouts)",
                E::NotSupported { .. } => "an operation it does not support",
                E::InvalidConfig { .. } => "greg's configuration for it is invalid",
                E::Protocol { .. } => "an answer greg could not understand",
            };
            // The backend's name only: its display may carry an internal URL (Jenkins).
            let name = backend.split('(').next().unwrap_or(backend).trim();
            format!("{name}: {what}")
        }
        HandlerError::Store(_) => "greg's database failed".to_owned(),
        HandlerError::Config(_) => "greg's configuration".to_owned(),
    }
}

/// Posts the dead-letter notice of delivery `seq` on the comment's pull request and records
/// it; on failure it stays due for the next reconciliation.
async fn post_notice(
    inner: &Inner,
    seq: i64,
    source: &str,
    c: &greg_core::CommentEvent,
    kind: &str,
) {
    let Some(ctx) = handlers::repo_ctx(inner, source, &c.repo) else {
        // Not configured any more: nobody to tell through greg.
        let _ = inner.store.notice_posted(seq, inner.now_ms()).await;
        return;
    };
    let body = texts::command_dead_lettered(&c.author, kind, seq);
    match handlers::comment(&ctx, c.pr, &body).await {
        Ok(()) => {
            tracing::info!(seq, pr = %c.pr, "Told the commenter that the command could not be carried out");
            if let Err(e) = inner.store.notice_posted(seq, inner.now_ms()).await {
                tracing::error!(seq, error = %e, "Could not record the posted notice; it may be posted again");
            }
        }
        Err(e) => {
            tracing::warn!(seq, error = %scrub(inner, &e.to_string()), "Could not post the dead-letter notice; reconciliation retries");
        }
    }
}

/// Posts the due dead-letter notices of `repo` (called by reconciliation, in its lane).
pub(crate) async fn post_due_notices(inner: &Inner, repo: &greg_core::RepoName) {
    let due = match inner.store.due_notices(&repo.to_string()).await {
        Ok(due) => due,
        Err(e) => {
            tracing::error!(error = %e, "Cannot read the due dead-letter notices");
            return;
        }
    };
    for n in due {
        match serde_json::from_str::<Event>(&n.payload) {
            Ok(Event::Comment(c)) => post_notice(inner, n.seq, &n.source, &c, &n.notice).await,
            _ => {
                let _ = inner.store.notice_posted(n.seq, inner.now_ms()).await;
            }
        }
    }
}

/// `text` with every configured secret replaced by `***`: a second line of defence behind
/// the adapters, which never put credentials in their errors.
pub(crate) fn scrub(inner: &Inner, text: &str) -> String {
    let c = &inner.config;
    let mut secrets: Vec<&greg_core::Secret> = Vec::new();
    if let Some(g) = &c.providers.github {
        secrets.extend([&g.password, &g.incoming_token]);
        secrets.extend(g.webhook_secret.as_ref());
        secrets.extend(g.app.as_ref().map(|a| &a.private_key));
    }
    if let Some(b) = &c.providers.bitbucket {
        secrets.extend([&b.password, &b.incoming_token]);
        secrets.extend(b.webhook_secret.as_ref());
    }
    if let Some(j) = &c.builders.jenkins {
        secrets.extend([&j.password, &j.incoming_token]);
    }
    secrets.extend(c.server.admin_token.as_ref());
    let mut out = text.to_owned();
    for s in secrets {
        // Very short values would blank out ordinary words; adapters never echo them anyway.
        if s.expose().len() >= 4 {
            out = out.replace(s.expose(), "***");
        }
    }
    out
}
