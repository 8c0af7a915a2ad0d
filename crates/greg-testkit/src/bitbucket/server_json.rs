//! Bitbucket Server/Data Center JSON built from the world, shaped as the REST 1.0 reference
//! (<https://developer.atlassian.com/server/bitbucket/rest/>: `RestPullRequest`,
//! `RestPullRequestParticipant`, `RestComment`, `RestRepository`, `RestApplicationUser`,
//! `RestCommit`, `RestBranch`, `RestWebhook`) and the event payloads
//! (<https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html>), and as
//! the captured deliveries in tests/data/bitbucket-server/ show them. Entity dates are epoch
//! milliseconds, as Server writes them.

use crate::world::bitbucket::{
    BbComment, BbHook, BbParticipant, BbPullRequest, BbRepo, BbStatus, BitbucketState,
};
use crate::world::github::user_id;
use greg_core::{Login, PullRequestState, RepoName, ReviewState, Sha};
use serde_json::{Value, json};

/// A `RestApplicationUser`: `name` is the world's login.
pub(crate) fn user(b: &BitbucketState, login: &Login) -> Value {
    let name = login.as_str();
    json!({
        "name": name,
        "emailAddress": format!("{name}@example.com"),
        "id": user_id(name),
        "displayName": name,
        "active": true,
        "slug": name.to_ascii_lowercase(),
        "type": "NORMAL",
        "links": {"self": [{"href": format!("{}/users/{}", b.server_url, name.to_ascii_lowercase())}]},
    })
}

/// A `RestRepository` with its project (`~user` keys are personal projects).
pub(crate) fn repository(b: &BitbucketState, repo: &RepoName, id: u64) -> Value {
    let personal = repo.owner.starts_with('~');
    let web = if personal {
        format!(
            "{}/users/{}/repos/{}",
            b.server_url,
            &repo.owner[1..],
            repo.name
        )
    } else {
        format!(
            "{}/projects/{}/repos/{}",
            b.server_url, repo.owner, repo.name
        )
    };
    json!({
        "slug": repo.name,
        "id": id,
        "name": repo.name,
        "hierarchyId": format!("{:020x}", id),
        "scmId": "git",
        "state": "AVAILABLE",
        "statusMessage": "Available",
        "forkable": true,
        "project": {
            "key": repo.owner,
            "id": id,
            "name": repo.owner,
            "public": false,
            "type": if personal { "PERSONAL" } else { "NORMAL" },
            "links": {"self": [{"href": format!("{}/projects/{}", b.server_url, repo.owner)}]},
        },
        "public": false,
        "links": {
            "clone": [
                {"href": format!("{}/scm/{}/{}.git", b.server_url, repo.owner.to_ascii_lowercase(), repo.name), "name": "http"},
            ],
            "self": [{"href": format!("{web}/browse")}],
        },
    })
}

/// A repository by name (its id when the world knows it).
fn repository_named(b: &BitbucketState, repo: &RepoName) -> Value {
    let id = b.repos.get(repo).map_or(0, |r| r.id);
    repository(b, repo, id)
}

/// A `RestCommit`.
pub(crate) fn commit(r: &BbRepo, sha: &Sha) -> Value {
    let c = r.commits.get(sha);
    let parents: Vec<Value> = c
        .map(|c| c.parents.clone())
        .unwrap_or_default()
        .iter()
        .map(|p| json!({"id": p.as_str(), "displayId": &p.as_str()[..11]}))
        .collect();
    json!({
        "id": sha.as_str(),
        "displayId": &sha.as_str()[..11],
        "author": {"name": "world", "emailAddress": "world@example.com"},
        "authorTimestamp": crate::world::CLOCK_START_MS,
        "committer": {"name": "world", "emailAddress": "world@example.com"},
        "committerTimestamp": crate::world::CLOCK_START_MS,
        "message": c.map_or("", |c| c.message.as_str()),
        "parents": parents,
    })
}

/// A `RestBranch`.
pub(crate) fn branch(r: &BbRepo, name: &str, tip: &Sha) -> Value {
    json!({
        "id": format!("refs/heads/{name}"),
        "displayId": name,
        "type": "BRANCH",
        "latestCommit": tip.as_str(),
        "latestChangeset": tip.as_str(),
        "isDefault": name == r.default_branch,
    })
}

/// `status` of a participant: `APPROVED`, `NEEDS_WORK` or `UNAPPROVED`.
pub(crate) fn status_name(p: &BbParticipant) -> &'static str {
    match p.verdict {
        Some(ReviewState::Approved) => "APPROVED",
        Some(ReviewState::ChangesRequested) => "NEEDS_WORK",
        _ => "UNAPPROVED",
    }
}

