//! The reads SPEC §5's rules need (reviews, required reviewers, permissions, the head's test
//! status), gathered for `greg_core::mergeability`: used by "@greg ok" and "please", and again
//! before a queued pull request is staged and before it lands.

use super::{HandlerError, RepoCtx, backend};
use crate::Inner;
use greg_core::{
    Blocker, BuildContext, Login, MergeInput, Permission, PullRequest, approvals_from_reviews,
    mergeability,
};
use std::collections::HashMap;

/// Every blocker of SPEC §5 for `pr`, merging into `target` (default: its base). `permissions`
/// caches the permissions read (the commenter is often also the approver).
///
/// # Errors
/// A provider read failed; the store failed.
pub(crate) async fn blockers(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    pr: &PullRequest,
    target: Option<&str>,
    permissions: &mut HashMap<Login, Permission>,
) -> Result<Vec<Blocker>, HandlerError> {
    let reviews = ctx
        .provider
        .reviews(ctx.repo, pr.number)
        .await
        .map_err(backend(&ctx.provider))?;
    let mut required: Vec<Login> = ctx.cfg.reviewers.clone();
    // The reviewers edited on /project join `repos[].reviewers` (SPEC §9), then those named
    // by "@greg review".
    let stored = inner.store.project_reviewers(ctx.repo).await?;
    for l in stored
        .into_iter()
        .chain(inner.store.required_reviewers(ctx.repo, pr.number).await?)
    {
        if !required.contains(&l) {
            required.push(l);
        }
    }
    // GitHub lets anyone who can read the repository approve; as in GitHub's branch
    // protection, only the approvals of people who may command greg (write permission or
    // a required reviewer) count. "lgtm" approvals were checked when they were given.
    let mut approvals = Vec::new();
    for a in approvals_from_reviews(&reviews) {
        let counts = a.sha != pr.head_sha
            || required.contains(&a.login)
            || permission(ctx, &a.login, permissions).await?.can_write();
        if counts {
            approvals.push(a);
        } else {
            tracing::info!(reviewer = %a.login, "Approval by someone without write permission; not counted");
        }
    }
    approvals.extend(inner.store.approvals(ctx.repo, pr.number).await?);
    let test_status = inner
        .store
        .commit_status(ctx.repo, &pr.head_sha, BuildContext::Test.status_context())
        .await?;
    let mut pr = pr.clone();
    if let Some(t) = target {
        pr.base_ref = t.to_owned();
    }
    let target_branches = ctx.cfg.target_branches.as_deref();
    let input = MergeInput {
        repo: ctx.repo,
        pr: &pr,
        allow_forks: ctx.cfg.allow_forks,
        target_branches,
        required_reviewers: &required,
        required_approvals: ctx.cfg.required_approvals,
        approvals: &approvals,
        test_required: ctx.cfg.jobs.test.is_some(),
        test_status,
        bot: ctx.provider.bot_login(),
    };
    Ok(mergeability(&input))
}

/// A user's permission, read at most once per cache.
async fn permission(
    ctx: &RepoCtx<'_>,
    user: &Login,
    cache: &mut HashMap<Login, Permission>,
) -> Result<Permission, HandlerError> {
    if let Some(p) = cache.get(user) {
        return Ok(*p);
    }
    let p = ctx
        .provider
        .permission(ctx.repo, user)
        .await
        .map_err(backend(&ctx.provider))?;
    cache.insert(user.clone(), p);
    Ok(p)
}
