//! Reconciliation: at start and every `server.reconcile_interval_secs`, greg re-reads what the
//! provider says about a repository's open pull requests and repairs drift, so a missed webhook
//! delays work but never corrupts it (homu approved stale commits, bors-ng lost events; bors
//! added a periodic sync for that reason).
//!
//! What is repaired, per repository:
//! - a queue entry whose pull request has a new head → it leaves the queue (as on a push);
//! - a queue entry whose pull request was closed → it leaves the queue;
//! - an open pull request whose head has no test build → the test build starts (a lost
//!   `opened`/`synchronize` delivery);
//! - the title and author of each queued pull request are recorded (for the pages);
//! - every in-flight queue entry redoes its current step (a staging ref made but not recorded,
//!   a fast-forward done but not recorded), then each queue starts what it can.
//!
//! Lost build callbacks are the build poller's job (`dispatch::poller`), not this module's.
//! One list call per repository and run; providers without a list operation (NotSupported)
//! skip the pull-request part.

use super::builds::{self, ctx_for};
use super::{HandlerError, backend, staging};
use crate::Inner;
use greg_core::{BuildContext, Error, PullRequestState, RepoName};

/// Reconciles one repository. Runs in the repository's lane, like a delivery.
pub(crate) async fn reconcile(inner: &Inner, repo: &RepoName) -> Result<(), HandlerError> {
    let Some(ctx) = ctx_for(inner, repo) else {
        return Ok(());
    };
    let open = match ctx.provider.open_pull_requests(repo).await {
        Ok(open) => Some(open),
        Err(Error::NotSupported { .. }) => None,
        Err(e) => return Err(backend(&ctx.provider)(e)),
    };
    if let Some(open) = open {
        for entry in inner
            .store
            .active_queue_entries()
            .await?
            .into_iter()
            .filter(|e| &e.repo == repo)
        {
            let listed = open.iter().find(|p| p.number == entry.pr);
            if let Some(pr) = listed {
                super::remember_title(inner, repo, pr).await?;
            }
            match listed {
                Some(pr) if pr.head_sha != entry.head_sha => {
                    tracing::warn!(pr = %pr.number, approved = %entry.head_sha, head = %pr.head_sha, "Reconcile: the head moved without a webhook; dropping the queue entry");
                    super::exits::on_new_head(inner, &ctx, pr).await?;
                }
                Some(_) => {}
                None => {
                    let pr = ctx
                        .provider
                        .pull_request(repo, entry.pr)
                        .await
                        .map_err(backend(&ctx.provider))?;
                    if pr.state != PullRequestState::Open {
                        tracing::warn!(pr = %pr.number, state = ?pr.state, "Reconcile: the pull request was closed without a webhook");
                        super::exits::on_closed(inner, &ctx, pr.number).await?;
                    }
                }
            }
        }
        if ctx.cfg.jobs.test.is_some() {
            for pr in &open {
                let fork = pr.head_repo.as_ref() != Some(repo);
                if fork && !ctx.cfg.allow_forks {
                    continue;
                }
                // Every test build sets `greg/test` on the head when it starts (a test_merged
                // build builds another commit, so the status is the common mark).
                let tested = inner
                    .store
                    .commit_status(repo, &pr.head_sha, BuildContext::Test.status_context())
                    .await?;
                let queued = inner
                    .store
                    .active_queue_entry(repo, pr.number, greg_store::QueueKind::Test)
                    .await?;
                if tested.is_none() && queued.is_none() {
                    tracing::warn!(pr = %pr.number, head = %pr.head_sha, "Reconcile: the head was never built (lost webhook?); starting its test build");
                    builds::on_new_head(inner, &ctx, pr).await?;
                }
            }
        }
    }
    staging::resume(inner, &ctx).await
}
