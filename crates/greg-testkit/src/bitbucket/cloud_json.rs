//! Bitbucket Cloud JSON built from the world, shaped as the REST 2.0 reference's schemas
//! (<https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pullrequests/>:
//! `pullrequest`, `participant`, `pullrequest_comment`; `api-group-repositories`:
//! `repository`, `webhook_subscription`, `repository_permission`; `api-group-commits`:
//! `commit`; `api-group-commit-statuses`: `commitstatus`; `api-group-refs`: `branch`) and as
//! the captured deliveries in tests/data/bitbucket-cloud/ show them (which carry the same
//! objects). Commit hashes inside pull-request objects are abbreviated to 12 digits, as Cloud
//! writes them.
//!
//! Users are `account`s: `account_id` is the world's login, `uuid` is derived from it,
//! `nickname` and `display_name` repeat the login (the world has no display names).

use crate::world::bitbucket::{
    BbComment, BbHook, BbParticipant, BbPullRequest, BbRepo, BbStatus, BitbucketState, cloud_date,
    uuid,
};
use greg_core::{Login, Permission, PullRequestState, RepoName, ReviewState, Sha};
use serde_json::{Value, json};

/// The web root: the API's host (the fake serves both).
fn web(b: &BitbucketState) -> &str {
    &b.cloud_url
}

/// The first 12 digits, as pull-request objects write hashes.
pub(crate) fn short(sha: &Sha) -> String {
    sha.as_str().chars().take(12).collect()
}

/// An `account` (the `user` of comments, participants, authors).
pub(crate) fn user(b: &BitbucketState, login: &Login) -> Value {
    let id = login.as_str();
    json!({
        "type": "user",
        "account_id": id,
        "uuid": uuid(&format!("account {}", id.to_ascii_lowercase())),
        "nickname": id,
        "display_name": id,
        "links": {
            "self": {"href": format!("{}/2.0/users/{}", b.cloud_url, id)},
            "html": {"href": format!("{}/{}/", web(b), id)},
            "avatar": {"href": format!("{}/account/{}/avatar", web(b), id)},
        },
    })
}

/// A `repository` (the short form pull requests and events carry).
pub(crate) fn repository(b: &BitbucketState, repo: &RepoName) -> Value {
    json!({
        "type": "repository",
        "full_name": repo.to_string(),
        "name": repo.name,
        "uuid": uuid(&format!("repository {repo}")),
        "links": {
            "self": {"href": format!("{}/2.0/repositories/{repo}", b.cloud_url)},
            "html": {"href": format!("{}/{repo}", web(b))},
            "avatar": {"href": format!("{}/{repo}/avatar/32/", web(b))},
        },
    })
}

/// A `commit` (full hash), with its parents.
pub(crate) fn commit(b: &BitbucketState, r: &BbRepo, sha: &Sha) -> Value {
    let c = r.commits.get(sha);
    let parents: Vec<Value> = c
        .map(|c| c.parents.clone())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            json!({"type": "commit", "hash": p.as_str(),
                   "links": {"self": {"href": format!("{}/2.0/repositories/{}/commit/{p}", b.cloud_url, r.name)}}})
        })
        .collect();
    json!({
        "type": "commit",
        "hash": sha.as_str(),
        "date": "2024-01-01T00:00:00+00:00",
        "message": c.map_or("", |c| c.message.as_str()),
        "author": {"type": "author", "raw": "greg world <world@example.com>"},
        "parents": parents,
        "repository": repository(b, &r.name),
        "links": {
            "self": {"href": format!("{}/2.0/repositories/{}/commit/{sha}", b.cloud_url, r.name)},
            "html": {"href": format!("{}/{}/commits/{sha}", web(b), r.name)},
        },
    })
}

/// A `branch`.
pub(crate) fn branch(b: &BitbucketState, r: &BbRepo, name: &str, tip: &Sha) -> Value {
    json!({
        "type": "branch",
        "name": name,
        "target": commit(b, r, tip),
        "merge_strategies": ["merge_commit", "squash", "fast_forward"],
        "default_merge_strategy": "merge_commit",
        "links": {
            "self": {"href": format!("{}/2.0/repositories/{}/refs/branches/{name}", b.cloud_url, r.name)},
            "html": {"href": format!("{}/{}/branch/{name}", web(b), r.name)},
        },
    })
}

