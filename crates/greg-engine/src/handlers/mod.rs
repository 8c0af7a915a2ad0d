//! Event handlers: what greg does for each normalized event. Called from a repository's lane,
//! so handlers for one repository never run concurrently.

mod builds;
mod candidates;
mod commands;
pub(crate) mod exits;
mod mergeable;
pub(crate) mod notify;
mod reconcile;
pub(crate) mod staging;

pub(crate) use reconcile::reconcile;

/// Drives the repository (the `Work::Queue` item): performs its due effects (the outbox),
/// then its merge queues' steps.
pub(crate) async fn drive_queue(inner: &Inner, repo: &RepoName) -> Result<(), HandlerError> {
    match builds::ctx_for(inner, repo) {
        Some(ctx) => {
            crate::outbox::run_due(inner, &ctx).await?;
            staging::resume(inner, &ctx).await
        }
        None => crate::outbox::abandon(inner, repo).await,
    }
}

pub(crate) use builds::{completed_grace, find_build, poll_build, set_status, stop as stop_build};

use crate::Inner;
use crate::dispatch::Work;
use greg_config::RepoConfig;
use greg_core::{Event, Provider, PullRequestAction, RepoName};
use std::sync::Arc;
use std::time::Duration;

/// Why handling failed. Retryable failures are retried by the lane; the rest fail the delivery.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandlerError {
    #[error("{backend}: {source}")]
    Backend {
        backend: String,
        #[source]
        source: greg_core::Error,
    },
    #[error("store: {0}")]
    Store(#[from] greg_store::StoreError),
    #[error("{0}")]
    Config(String),
}

impl HandlerError {
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            HandlerError::Backend { source, .. } => source.is_retryable(),
            HandlerError::Store(greg_store::StoreError::Fenced { .. }) => false,
            HandlerError::Store(_) => true,
            HandlerError::Config(_) => false,
        }
    }

    /// True when the step stopped because this replica no longer holds the repository's
    /// lease (a fenced write, or the lease ran out locally): the work belongs to the replica
    /// that took over, and nothing about it may be written here.
    pub(crate) fn is_lease_lost(&self) -> bool {
        matches!(
            self,
            HandlerError::Store(greg_store::StoreError::Fenced { .. })
        )
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            HandlerError::Backend { source, .. } => source.retry_after(),
            _ => None,
        }
    }
}

/// Tags a backend error with the backend's display name.
pub(crate) fn backend(
    who: &dyn std::fmt::Display,
) -> impl FnOnce(greg_core::Error) -> HandlerError + '_ {
    move |source| HandlerError::Backend {
        backend: who.to_string(),
        source,
    }
}

/// Posts a comment on pull request `pr`, unless the repository has `comments: false`.
pub(crate) async fn comment(
    ctx: &RepoCtx<'_>,
    pr: greg_core::PrNumber,
    body: &str,
) -> Result<(), HandlerError> {
    if !ctx.cfg.comments {
        return Ok(());
    }
    ctx.provider
        .post_comment(ctx.repo, pr, body)
        .await
        .map_err(backend(&ctx.provider))?;
    Ok(())
}

/// A configured repository with its provider: the context of every handler.
pub(crate) struct RepoCtx<'a> {
    pub repo: &'a RepoName,
    pub cfg: &'a RepoConfig,
    pub provider: Arc<dyn Provider>,
    pub provider_name: &'a str,
}

pub(crate) fn repo_ctx<'a>(
    inner: &'a Inner,
    provider_name: &'a str,
    repo: &'a RepoName,
) -> Option<RepoCtx<'a>> {
    let cfg = inner.config.repo(provider_name, repo)?;
    let provider = inner.providers.get(provider_name)?.clone();
    Some(RepoCtx {
        repo,
        cfg,
        provider,
        provider_name,
    })
}

/// Handles one delivery.
pub(crate) async fn handle(inner: &Inner, source: &str, event: &Event) -> Result<(), HandlerError> {
    if let Event::Build(update) = event {
        return builds::on_build_update(inner, source, update).await;
    }
    let Some(repo) = event.repository() else {
        return Ok(());
    };
    let Some(ctx) = repo_ctx(inner, source, repo) else {
        tracing::info!("Repository is not configured (any more); delivery ignored");
        return Ok(());
    };
    let resolved;
    let event = match event {
        Event::Unresolved(u) => match resolve(&ctx, u).await? {
            Some(e) => {
                resolved = e;
                &resolved
            }
            None => return Ok(()),
        },
        other => other,
    };
    match event {
        Event::Push(push) => builds::on_push(inner, &ctx, push).await,
        Event::PullRequest(e) => {
            remember_title(inner, ctx.repo, &e.pull_request).await?;
            on_pull_request(inner, &ctx, e).await
        }
        Event::Comment(c) => commands::on_comment(inner, &ctx, c).await,
        Event::Report(r) => crate::reports::on_report(inner, &ctx, r).await,
        Event::Review(r) => {
            tracing::info!(reviewer = %r.reviewer, state = ?r.state, "Review recorded by the provider; read on demand");
            match r.state {
                // An approval cannot break the rules; anything else may (SPEC §5).
                greg_core::ReviewState::Approved | greg_core::ReviewState::Commented => Ok(()),
                greg_core::ReviewState::ChangesRequested | greg_core::ReviewState::Dismissed => {
                    staging::recheck(inner, &ctx, r.pr).await
                }
            }
        }
        Event::Build(_) => Ok(()),
        Event::Unresolved(_) => Err(HandlerError::Config(format!(
            "{} resolved an event into another unresolved event",
            ctx.provider
        ))),
    }
}

