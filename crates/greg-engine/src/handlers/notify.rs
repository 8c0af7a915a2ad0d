//! Chat notifications (`repos[].notify`, SPEC §9): which queue exits and tree closures are
//! announced, to which targets, in which words; and the effect that posts one.
//!
//! Design note.
//! - A notification is an outbox effect recorded in the same transaction as the change that
//!   causes it: [`on_moves`] is called by `exits::record_many` (the one place queue state
//!   changes) with the entries and their new states, [`tree_closed`] by the treeclosed
//!   command. So an exit is announced exactly when it is persisted, never twice: each
//!   notification's key is `<outcome>:notify:<index of the target>`.
//! - Only merges are announced (try and test_merged entries are not in the merge queue):
//!   Landed → `landed`, Failed → `failed`, Cancelled → `left_queue`. An entry going back to
//!   waiting (a target moved, a candidate split) has not left the queue.
//! - The stored effect holds the target's index and the event, not the URL: a Slack webhook's
//!   URL is its credential. [`send`] reads the target from the configuration when it posts.
//! - The texts live here (snapshot-tested below) rather than in `texts.rs`, which holds the
//!   comments on pull requests.

use super::{HandlerError, RepoCtx};
use crate::Inner;
use crate::outbox::{Effect, Plan};
use greg_config::{NotifyEvent, NotifyFormat};
use greg_core::{BuildContext, CommentId, Login, PrNumber};
use greg_notify::chat::{ChatEvent, ChatFormat, ChatTarget, Poster};
use greg_store::{QueueEntry, QueueKind, QueueMove, QueueState};

/// The notification event an entry moving to `next` announces, if any.
fn event_of(entry: &QueueEntry, next: QueueState) -> Option<NotifyEvent> {
    if entry.kind != QueueKind::Merge || entry.state == next {
        return None;
    }
    match next {
        QueueState::Landed => Some(NotifyEvent::Landed),
        QueueState::Failed => Some(NotifyEvent::Failed),
        QueueState::Cancelled => Some(NotifyEvent::LeftQueue),
        QueueState::Waiting | QueueState::Staging | QueueState::Building | QueueState::Landing => {
            None
        }
    }
}

/// Adds to `plan` the notifications of the queue moves about to be recorded: `entries[i]`
/// moves as `moves[i]` says (its new state and reason). Nothing when the repository has no
/// `notify` targets.
pub(crate) async fn on_moves(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entries: &[&QueueEntry],
    moves: &[QueueMove],
    plan: &mut Plan,
) -> Result<(), HandlerError> {
    if ctx.cfg.notify.is_empty() {
        return Ok(());
    }
    for (entry, m) in entries.iter().zip(moves) {
        let Some(next) = m.change.state else { continue };
        let Some(event) = event_of(entry, next) else {
            continue;
        };
        let reason = m.change.reason.clone().or_else(|| entry.reason.clone());
        let build_url = match (event, &entry.staging_sha) {
            (NotifyEvent::Failed, Some(staging)) => inner
                .store
                .latest_build(ctx.repo, staging, BuildContext::Merge)
                .await?
                .and_then(|b| b.url),
            _ => None,
        };
        let fields = Fields {
            event,
            pr: entry.pr,
            target: &entry.target,
            head: Some(entry.head_sha.to_string()),
            by: &entry.approver,
            reason,
            build_url,
            priority: None,
        };
        add(
            inner,
            ctx,
            &format!("queue:{}:{event}", entry.id),
            &fields,
            plan,
        );
    }
    Ok(())
}

/// Adds to `plan` the `tree_closed` notifications of "@greg treeclosed=N", written as comment
/// `comment` on pull request `pr` (the key, so a repeated delivery announces it once).
#[allow(clippy::too_many_arguments)]
pub(crate) fn tree_closed(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    comment: CommentId,
    pr: PrNumber,
    target: &str,
    priority: i32,
    by: &Login,
    plan: &mut Plan,
) {
    let fields = Fields {
        event: NotifyEvent::TreeClosed,
        pr,
        target,
        head: None,
        by,
        reason: None,
        build_url: None,
        priority: Some(i64::from(priority)),
    };
    let outcome = format!(
        "comment:{}:{}:{comment}:tree_closed",
        ctx.provider_name,
        ctx.repo.key()
    );
    add(inner, ctx, &outcome, &fields, plan);
}

/// What one notification says.
struct Fields<'a> {
    event: NotifyEvent,
    pr: PrNumber,
    target: &'a str,
    head: Option<String>,
    by: &'a Login,
    reason: Option<String>,
    build_url: Option<String>,
    priority: Option<i64>,
}

/// One effect per target that wants `fields.event`, keyed `<outcome>:notify:<index>`.
fn add(inner: &Inner, ctx: &RepoCtx<'_>, outcome: &str, fields: &Fields<'_>, plan: &mut Plan) {
    let text = text(&ctx.repo.to_string(), fields);
    for (index, target) in ctx.cfg.notify.iter().enumerate() {
        if !target.wants(fields.event) {
            continue;
        }
        let key = format!("{outcome}:notify:{index}");
        let event = ChatEvent {
            event: fields.event.as_str().to_owned(),
            delivery: key.clone(),
            provider: ctx.provider_name.to_owned(),
            repository: ctx.repo.to_string(),
            pull_request: fields.pr.0,
            target: fields.target.to_owned(),
            head: fields.head.clone(),
            by: fields.by.to_string(),
            reason: fields.reason.clone(),
            build_url: fields.build_url.clone(),
            priority: fields.priority,
            at_ms: inner.now_ms(),
            text: text.clone(),
        };
        plan.add(
            ctx.repo,
            key,
            &Effect::Notify {
                target: index,
                event: Box::new(event),
            },
        );
    }
}

