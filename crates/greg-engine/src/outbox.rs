//! The effect runner of the transactional outbox: performs, once, the effects a decision
//! recorded with its state change (see `greg_store::effects` for the storage side).
//!
//! Design note.
//! - Decide, persist, act: a handler decides an outcome (a queue entry failed, landed, left
//!   the queue), writes the new state *and* the [`Effect`]s it calls for in one transaction
//!   ([`Plan`] → `Store::transition_queue_entry`), and asks the repository's lane to run.
//!   The lane runs [`run_due`] before anything else, so effects go out in recording order
//!   right after the step that decided them.
//! - Once: each effect has a key naming its outcome (`queue:12:finish:comment`); the store
//!   writes a key once, and the runner marks an effect done after its call succeeded. A crash
//!   between the call and the mark repeats that one call on restart (at least once per key);
//!   a comment is never posted because a *step* was repeated.
//! - Retries: a retryable failure (5xx, timeout, rate limit) is retried with capped
//!   exponential backoff until `server.retry_window_secs` after the effect was recorded, then
//!   the effect is dead (logged at error, kept in the store). A non-retryable failure is dead
//!   at once. The retry schedule lives in the store, so it survives restarts; [`ticker`]
//!   wakes the lanes of repositories whose effects are due.
//! - Notifications (`repos[].notify`) are effects too: recorded with the queue exit (or the
//!   tree closure) that causes them, one per target under `<outcome>:notify:<index>`.
//! - Effects never block the queue: a dead comment does not stop the next pull request.

use crate::Inner;
use crate::handlers::{HandlerError, RepoCtx, backend};
use greg_core::{BuildContext, CommitState, PrNumber, RepoName, Sha};
use greg_store::{BuildChange, BuildRunState, EffectOutcome, NewEffect};
use serde::{Deserialize, Serialize};
use std::sync::Weak;
use std::time::Duration;

/// Longest wait between two attempts of one effect.
const MAX_EFFECT_DELAY: Duration = Duration::from_secs(120);
/// Effects performed per store read.
const BATCH: i64 = 64;

/// Something a decision calls for, performed by [`run_due`]. Stored as JSON
/// (`{"effect":"comment","pr":3,"body":"..."}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub(crate) enum Effect {
    /// A comment on a pull request (skipped with `comments: false`).
    Comment { pr: PrNumber, body: String },
    /// A commit status, also remembered in the store.
    Status {
        sha: Sha,
        context: BuildContext,
        state: CommitState,
        description: String,
        url: Option<String>,
    },
    /// Delete one of greg's own refs (`greg/...`) if it still points at `sha` (when given):
    /// the per-queue staging ref may already carry the next entry's commit by the time this
    /// runs. An absent ref is fine.
    DeleteRef { branch: String, sha: Option<Sha> },
    /// Stop a build in the builder and mark its record `mark` (a `BuildRunState` name) if it
    /// is still active.
    StopBuild { build_id: i64, mark: String },
    /// A chat notification to `repos[].notify[target]` of the repository (SPEC §9). Only the
    /// target's index is stored: its URL and secret are read from the configuration when the
    /// effect is performed, so no credential reaches the store.
    Notify {
        target: usize,
        event: Box<greg_notify::chat::ChatEvent>,
    },
}

impl Effect {
    fn kind(&self) -> &'static str {
        match self {
            Effect::Comment { .. } => "comment",
            Effect::Status { .. } => "status",
            Effect::DeleteRef { .. } => "delete_ref",
            Effect::StopBuild { .. } => "stop_build",
            Effect::Notify { .. } => "notify",
        }
    }
}

/// The effects of one decision, for one repository, keyed by outcome.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    effects: Vec<NewEffect>,
}

impl Plan {
    /// Adds `effect` under the unique outcome `key`.
    pub(crate) fn add(&mut self, repo: &RepoName, key: String, effect: &Effect) {
        match serde_json::to_string(effect) {
            Ok(payload) => self.effects.push(NewEffect {
                repo: repo.clone(),
                key,
                kind: effect.kind().to_owned(),
                payload,
            }),
            // Not reachable: every field serializes.
            Err(e) => tracing::error!(key, error = %e, "Effect does not serialize; dropped"),
        }
    }

    /// Adds a comment under `key`, unless `body` is empty.
    pub(crate) fn comment(&mut self, repo: &RepoName, key: String, pr: PrNumber, body: String) {
        if !body.is_empty() {
            self.add(repo, key, &Effect::Comment { pr, body });
        }
    }

    /// Adds a commit status under `key`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn status(
        &mut self,
        repo: &RepoName,
        key: String,
        sha: &Sha,
        context: BuildContext,
        state: CommitState,
        description: &str,
        url: Option<&str>,
    ) {
        let effect = Effect::Status {
            sha: sha.clone(),
            context,
            state,
            description: description.chars().take(140).collect(),
            url: url.map(str::to_owned),
        };
        self.add(repo, key, &effect);
    }

    /// The effects, for the store.
    pub(crate) fn effects(&self) -> &[NewEffect] {
        &self.effects
    }

    /// Records the effects on their own (no state change goes with them).
    pub(crate) async fn record(self, inner: &Inner) -> Result<(), HandlerError> {
        if !self.effects.is_empty() {
            inner
                .store
                .add_effects(&self.effects, inner.now_ms())
                .await?;
        }
        Ok(())
    }
}