/// A `RestPullRequestParticipant`.
pub(crate) fn participant(b: &BitbucketState, p: &BbParticipant) -> Value {
    let mut v = json!({
        "user": user(b, &p.user),
        "role": if p.reviewer { "REVIEWER" } else { "PARTICIPANT" },
        "approved": p.verdict == Some(ReviewState::Approved),
        "status": status_name(p),
    });
    if let Some(c) = &p.last_reviewed_commit {
        v["lastReviewedCommit"] = Value::from(c.as_str());
    }
    v
}

fn pr_ref(b: &BitbucketState, repo: Option<&RepoName>, branch: &str, sha: Option<&Sha>) -> Value {
    let mut v = json!({
        "id": format!("refs/heads/{branch}"),
        "displayId": branch,
        "latestCommit": sha.map(Sha::as_str),
        "type": "BRANCH",
    });
    if let Some(repo) = repo {
        v["repository"] = repository_named(b, repo);
    }
    v
}

/// A `RestPullRequest`, as `GET .../pull-requests/{id}` and the `pr:*` events carry it.
pub(crate) fn pull_request(b: &BitbucketState, r: &BbRepo, p: &BbPullRequest) -> Value {
    let state = match p.state {
        PullRequestState::Open => "OPEN",
        PullRequestState::Merged => "MERGED",
        PullRequestState::Closed => "DECLINED",
    };
    let open = p.state == PullRequestState::Open;
    let mut v = json!({
        "id": p.id.0,
        "version": p.version,
        "title": p.title,
        "description": p.description,
        "state": state,
        "open": open,
        "closed": !open,
        "draft": p.draft,
        "createdDate": p.created_at,
        "updatedDate": p.updated_at,
        "fromRef": pr_ref(b, p.head_repo.as_ref(), &p.head_ref, Some(&p.head_sha)),
        "toRef": pr_ref(b, Some(&r.name), &p.base_ref, r.branches.get(&p.base_ref)),
        "locked": false,
        "author": {"user": user(b, &p.author), "role": "AUTHOR", "approved": false, "status": "UNAPPROVED"},
        "reviewers": p.reviewers().map(|x| participant(b, x)).collect::<Vec<_>>(),
        "participants": p.participants.iter().filter(|x| !x.reviewer).map(|x| participant(b, x)).collect::<Vec<_>>(),
        "properties": {"commentCount": r.comments.iter().filter(|c| c.pr == p.id).count()},
        "links": {"self": [{"href": format!("{}/projects/{}/repos/{}/pull-requests/{}", b.server_url, r.name.owner, r.name.name, p.id)}]},
    });
    if !open {
        v["closedDate"] = Value::from(p.updated_at);
    }
    v
}

/// A `RestComment`; `editable` and `deletable` say whether the bot (the caller) may.
pub(crate) fn comment(b: &BitbucketState, r: &BbRepo, c: &BbComment) -> Value {
    let own = c.author == b.bot;
    json!({
        "properties": {"repositoryId": r.id},
        "id": c.id.0,
        "version": c.version,
        "text": c.text,
        "author": user(b, &c.author),
        "createdDate": c.created_at,
        "updatedDate": c.updated_at,
        "comments": [],
        "tasks": [],
        "severity": "NORMAL",
        "state": "OPEN",
        "permittedOperations": {"editable": own, "transitionable": true, "deletable": own},
    })
}

/// A build status as the build-status API lists it.
pub(crate) fn status(s: &BbStatus) -> Value {
    json!({
        "state": s.state,
        "key": s.key,
        "name": s.name,
        "url": s.url,
        "description": s.description,
        "dateAdded": s.updated_at,
    })
}

/// A `RestWebhook`. The secret is shown in `configuration` (greg's reading of the
/// reference, which does not say it is hidden).
pub(crate) fn hook(h: &BbHook) -> Value {
    let mut configuration = serde_json::Map::new();
    if let Some(secret) = &h.secret {
        configuration.insert("secret".to_owned(), Value::from(secret.as_str()));
    }
    json!({
        "id": h.id,
        "name": h.name,
        "createdDate": crate::world::CLOCK_START_MS,
        "updatedDate": crate::world::CLOCK_START_MS,
        "events": h.events,
        "configuration": configuration,
        "url": h.url,
        "active": h.active,
        "scopeType": "repository",
    })
}