/// A pull-request event: what its action calls for.
async fn on_pull_request(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    e: &greg_core::PullRequestEvent,
) -> Result<(), HandlerError> {
    match e.action {
        PullRequestAction::Opened
        | PullRequestAction::Synchronize
        | PullRequestAction::Reopened
        | PullRequestAction::ReadyForReview => {
            builds::on_new_head(inner, ctx, &e.pull_request).await
        }
        PullRequestAction::Closed { merged } => {
            builds::on_closed(inner, ctx, e.pull_request.number, merged).await
        }
        PullRequestAction::Retargeted => staging::retargeted(inner, ctx, &e.pull_request).await,
        PullRequestAction::ConvertedToDraft => {
            staging::recheck(inner, ctx, e.pull_request.number).await
        }
        // The title is all that changed, and it is recorded already.
        PullRequestAction::Edited => Ok(()),
    }
}

/// Records the title and author of `pr` as greg just saw it (a webhook, or a read from the
/// provider), for the queue and pull-request pages.
pub(crate) async fn remember_title(
    inner: &Inner,
    repo: &RepoName,
    pr: &greg_core::PullRequest,
) -> Result<(), HandlerError> {
    // Written only when it changed since this lane last wrote it (a new head repeats the
    // title; the write would queue behind the inbox on SQLite's one writer). Keyed by the
    // lease's epoch: after another replica held the repository, the title is written again.
    let epoch = greg_store::Fence::current().map_or(0, |f| f.epoch);
    let key = (repo.key(), pr.number.0);
    let seen = (epoch, pr.title.clone(), pr.author.as_str().to_owned());
    if let Ok(titles) = inner.titles.lock()
        && titles.get(&key) == Some(&seen)
    {
        return Ok(());
    }
    inner
        .store
        .save_pull_request_title(repo, pr.number, &pr.title, &pr.author, inner.now_ms())
        .await?;
    if let Ok(mut titles) = inner.titles.lock() {
        if titles.len() >= TITLES_REMEMBERED {
            titles.clear();
        }
        titles.insert(key, seen);
    }
    Ok(())
}

/// Most titles [`remember_title`] keeps in memory (then it forgets them all).
const TITLES_REMEMBERED: usize = 10_000;

/// Completes an unresolved event through its provider (Bitbucket Cloud: the full head of an
/// abbreviated hash), before anything acts on it. `None` when the provider no longer finds
/// what the event names (a force-push removed the commit since): the delivery is dropped, as
/// a later event carries the new head. Retryable errors retry the delivery.
async fn resolve(
    ctx: &RepoCtx<'_>,
    unresolved: &greg_core::Unresolved,
) -> Result<Option<Event>, HandlerError> {
    match ctx.provider.resolve(unresolved).await {
        Ok(event) => {
            tracing::info!(event = %event.name(), "Event resolved through the provider");
            Ok(Some(event))
        }
        Err(greg_core::Error::NotFound { what }) => {
            tracing::warn!(%what, event = %unresolved.what, "The provider no longer finds what the event names; delivery dropped");
            Ok(None)
        }
        Err(e) => Err(backend(&*ctx.provider)(e)),
    }
}

/// Finishes work that maps to no repository (a callback for a build greg never started).
pub(crate) async fn finish_unrouted(inner: &Inner, work: Work) {
    if let Work::Delivery { seq, event, .. } = work {
        tracing::info!(seq, event = %event.name(), "Callback for a build greg did not start; ignored");
        match inner
            .store
            .finish_delivery(seq, greg_store::DeliveryOutcome::Done, inner.now_ms())
            .await
        {
            // After the commit, so that no scan reads it pending again (`leases::Claims`).
            Ok(()) => inner.claims.finish(seq),
            Err(e) => {
                inner.claims.release(seq);
                tracing::error!(error = %e, "Could not mark the delivery finished");
            }
        }
    }
}