/// The one line the `text` format posts.
fn text(repo: &str, f: &Fields<'_>) -> String {
    let pr = format!("{repo}#{}", f.pr);
    let reason = f.reason.as_deref().unwrap_or("no reason recorded");
    match f.event {
        NotifyEvent::Landed => format!("{pr} landed on {} (approved by {})", f.target, f.by),
        NotifyEvent::Failed => {
            let build = f
                .build_url
                .as_deref()
                .map(|u| format!(" (build: {u})"))
                .unwrap_or_default();
            format!("{pr} failed to land on {}: {reason}{build}", f.target)
        }
        NotifyEvent::LeftQueue => {
            format!("{pr} left the merge queue of {}: {reason}", f.target)
        }
        NotifyEvent::TreeClosed => format!(
            "{repo}: {} closed by {} below priority {} (on #{}); merges below it wait",
            f.target,
            f.by,
            f.priority.unwrap_or(0),
            f.pr
        ),
    }
}

/// Posts one notification (the outbox's [`Effect::Notify`]) to the repository's target
/// `target`. A target no longer configured is a final error (the effect is dead).
pub(crate) async fn send(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    target: usize,
    event: &ChatEvent,
) -> Result<(), HandlerError> {
    let Some(t) = ctx.cfg.notify.get(target) else {
        return Err(HandlerError::Config(format!(
            "notification target {target} of {} is no longer configured",
            ctx.repo
        )));
    };
    let poster = poster(inner)?;
    let chat = ChatTarget {
        url: &t.url,
        host: &t.host,
        format: match t.format {
            NotifyFormat::Text => ChatFormat::Text,
            NotifyFormat::Json => ChatFormat::Json,
        },
        secret: t.secret.as_ref(),
    };
    poster
        .post(chat, event)
        .await
        .map_err(|source| HandlerError::Backend {
            backend: format!("notify({})", t.host),
            source,
        })?;
    tracing::info!(host = %t.host, event = %event.event, delivery = %event.delivery, "Notification sent");
    Ok(())
}

/// The engine's poster: the one wiring gave it, else one made now.
fn poster(inner: &Inner) -> Result<Poster, HandlerError> {
    if let Some(p) = inner.notifier.get() {
        return Ok(p.clone());
    }
    let p = Poster::new().map_err(|source| HandlerError::Backend {
        backend: "notify".to_owned(),
        source,
    })?;
    let _ = inner.notifier.set(p.clone());
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(event: NotifyEvent) -> Fields<'static> {
        static ALICE: std::sync::LazyLock<Login> =
            std::sync::LazyLock::new(|| Login::from("alice"));
        Fields {
            event,
            pr: PrNumber(12),
            target: "master",
            head: None,
            by: &ALICE,
            reason: None,
            build_url: None,
            priority: None,
        }
    }

    #[test]
    fn notification_texts() {
        insta::assert_snapshot!(text("acme/demo", &fields(NotifyEvent::Landed)));
        insta::assert_snapshot!(text(
            "acme/demo",
            &Fields {
                reason: Some("the merge build failed".to_owned()),
                build_url: Some("https://ci.example.com/job/demo-merge/7/".to_owned()),
                ..fields(NotifyEvent::Failed)
            }
        ));
        insta::assert_snapshot!(text(
            "acme/demo",
            &Fields {
                reason: Some("new commits were pushed".to_owned()),
                ..fields(NotifyEvent::LeftQueue)
            }
        ));
        insta::assert_snapshot!(text(
            "acme/demo",
            &Fields {
                priority: Some(5),
                ..fields(NotifyEvent::TreeClosed)
            }
        ));
    }

    #[test]
    fn only_merges_leaving_the_queue_are_announced() {
        let entry = |kind, state| QueueEntry {
            id: 1,
            repo: greg_core::RepoName::new("acme", "demo"),
            pr: PrNumber(12),
            kind,
            target: "master".to_owned(),
            head_sha: greg_core::Sha::parse(&"a".repeat(40)).expect("sha"),
            approver: Login::from("alice"),
            command: "@greg please".to_owned(),
            priority: 0,
            approved_ms: 0,
            state,
            base_sha: None,
            staging_sha: None,
            build_id: None,
            attempts: 0,
            reason: None,
            exit: None,
            created_ms: 0,
            updated_ms: 0,
            candidate: None,
            parent: None,
            group: None,
        };
        let building = entry(QueueKind::Merge, QueueState::Building);
        assert_eq!(
            event_of(&building, QueueState::Landed),
            Some(NotifyEvent::Landed)
        );
        assert_eq!(
            event_of(&building, QueueState::Failed),
            Some(NotifyEvent::Failed)
        );
        assert_eq!(
            event_of(&building, QueueState::Cancelled),
            Some(NotifyEvent::LeftQueue)
        );
        assert_eq!(event_of(&building, QueueState::Waiting), None);
        let trying = entry(QueueKind::Try, QueueState::Building);
        assert_eq!(event_of(&trying, QueueState::Failed), None);
    }
}