/// A `participant`: `state` is `approved`, `changes_requested` or `null`; `approved` is the
/// older boolean.
pub(crate) fn participant(b: &BitbucketState, p: &BbParticipant) -> Value {
    let state = match p.verdict {
        Some(ReviewState::Approved) => Value::from("approved"),
        Some(ReviewState::ChangesRequested) => Value::from("changes_requested"),
        _ => Value::Null,
    };
    json!({
        "type": "participant",
        "user": user(b, &p.user),
        "role": if p.reviewer { "REVIEWER" } else { "PARTICIPANT" },
        "approved": p.verdict == Some(ReviewState::Approved),
        "state": state,
        "participated_on": cloud_date(p.participated_on),
    })
}

fn endpoint(b: &BitbucketState, repo: Option<&RepoName>, branch: &str, sha: Option<&Sha>) -> Value {
    json!({
        "branch": {"name": branch},
        "commit": sha.map_or(Value::Null, |s| json!({
            "type": "commit",
            "hash": short(s),
            "links": {"self": {"href": format!("{}/2.0/repositories/{}/commit/{}", b.cloud_url,
                repo.map_or_else(String::new, ToString::to_string), short(s))}},
        })),
        "repository": repo.map_or(Value::Null, |r| repository(b, r)),
    })
}

/// A `pullrequest`, as `GET .../pullrequests/{id}` and the `pullrequest:*` events carry it.
pub(crate) fn pull_request(b: &BitbucketState, r: &BbRepo, p: &BbPullRequest) -> Value {
    let state = match p.state {
        PullRequestState::Open => "OPEN",
        PullRequestState::Merged => "MERGED",
        PullRequestState::Closed => "DECLINED",
    };
    let base_tip = r.branches.get(&p.base_ref);
    let comment_count = r.comments.iter().filter(|c| c.pr == p.id).count();
    let url = format!("{}/{}/pull-requests/{}", web(b), r.name, p.id);
    json!({
        "type": "pullrequest",
        "id": p.id.0,
        "title": p.title,
        "description": p.description,
        "summary": {"type": "rendered", "raw": p.description, "markup": "markdown", "html": p.description},
        "rendered": {
            "title": {"type": "rendered", "raw": p.title, "markup": "markdown", "html": p.title},
            "description": {"type": "rendered", "raw": p.description, "markup": "markdown", "html": p.description},
        },
        "state": state,
        "draft": p.draft,
        "author": user(b, &p.author),
        "source": endpoint(b, p.head_repo.as_ref(), &p.head_ref, Some(&p.head_sha)),
        "destination": endpoint(b, Some(&r.name), &p.base_ref, base_tip),
        "merge_commit": p.merge_commit.as_ref().map_or(Value::Null, |m| json!({"type": "commit", "hash": short(m)})),
        "close_source_branch": false,
        "closed_by": p.closed_by.as_ref().map_or(Value::Null, |u| user(b, u)),
        "reason": "",
        "created_on": cloud_date(p.created_at),
        "updated_on": cloud_date(p.updated_at),
        "comment_count": comment_count,
        "task_count": 0,
        "reviewers": p.reviewers().map(|x| user(b, &x.user)).collect::<Vec<_>>(),
        "participants": p.participants.iter().map(|x| participant(b, x)).collect::<Vec<_>>(),
        "links": {
            "self": {"href": format!("{}/2.0/repositories/{}/pullrequests/{}", b.cloud_url, r.name, p.id)},
            "html": {"href": url},
        },
    })
}

/// The short pull-request reference comments and activity entries carry.
pub(crate) fn pull_request_ref(b: &BitbucketState, r: &BbRepo, p: &BbPullRequest) -> Value {
    json!({
        "type": "pullrequest",
        "id": p.id.0,
        "title": p.title,
        "links": {
            "self": {"href": format!("{}/2.0/repositories/{}/pullrequests/{}", b.cloud_url, r.name, p.id)},
            "html": {"href": format!("{}/{}/pull-requests/{}", web(b), r.name, p.id)},
        },
    })
}

