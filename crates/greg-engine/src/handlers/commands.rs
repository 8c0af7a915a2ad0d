//! Comment commands: permission check, then one action per command (SPEC §4).
//!
//! Politeness (SPEC §9): with `repos[].comments: false` on a provider that has reactions
//! (GitHub), greg answers a comment's commands with reactions instead of comments: 👀 when
//! it recognises a command, then 🚀 when every command was carried out or 😕 when one was
//! refused (permission, the rules, a command it cannot parse). Without reactions (Bitbucket)
//! it answers with comments as usual. With `repos[].delete_commands: true` the comment is
//! deleted once every command in it was carried out; a refused command's comment stays, next
//! to greg's answer. Reactions and the deletion are direct calls, as the answers are, and
//! best effort: a failure is logged and the commands stand. A repeated delivery does not
//! react twice: a reaction is idempotent (GitHub keeps one per user and content).

use super::builds::{self, BuildRequest, Started, set_status};
use super::staging;
use super::{HandlerError, RepoCtx, backend};
use crate::Inner;
use crate::texts;
use greg_command::{Addressing, Command};
use greg_config::MergeMode;
use greg_core::{
    Blocker, BuildContext, CommentEvent, CommentId, CommitState, Login, Permission, PrNumber,
    PullRequest, Reaction,
};
use greg_store::{BuildChange, BuildRunState, QueueKind};
use std::collections::HashMap;

/// Handles a new pull-request comment.
pub(crate) async fn on_comment(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    c: &CommentEvent,
) -> Result<(), HandlerError> {
    let addressing = Addressing {
        bot_name: inner.config.server.bot_name.clone(),
        bot_login: ctx.provider.bot_login().cloned(),
    };
    let commands = greg_command::parse_comment(&c.body, &c.author, &addressing);
    if commands.is_empty() {
        return Ok(());
    }
    let reactions = !ctx.cfg.comments && ctx.provider.capabilities().reactions;
    let mut session = Session {
        inner,
        ctx,
        pr_number: c.pr,
        comment_id: c.comment_id,
        author: &c.author,
        pr: None,
        allowed: None,
        permissions: HashMap::new(),
        refused: false,
    };
    if reactions {
        session.react(Reaction::Eyes).await;
    }
    for parsed in commands {
        match parsed {
            Ok(cmd) => session.run(cmd).await?,
            Err(e) => {
                tracing::info!(error = %e, "Comment holds a command greg cannot parse");
                session
                    .refuse(&texts::command_error(
                        &e.to_string(),
                        &inner.config.server.bot_name,
                    ))
                    .await?;
            }
        }
    }
    if ctx.cfg.delete_commands && !session.refused {
        session.delete().await;
    } else if reactions {
        let done = if session.refused {
            Reaction::Confused
        } else {
            Reaction::Rocket
        };
        session.react(done).await;
    }
    Ok(())
}

/// State shared by the commands of one comment: the pull request and the author's permission
/// are read at most once.
struct Session<'a> {
    inner: &'a Inner,
    ctx: &'a RepoCtx<'a>,
    pr_number: PrNumber,
    /// The comment the commands are in.
    comment_id: CommentId,
    author: &'a Login,
    pr: Option<PullRequest>,
    allowed: Option<bool>,
    /// Permissions read during this comment (the commenter is often also the approver).
    permissions: HashMap<Login, Permission>,
    /// A command of the comment was refused (not carried out).
    refused: bool,
}