/// Performs every due effect of the repository, in recording order. Provider and builder
/// failures are recorded on the effect (retried later, or dead); only a store failure is
/// returned.
pub(crate) async fn run_due(inner: &Inner, ctx: &RepoCtx<'_>) -> Result<(), HandlerError> {
    loop {
        let now = inner.now_ms();
        let due = inner.store.due_effects(ctx.repo, now, BATCH).await?;
        let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= BATCH;
        for e in due {
            // A replica that lost the repository's lease performs nothing more: the one that
            // took over performs the effect (see `leases.rs` for the window this leaves).
            crate::leases::ensure_held(inner)?;
            let outcome = match serde_json::from_str::<Effect>(&e.payload) {
                Ok(effect) => match perform(inner, ctx, &effect).await {
                    Ok(()) => EffectOutcome::Done,
                    Err(err) => judge(inner, &e, &err),
                },
                Err(err) => EffectOutcome::Dead {
                    error: format!("undecodable effect: {err}"),
                },
            };
            match &outcome {
                EffectOutcome::Done => {
                    tracing::debug!(effect = e.id, key = %e.key, "Effect performed");
                }
                EffectOutcome::Retry {
                    next_attempt_ms,
                    error,
                } => {
                    tracing::warn!(effect = e.id, key = %e.key, attempt = e.attempts + 1, %error, retry_in_ms = next_attempt_ms - now, "Effect failed; retrying later");
                }
                EffectOutcome::Dead { error } => {
                    tracing::error!(effect = e.id, key = %e.key, kind = %e.kind, attempts = e.attempts + 1, %error, "Effect failed for good; kept in the store as dead");
                }
            }
            inner
                .store
                .finish_effect(e.id, &outcome, inner.now_ms())
                .await?;
        }
        if !full {
            return Ok(());
        }
    }
}

/// Marks the due effects of a repository that is no longer configured dead (nobody can
/// perform them), so that the ticker does not wake its lane for ever.
pub(crate) async fn abandon(inner: &Inner, repo: &RepoName) -> Result<(), HandlerError> {
    let now = inner.now_ms();
    for e in inner.store.due_effects(repo, now, BATCH).await? {
        tracing::error!(effect = e.id, key = %e.key, %repo, "Effect of a repository that is no longer configured; kept in the store as dead");
        let dead = EffectOutcome::Dead {
            error: "the repository is no longer configured".to_owned(),
        };
        inner.store.finish_effect(e.id, &dead, now).await?;
    }
    Ok(())
}

/// Retry or dead, for a failed attempt at `e`.
fn judge(inner: &Inner, e: &greg_store::Effect, err: &HandlerError) -> EffectOutcome {
    let now = inner.now_ms();
    let window = i64::try_from(inner.config.server.retry_window.as_millis()).unwrap_or(i64::MAX);
    if !err.is_retryable() {
        return EffectOutcome::Dead {
            error: err.to_string(),
        };
    }
    if now.saturating_sub(e.created_ms) >= window {
        return EffectOutcome::Dead {
            error: format!("gave up after the retry window: {err}"),
        };
    }
    let base = inner.options.retry_delay.max(Duration::from_millis(10));
    let exp = base.saturating_mul(2u32.saturating_pow(e.attempts.min(16)));
    let delay = err.retry_after().unwrap_or(exp).min(MAX_EFFECT_DELAY);
    EffectOutcome::Retry {
        next_attempt_ms: now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
        error: err.to_string(),
    }
}

async fn perform(inner: &Inner, ctx: &RepoCtx<'_>, effect: &Effect) -> Result<(), HandlerError> {
    match effect {
        Effect::Comment { pr, body } => super::handlers::comment(ctx, *pr, body).await,
        Effect::Status {
            sha,
            context,
            state,
            description,
            url,
        } => {
            crate::handlers::set_status(
                inner,
                ctx,
                sha,
                *context,
                *state,
                description,
                url.as_deref(),
            )
            .await
        }
        Effect::DeleteRef { branch, sha } => {
            let p = &ctx.provider;
            if let Some(sha) = sha {
                let tip = p.branch_tip(ctx.repo, branch).await.map_err(backend(p))?;
                if tip.as_ref() != Some(sha) {
                    tracing::debug!(branch, "The ref moved on (or is gone); not deleted");
                    return Ok(());
                }
            }
            match p.delete_branch(ctx.repo, branch).await {
                Ok(()) | Err(greg_core::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(backend(p)(e)),
            }
        }
        Effect::StopBuild { build_id, mark } => {
            let Some(b) = inner.store.build(*build_id).await? else {
                return Ok(());
            };
            if !b.state.is_active() {
                return Ok(());
            }
            let state = BuildRunState::parse(mark).unwrap_or(BuildRunState::Aborted);
            let change = BuildChange {
                state: Some(state),
                ..Default::default()
            };
            inner
                .store
                .update_build(b.id, &change, inner.now_ms())
                .await?;
            crate::handlers::stop_build(inner, &b).await;
            Ok(())
        }
        Effect::Notify { target, event } => {
            crate::handlers::notify::send(inner, ctx, *target, event).await
        }
    }
}

/// Wakes the lane of every repository with due effects, every `tick`, until the engine is
/// dropped.
pub(crate) async fn ticker(inner: Weak<Inner>, tick: Duration) {
    loop {
        tokio::time::sleep(tick).await;
        let Some(inner) = inner.upgrade() else { return };
        match inner.store.repos_with_due_effects(inner.now_ms()).await {
            Ok(repos) => {
                for repo in repos {
                    inner.submit(crate::dispatch::Work::Queue { repo });
                }
            }
            Err(e) => tracing::warn!(error = %e, "Cannot list due effects; next tick retries"),
        }
    }
}