/// A `pullrequest_comment`.
pub(crate) fn comment(b: &BitbucketState, r: &BbRepo, p: &BbPullRequest, c: &BbComment) -> Value {
    json!({
        "type": "pullrequest_comment",
        "id": c.id.0,
        "content": {"type": "rendered", "raw": c.text, "markup": "markdown", "html": format!("<p>{}</p>", c.text)},
        "user": user(b, &c.author),
        "created_on": cloud_date(c.created_at),
        "updated_on": cloud_date(c.updated_at),
        "deleted": false,
        "pending": false,
        "pullrequest": pull_request_ref(b, r, p),
        "links": {
            "self": {"href": format!("{}/2.0/repositories/{}/pullrequests/{}/comments/{}", b.cloud_url, r.name, p.id, c.id)},
            "html": {"href": format!("{}/{}/pull-requests/{}#comment-{}", web(b), r.name, p.id, c.id)},
        },
    })
}

/// The activity log of a pull request, newest first: an `update` entry for every head that
/// arrived (with the pull request as it then was), an `approval` for every standing approval,
/// a `comment` for every comment.
pub(crate) fn activity(b: &BitbucketState, r: &BbRepo, p: &BbPullRequest) -> Vec<Value> {
    let mut entries: Vec<(u64, Value)> = Vec::new();
    let pr_ref = pull_request_ref(b, r, p);
    for (at, head) in &p.updates {
        entries.push((
            *at,
            json!({
                "update": {
                    "state": "OPEN",
                    "title": p.title,
                    "description": p.description,
                    "date": cloud_date(*at),
                    "author": user(b, &p.author),
                    "source": endpoint(b, p.head_repo.as_ref(), &p.head_ref, Some(head)),
                    "destination": endpoint(b, Some(&r.name), &p.base_ref, r.branches.get(&p.base_ref)),
                    "reason": "",
                },
                "pull_request": pr_ref,
            }),
        ));
    }
    for x in &p.participants {
        if x.verdict == Some(ReviewState::Approved) {
            entries.push((
                x.participated_on,
                json!({
                    "approval": {"date": cloud_date(x.participated_on), "user": user(b, &x.user), "pullrequest": pr_ref},
                    "pull_request": pr_ref,
                }),
            ));
        }
    }
    for c in r.comments.iter().filter(|c| c.pr == p.id) {
        entries.push((
            c.created_at,
            json!({"comment": comment(b, r, p, c), "pull_request": pr_ref}),
        ));
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    entries.into_iter().map(|(_, v)| v).collect()
}

/// A `commitstatus` of type `build`.
pub(crate) fn status(b: &BitbucketState, r: &BbRepo, s: &BbStatus) -> Value {
    json!({
        "type": "build",
        "key": s.key,
        "state": s.state,
        "name": s.name,
        "description": s.description,
        "url": s.url,
        "refname": null,
        "uuid": uuid(&format!("status {}", s.id)),
        "created_on": cloud_date(s.created_at),
        "updated_on": cloud_date(s.updated_at),
        "commit": {"type": "commit", "hash": s.sha.as_str()},
        "repository": repository(b, &r.name),
        "links": {
            "self": {"href": format!("{}/2.0/repositories/{}/commit/{}/statuses/build/{}", b.cloud_url, r.name, s.sha, s.key)},
            "commit": {"href": format!("{}/2.0/repositories/{}/commit/{}", b.cloud_url, r.name, s.sha)},
        },
    })
}

/// A `webhook_subscription`: the secret itself is never shown, only `secret_set`.
pub(crate) fn hook(b: &BitbucketState, r: &BbRepo, h: &BbHook) -> Value {
    json!({
        "type": "webhook_subscription",
        "uuid": h.uuid,
        "url": h.url,
        "description": h.name,
        "subject_type": "repository",
        "subject": repository(b, &r.name),
        "active": h.active,
        "created_at": "2024-01-01T00:00:00.000000+00:00",
        "events": h.events,
        "secret_set": h.secret.as_deref().is_some_and(|s| !s.is_empty()),
        "links": {"self": {"href": format!("{}/2.0/repositories/{}/hooks/{}", b.cloud_url, r.name, h.uuid)}},
    })
}

/// A `repository_permission`.
pub(crate) fn permission(b: &BitbucketState, r: &BbRepo, login: &Login, p: Permission) -> Value {
    let level = match p {
        Permission::Admin => "admin",
        Permission::Maintain | Permission::Write => "write",
        Permission::Triage | Permission::Read => "read",
        Permission::None => "none",
    };
    json!({
        "type": "repository_permission",
        "permission": level,
        "user": user(b, login),
        "repository": repository(b, &r.name),
    })
}