impl Session<'_> {
    /// Answers on the pull request: a comment, unless `comments: false` (then the reactions
    /// answer, where the provider has them; where it has not, the comment is posted anyway).
    async fn comment(&self, body: &str) -> Result<(), HandlerError> {
        if self.ctx.cfg.comments || self.ctx.provider.capabilities().reactions {
            return super::comment(self.ctx, self.pr_number, body).await;
        }
        self.ctx
            .provider
            .post_comment(self.ctx.repo, self.pr_number, body)
            .await
            .map_err(backend(&self.ctx.provider))?;
        Ok(())
    }

    /// Answers a command greg does not carry out: [`Self::comment`], and the comment gets 😕
    /// rather than 🚀 and is not deleted.
    async fn refuse(&mut self, body: &str) -> Result<(), HandlerError> {
        self.refused = true;
        self.comment(body).await
    }

    /// Puts `reaction` on the command's comment; a failure is logged, not returned.
    async fn react(&self, reaction: Reaction) {
        let p = &self.ctx.provider;
        match p
            .add_reaction(self.ctx.repo, self.pr_number, self.comment_id, reaction)
            .await
        {
            Ok(()) => {
                tracing::debug!(comment = %self.comment_id, reaction = reaction.as_str(), "Reacted to the command");
            }
            Err(e) => {
                tracing::warn!(comment = %self.comment_id, reaction = reaction.as_str(), error = %e, "Cannot react to the command's comment");
            }
        }
    }

    /// Deletes the command's comment (`delete_commands`); a failure is logged, not returned.
    async fn delete(&self) {
        let p = &self.ctx.provider;
        match p
            .delete_comment(self.ctx.repo, self.pr_number, self.comment_id)
            .await
        {
            Ok(()) => {
                tracing::info!(comment = %self.comment_id, "Deleted the command's comment (delete_commands)");
            }
            Err(e) => {
                tracing::warn!(comment = %self.comment_id, error = %e, "Cannot delete the command's comment");
            }
        }
    }

    /// A user's permission, read at most once per comment.
    async fn permission(&mut self, user: &Login) -> Result<Permission, HandlerError> {
        if let Some(p) = self.permissions.get(user) {
            return Ok(*p);
        }
        let p = self
            .ctx
            .provider
            .permission(self.ctx.repo, user)
            .await
            .map_err(backend(&self.ctx.provider))?;
        self.permissions.insert(user.clone(), p);
        Ok(p)
    }

    async fn pull_request(&mut self) -> Result<PullRequest, HandlerError> {
        if let Some(pr) = &self.pr {
            return Ok(pr.clone());
        }
        let pr = self
            .ctx
            .provider
            .pull_request(self.ctx.repo, self.pr_number)
            .await
            .map_err(backend(&self.ctx.provider))?;
        super::remember_title(self.inner, self.ctx.repo, &pr).await?;
        self.pr = Some(pr.clone());
        Ok(pr)
    }

    /// Write permission, or a configured reviewer (config.yaml or /project), or a reviewer
    /// named by "@greg review".
    async fn is_allowed(&mut self) -> Result<bool, HandlerError> {
        if let Some(a) = self.allowed {
            return Ok(a);
        }
        let store = &self.inner.store;
        let allowed = self.ctx.cfg.reviewers.contains(self.author)
            || store
                .project_reviewers(self.ctx.repo)
                .await?
                .contains(self.author)
            || store
                .required_reviewers(self.ctx.repo, self.pr_number)
                .await?
                .contains(self.author)
            || self.permission(self.author).await?.can_write();
        self.allowed = Some(allowed);
        Ok(allowed)
    }

    /// SPEC §4: reviewers without write permission (configured, or named by "@greg review")
    /// may use `ok`, `lgtm`, `not lgtm` and `help` only. Everything that acts on the queue,
    /// the builds or the branch (`please`, `try`, `p=`, `treeclosed`, `treeopen`, `retest`,
    /// `review`) needs write permission; `cancel` too, unless it withdraws the author's own
    /// request.
    async fn may_run(&mut self, cmd: &Command) -> Result<bool, HandlerError> {
        match cmd {
            Command::Help | Command::Ok | Command::Lgtm | Command::NotLgtm => return Ok(true),
            _ => {}
        }
        if self.permission(self.author).await?.can_write() {
            return Ok(true);
        }
        if matches!(cmd, Command::Cancel) {
            for kind in [QueueKind::Merge, QueueKind::Try] {
                let entry = self
                    .inner
                    .store
                    .active_queue_entry(self.ctx.repo, self.pr_number, kind)
                    .await?;
                if entry.is_some_and(|e| &e.approver == self.author) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    async fn run(&mut self, cmd: Command) -> Result<(), HandlerError> {
        if !matches!(cmd, Command::Help) && !self.is_allowed().await? {
            tracing::info!(author = %self.author, command = cmd.kind().name(), "Command refused: no write permission");
            return self
                .refuse(&texts::not_allowed(self.author, cmd.kind().name()))
                .await;
        }
        if !self.may_run(&cmd).await? {
            tracing::info!(author = %self.author, command = cmd.kind().name(), "Command refused: it needs write permission");
            return self
                .refuse(&texts::write_permission_needed(
                    self.author,
                    cmd.kind().name(),
                ))
                .await;
        }
        tracing::info!(author = %self.author, command = cmd.kind().name(), "Running command");
        match cmd {
            Command::Help => {
                self.comment(&texts::help(&self.inner.config.server.bot_name))
                    .await
            }
            Command::Ok => {
                let pr = self.pull_request().await?;
                let blockers = self.blockers(&pr, None).await?;
                self.comment(&texts::mergeability(&pr.head_sha, &blockers))
                    .await
            }
            Command::Merge { branch, priority } => {
                self.merge(branch, priority, BuildContext::Merge).await
            }
            Command::Try => self.merge(None, None, BuildContext::Try).await,
            Command::Review { reviewers } => {
                self.inner
                    .store
                    .add_required_reviewers(self.ctx.repo, self.pr_number, &reviewers)
                    .await?;
                self.comment(&texts::reviewers_added(&reviewers)).await
            }
            Command::Lgtm => {
                let pr = self.pull_request().await?;
                let now = self.inner.now_ms();
                self.inner
                    .store
                    .set_approval(
                        self.ctx.repo,
                        self.pr_number,
                        self.author,
                        &pr.head_sha,
                        now,
                    )
                    .await?;
                Ok(())
            }
            Command::NotLgtm => {
                self.inner
                    .store
                    .remove_approval(self.ctx.repo, self.pr_number, self.author)
                    .await?;
                // The rules hold until landing (SPEC §5): a queued merge may no longer.
                staging::recheck(self.inner, self.ctx, self.pr_number).await
            }
            Command::Retest => self.retest().await,
            Command::Cancel => self.cancel().await,
            Command::Priority { priority } => self.priority(priority).await,
            Command::TreeClosed { priority } => self.tree_closed(priority).await,
            Command::TreeOpen => self.tree_open().await,
        }
    }

    /// Every blocker of SPEC §5 for `pr`, optionally merging into another target branch.
    async fn blockers(
        &mut self,
        pr: &PullRequest,
        target: Option<&str>,
    ) -> Result<Vec<Blocker>, HandlerError> {
        super::mergeable::blockers(self.inner, self.ctx, pr, target, &mut self.permissions).await
    }

    /// "@greg please" (context merge) and "@greg try" (context try): the merge job, when mergeable.
    async fn merge(
        &mut self,
        branch: Option<String>,
        priority: Option<u32>,
        context: BuildContext,
    ) -> Result<(), HandlerError> {
        let pr = self.pull_request().await?;
        let explicit = branch
            .as_ref()
            .map(|b| format!(" branch={b}"))
            .unwrap_or_default();
        let target = branch.unwrap_or_else(|| pr.base_ref.clone());
        let blockers = self.blockers(&pr, Some(&target)).await?;
        if context == BuildContext::Merge && !blockers.is_empty() {
            return self
                .refuse(&texts::mergeability(&pr.head_sha, &blockers))
                .await;
        }
        let Some(job) = self.ctx.cfg.jobs.merge.clone() else {
            return self.refuse(&texts::no_merge_job()).await;
        };
        if self.ctx.cfg.merge_mode == MergeMode::Staging {
            let (kind, word) = match context {
                BuildContext::Try => (QueueKind::Try, "try".to_owned()),
                _ => (
                    QueueKind::Merge,
                    match priority {
                        Some(p) => format!("please p={p}{explicit}"),
                        None => format!("please{explicit}"),
                    },
                ),
            };
            let req = staging::Request {
                pr: &pr,
                kind,
                target: &target,
                approver: self.author,
                command: format!("@{} {word}", self.inner.config.server.bot_name),
                priority: priority.map_or(0, |p| i32::try_from(p).unwrap_or(i32::MAX)),
            };
            return staging::request(self.inner, self.ctx, req).await;
        }
        let req = BuildRequest {
            pr: Some(pr.number),
            sha: &pr.head_sha,
            context,
            branch: &pr.head_ref,
            target: Some(&target),
            job: &job,
            source_repo: pr.head_repo.as_ref().unwrap_or(self.ctx.repo),
            force: true,
        };
        match builds::start_build(self.inner, self.ctx, req).await? {
            Started::Triggered if context == BuildContext::Merge => {
                self.comment(&texts::merge_started(
                    &pr.head_sha,
                    &target,
                    job.name.as_str(),
                ))
                .await
            }
            Started::Triggered => {
                self.comment(&texts::try_started(
                    &pr.head_sha,
                    &target,
                    job.name.as_str(),
                ))
                .await
            }
            Started::AlreadyActive(_) | Started::AlreadyBuilt(_) => {
                self.comment(&texts::already_merging(&pr.head_sha)).await
            }
            Started::Refused(reason) => {
                self.refuse(&texts::build_not_started(
                    &pr.head_sha,
                    context.as_str(),
                    &reason,
                ))
                .await
            }
        }
    }

    async fn retest(&mut self) -> Result<(), HandlerError> {
        let pr = self.pull_request().await?;
        let Some(job) = self.ctx.cfg.jobs.test.clone() else {
            return Ok(());
        };
        let req = BuildRequest {
            pr: Some(pr.number),
            sha: &pr.head_sha,
            context: BuildContext::Test,
            branch: &pr.head_ref,
            target: Some(&pr.base_ref),
            job: &job,
            source_repo: pr.head_repo.as_ref().unwrap_or(self.ctx.repo),
            force: true,
        };
        match builds::start_build(self.inner, self.ctx, req).await? {
            Started::AlreadyActive(_) | Started::AlreadyBuilt(_) => {
                self.comment(&texts::already_building(&pr.head_sha)).await
            }
            Started::Refused(reason) => {
                self.refuse(&texts::build_not_started(&pr.head_sha, "test", &reason))
                    .await
            }
            Started::Triggered => Ok(()),
        }
    }

    /// "@greg p=N": re-orders the pull request in its queue (merge_mode staging).
    async fn priority(&mut self, priority: u32) -> Result<(), HandlerError> {
        if self.ctx.cfg.merge_mode != MergeMode::Staging {
            return self.refuse(&texts::priority_without_queue(priority)).await;
        }
        let p = i32::try_from(priority).unwrap_or(i32::MAX);
        match staging::set_priority(self.inner, self.ctx, self.pr_number, p).await? {
            Some((head, position)) => self.comment(&texts::priority_set(&head, p, position)).await,
            None => self.refuse(&texts::not_queued(priority)).await,
        }
    }

    /// "@greg treeclosed=N": merges into this pull request's target below priority N wait.
    async fn tree_closed(&mut self, priority: u32) -> Result<(), HandlerError> {
        let pr = self.pull_request().await?;
        let p = i32::try_from(priority).unwrap_or(i32::MAX);
        let now = self.inner.now_ms();
        self.inner
            .store
            .set_tree_closure(self.ctx.repo, &pr.base_ref, p, self.author, now)
            .await?;
        tracing::info!(target = %pr.base_ref, priority = p, by = %self.author, "Tree closed");
        let mut plan = crate::outbox::Plan::default();
        super::notify::tree_closed(
            self.inner,
            self.ctx,
            self.comment_id,
            self.pr_number,
            &pr.base_ref,
            p,
            self.author,
            &mut plan,
        );
        plan.record(self.inner).await?;
        staging::kick(self.inner, self.ctx);
        self.comment(&texts::tree_closed(&pr.base_ref, p)).await
    }

    /// "@greg treeopen": lifts the closure of this pull request's target; waiting merges start.
    async fn tree_open(&mut self) -> Result<(), HandlerError> {
        let pr = self.pull_request().await?;
        self.inner
            .store
            .clear_tree_closure(self.ctx.repo, &pr.base_ref)
            .await?;
        tracing::info!(target = %pr.base_ref, by = %self.author, "Tree opened");
        staging::kick(self.inner, self.ctx);
        self.comment(&texts::tree_opened(&pr.base_ref)).await
    }

    /// Withdraws the merge request: stops merge and try builds, marks them failed.
    async fn cancel(&mut self) -> Result<(), HandlerError> {
        let mut stopped =
            super::exits::cancel(self.inner, self.ctx, self.pr_number, self.author).await?;
        for b in self
            .inner
            .store
            .active_builds_for_pr(self.ctx.repo, self.pr_number)
            .await?
        {
            if b.context == BuildContext::Test {
                continue;
            }
            builds::stop(self.inner, &b).await;
            let change = BuildChange {
                state: Some(BuildRunState::Aborted),
                ..Default::default()
            };
            self.inner
                .store
                .update_build(b.id, &change, self.inner.now_ms())
                .await?;
            let desc = format!("cancelled by @{}", self.author);
            set_status(
                self.inner,
                self.ctx,
                &b.sha,
                b.context,
                CommitState::Failure,
                &desc,
                b.url.as_deref(),
            )
            .await?;
            stopped += 1;
        }
        self.comment(&texts::cancelled(self.author, stopped)).await
    }
}
