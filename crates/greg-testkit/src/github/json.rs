//! GitHub REST response bodies rendered from the world. Field names and required fields follow
//! the schemas of tests/data/github/openapi-subset.json (`simple-user`, `repository`,
//! `full-repository`, `pull-request`, `pull-request-review`, `issue-comment`, `status`,
//! `combined-commit-status`, `repository-collaborator-permission`, `git-ref`, `commit`,
//! `branch-with-protection`, `pull-request-merge-result`, `basic-error`,
//! `validation-error`); the crate's tests validate every renderer against those schemas.

use crate::world::{Comment, FakePullRequest, FakeReview, Repo, Status};
use greg_core::{CommitState, Login, Permission, PullRequestState, RepoName, ReviewState, Sha};
use serde_json::{Value, json};

/// `YYYY-MM-DDTHH:MM:SSZ` for epoch milliseconds (UTC, proleptic Gregorian).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A `simple-user`.
pub fn user(api: &str, login: &Login) -> Value {
    let id = crate::world::github::user_id(login.as_str());
    let l = login.as_str();
    let kind = if l.ends_with("[bot]") { "Bot" } else { "User" };
    json!({
        "login": l,
        "id": id,
        "node_id": format!("U_fake{id}"),
        "avatar_url": format!("{api}/avatars/u/{id}?v=4"),
        "gravatar_id": "",
        "url": format!("{api}/users/{l}"),
        "html_url": format!("{api}/{l}"),
        "followers_url": format!("{api}/users/{l}/followers"),
        "following_url": format!("{api}/users/{l}/following{{/other_user}}"),
        "gists_url": format!("{api}/users/{l}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/users/{l}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/users/{l}/subscriptions"),
        "organizations_url": format!("{api}/users/{l}/orgs"),
        "repos_url": format!("{api}/users/{l}/repos"),
        "events_url": format!("{api}/users/{l}/events{{/privacy}}"),
        "received_events_url": format!("{api}/users/{l}/received_events"),
        "type": kind,
        "site_admin": false,
        "user_view_type": "public",
    })
}

/// `(field, suffix)`: the repository URL templates GitHub returns, relative to the API URL.
const REPO_URLS: &[(&str, &str)] = &[
    ("archive_url", "/{archive_format}{/ref}"),
    ("assignees_url", "/assignees{/user}"),
    ("blobs_url", "/git/blobs{/sha}"),
    ("branches_url", "/branches{/branch}"),
    ("collaborators_url", "/collaborators{/collaborator}"),
    ("comments_url", "/comments{/number}"),
    ("commits_url", "/commits{/sha}"),
    ("compare_url", "/compare/{base}...{head}"),
    ("contents_url", "/contents/{+path}"),
    ("contributors_url", "/contributors"),
    ("deployments_url", "/deployments"),
    ("downloads_url", "/downloads"),
    ("events_url", "/events"),
    ("forks_url", "/forks"),
    ("git_commits_url", "/git/commits{/sha}"),
    ("git_refs_url", "/git/refs{/sha}"),
    ("git_tags_url", "/git/tags{/sha}"),
    ("issue_comment_url", "/issues/comments{/number}"),
    ("issue_events_url", "/issues/events{/number}"),
    ("issues_url", "/issues{/number}"),
    ("keys_url", "/keys{/key_id}"),
    ("labels_url", "/labels{/name}"),
    ("languages_url", "/languages"),
    ("merges_url", "/merges"),
    ("milestones_url", "/milestones{/number}"),
    (
        "notifications_url",
        "/notifications{?since,all,participating}",
    ),
    ("pulls_url", "/pulls{/number}"),
    ("releases_url", "/releases{/id}"),
    ("stargazers_url", "/stargazers"),
    ("statuses_url", "/statuses/{sha}"),
    ("subscribers_url", "/subscribers"),
    ("subscription_url", "/subscription"),
    ("tags_url", "/tags"),
    ("teams_url", "/teams"),
    ("trees_url", "/git/trees{/sha}"),
    ("hooks_url", "/hooks"),
];

/// A `repository` that also satisfies `full-repository` (the union of both required sets).
/// `known`: the repository in the world, for its id and default branch; `None` renders a fork
/// the world does not model.
pub fn repository(api: &str, name: &RepoName, known: Option<&Repo>) -> Value {
    let id = known.map_or_else(
        || crate::world::github::user_id(&name.to_string()),
        |r| r.id,
    );
    let default_branch = known.map_or("master", |r| r.default_branch.as_str());
    let full = name.to_string();
    let u = format!("{api}/repos/{full}");
    let html = format!("{api}/{full}");
    let stamp = iso8601(crate::world::CLOCK_START_MS);
    let mut urls = json!({
        "id": id,
        "node_id": format!("R_fake{id}"),
        "name": name.name,
        "full_name": full,
        "owner": user(api, &Login(name.owner.clone())),
        "private": known.is_some_and(|r| r.private),
        "html_url": html,
        "description": null,
        "fork": false,
        "url": u,
        "git_url": format!("git://{}/{full}.git", host(api)),
        "ssh_url": format!("git@{}:{full}.git", host(api)),
    });
    if let Some(o) = urls.as_object_mut() {
        for (field, suffix) in REPO_URLS {
            o.insert((*field).to_owned(), Value::from(format!("{u}{suffix}")));
        }
    }
    let counts = json!({
        "clone_url": format!("{html}.git"),
        "svn_url": html,
        "mirror_url": null,
        "homepage": null,
        "language": null,
        "forks": 0,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers": 0,
        "watchers_count": 0,
        "size": 0,
        "default_branch": default_branch,
        "open_issues": 0,
        "open_issues_count": 0,
        "is_template": false,
        "topics": [],
        "has_issues": true,
        "has_projects": true,
        "has_wiki": true,
        "has_pages": false,
        "has_downloads": true,
        "has_discussions": false,
        "archived": false,
        "disabled": false,
        "visibility": "public",
        "pushed_at": stamp,
        "created_at": stamp,
        "updated_at": stamp,
        "license": null,
        "allow_forking": true,
        "web_commit_signoff_required": false,
        "network_count": 0,
        "subscribers_count": 0,
    });
    merged_objects(urls, counts)
}

fn host(api: &str) -> &str {
    let rest = api.split_once("://").map_or(api, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

fn author_association(repo: &Repo, login: &Login) -> &'static str {
    if login.as_str().eq_ignore_ascii_case(&repo.name.owner) {
        "OWNER"
    } else if repo.permissions.contains_key(login) {
        "COLLABORATOR"
    } else {
        "CONTRIBUTOR"
    }
}

/// A `pull-request` (also a valid `pull-request-simple`).
pub fn pull_request(api: &str, repo: &Repo, pr: &FakePullRequest) -> Value {
    let full = repo.name.to_string();
    let u = format!("{api}/repos/{full}");
    let n = pr.number.0;
    let html = format!("{api}/{full}/pull/{n}");
    let base_tip = repo.branches.get(&pr.base_ref).map(Sha::to_string);
    let head_repo = pr.head_repo.as_ref().map(|hr| {
        let known = if hr == &repo.name { Some(repo) } else { None };
        repository(api, hr, known)
    });
    let head_owner = pr
        .head_repo
        .as_ref()
        .map_or_else(|| pr.author.clone(), |r| Login(r.owner.clone()));
    let mergeable_state = if pr.draft {
        "draft"
    } else {
        match pr.mergeable {
            Some(true) => "clean",
            Some(false) => "dirty",
            None => "unknown",
        }
    };
    let merged = pr.state == PullRequestState::Merged;
    let link = |href: String| json!({ "href": href });
    let head = json!({
        "label": format!("{}:{}", head_owner, pr.head_ref),
        "ref": pr.head_ref,
        "sha": pr.head_sha.to_string(),
        "user": user(api, &head_owner),
        "repo": head_repo,
    });
    let base = json!({
        "label": format!("{}:{}", repo.name.owner, pr.base_ref),
        "ref": pr.base_ref,
        "sha": base_tip,
        "user": user(api, &Login(repo.name.owner.clone())),
        "repo": repository(api, &repo.name, Some(repo)),
    });
    let links = json!({
        "self": link(format!("{u}/pulls/{n}")),
        "html": link(html.clone()),
        "issue": link(format!("{u}/issues/{n}")),
        "comments": link(format!("{u}/issues/{n}/comments")),
        "review_comments": link(format!("{u}/pulls/{n}/comments")),
        "review_comment": link(format!("{u}/pulls/comments{{/number}}")),
        "commits": link(format!("{u}/pulls/{n}/commits")),
        "statuses": link(format!("{u}/statuses/{}", pr.head_sha)),
    });
    let main = json!({
        "url": format!("{u}/pulls/{n}"),
        "id": pr.id,
        "node_id": format!("PR_fake{}", pr.id),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": format!("{u}/issues/{n}"),
        "commits_url": format!("{u}/pulls/{n}/commits"),
        "review_comments_url": format!("{u}/pulls/{n}/comments"),
        "review_comment_url": format!("{u}/pulls/comments{{/number}}"),
        "comments_url": format!("{u}/issues/{n}/comments"),
        "statuses_url": format!("{u}/statuses/{}", pr.head_sha),
        "number": n,
        "state": if pr.state == PullRequestState::Open { "open" } else { "closed" },
        "locked": false,
        "title": pr.title,
        "user": user(api, &pr.author),
        "body": if pr.body.is_empty() { Value::Null } else { Value::from(pr.body.clone()) },
        "labels": [],
        "milestone": null,
        "active_lock_reason": null,
        "created_at": iso8601(pr.created_at),
        "updated_at": iso8601(pr.updated_at),
        "closed_at": pr.closed_at.map(iso8601),
        "merged_at": pr.merged_at.map(iso8601),
        "merge_commit_sha": pr.merge_commit_sha.as_ref().map(Sha::to_string),
        "assignee": null,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": head,
        "base": base,
        "_links": links,
    });
    let state = json!({
        "author_association": author_association(repo, &pr.author),
        "auto_merge": null,
        "draft": pr.draft,
        "merged": merged,
        "mergeable": pr.mergeable,
        "rebaseable": pr.mergeable,
        "mergeable_state": mergeable_state,
        "merged_by": pr.merged_by.as_ref().map(|l| user(api, l)),
        "comments": repo.comments.iter().filter(|c| c.pr == pr.number).count(),
        "review_comments": 0,
        "maintainer_can_modify": false,
        "commits": 1,
        "additions": 1,
        "deletions": 0,
        "changed_files": 1,
    });
    merged_objects(main, state)
}

/// `a` with `b`'s fields added (both objects).
fn merged_objects(mut a: Value, b: Value) -> Value {
    if let (Some(o), Value::Object(more)) = (a.as_object_mut(), b) {
        o.extend(more);
    }
    a
}

fn review_state(s: ReviewState) -> &'static str {
    match s {
        ReviewState::Approved => "APPROVED",
        ReviewState::ChangesRequested => "CHANGES_REQUESTED",
        ReviewState::Commented => "COMMENTED",
        ReviewState::Dismissed => "DISMISSED",
    }
}

/// A `pull-request-review`.
pub fn review(api: &str, repo: &Repo, r: &FakeReview) -> Value {
    let full = repo.name.to_string();
    let html = format!("{api}/{full}/pull/{}#pullrequestreview-{}", r.pr, r.id);
    let pr_url = format!("{api}/repos/{full}/pulls/{}", r.pr);
    json!({
        "id": r.id,
        "node_id": format!("PRR_fake{}", r.id),
        "user": user(api, &r.reviewer),
        "body": r.body,
        "state": review_state(r.state),
        "html_url": html,
        "pull_request_url": pr_url,
        "_links": { "html": { "href": html }, "pull_request": { "href": pr_url } },
        "submitted_at": iso8601(r.submitted_at),
        "commit_id": r.commit_id.to_string(),
        "author_association": author_association(repo, &r.reviewer),
    })
}

/// An `issue-comment`.
pub fn comment(api: &str, repo: &Repo, c: &Comment) -> Value {
    let full = repo.name.to_string();
    json!({
        "id": c.id.0,
        "node_id": format!("IC_fake{}", c.id),
        "url": format!("{api}/repos/{full}/issues/comments/{}", c.id),
        "html_url": format!("{api}/{full}/pull/{}#issuecomment-{}", c.pr, c.id),
        "body": c.body,
        "user": user(api, &c.author),
        "created_at": iso8601(c.created_at),
        "updated_at": iso8601(c.updated_at),
        "issue_url": format!("{api}/repos/{full}/issues/{}", c.pr),
        "author_association": author_association(repo, &c.author),
        "performed_via_github_app": null,
        "pin": null,
        "minimized": null,
    })
}

/// A `status` (with `creator`); `simple` drops `creator` for the combined status's list.
pub fn status(api: &str, repo: &Repo, s: &Status, simple: bool) -> Value {
    let mut v = json!({
        "url": format!("{api}/repos/{}/statuses/{}", repo.name, s.sha),
        "avatar_url": format!("{api}/avatars/u/{}?v=4", crate::world::github::user_id(s.creator.as_str())),
        "id": s.id,
        "node_id": format!("SC_fake{}", s.id),
        "state": s.state.as_str(),
        "description": s.description,
        "target_url": s.target_url,
        "context": s.context,
        "created_at": iso8601(s.created_at),
        "updated_at": iso8601(s.created_at),
    });
    if !simple && let Some(o) = v.as_object_mut() {
        o.insert("creator".to_owned(), user(api, &s.creator));
    }
    v
}

/// A `combined-commit-status`.
pub fn combined_status(
    api: &str,
    repo: &Repo,
    sha: &Sha,
    state: CommitState,
    statuses: &[&Status],
) -> Value {
    json!({
        "state": state.as_str(),
        "statuses": statuses.iter().map(|s| status(api, repo, s, true)).collect::<Vec<_>>(),
        "sha": sha.to_string(),
        "total_count": statuses.len(),
        "repository": minimal_repository(api, repo),
        "commit_url": format!("{api}/repos/{}/commits/{sha}", repo.name),
        "url": format!("{api}/repos/{}/commits/{sha}/status", repo.name),
    })
}

fn minimal_repository(api: &str, repo: &Repo) -> Value {
    repository(api, &repo.name, Some(repo))
}

/// GitHub's legacy base role and the role name for a permission.
pub fn permission_names(p: Permission) -> (&'static str, &'static str) {
    match p {
        Permission::Admin => ("admin", "admin"),
        Permission::Maintain => ("write", "maintain"),
        Permission::Write => ("write", "write"),
        Permission::Triage => ("read", "triage"),
        Permission::Read => ("read", "read"),
        Permission::None => ("none", "none"),
    }
}

/// A `repository-collaborator-permission`.
pub fn permission(api: &str, login: &Login, p: Permission) -> Value {
    let (permission, role_name) = permission_names(p);
    let mut u = user(api, login);
    if let Some(o) = u.as_object_mut() {
        o.insert("role_name".to_owned(), Value::from(role_name));
        o.insert(
            "permissions".to_owned(),
            json!({
                "admin": p >= Permission::Admin,
                "maintain": p >= Permission::Maintain,
                "push": p >= Permission::Write,
                "triage": p >= Permission::Triage,
                "pull": p >= Permission::Read,
            }),
        );
    }
    json!({ "permission": permission, "role_name": role_name, "user": u })
}

/// A `git-ref` for `refs/{name}` (`name` like `heads/master`).
pub fn git_ref(api: &str, repo: &RepoName, name: &str, sha: &Sha) -> Value {
    json!({
        "ref": format!("refs/{name}"),
        "node_id": format!("REF_fake_{name}"),
        "url": format!("{api}/repos/{repo}/git/refs/{name}"),
        "object": {
            "type": "commit",
            "sha": sha.to_string(),
            "url": format!("{api}/repos/{repo}/git/commits/{sha}"),
        },
    })
}

/// A `commit`.
pub fn commit(api: &str, repo: &Repo, sha: &Sha) -> Value {
    let full = repo.name.to_string();
    let c = repo.commits.get(sha);
    let message = c.map_or("", |c| c.message.as_str());
    let parents: Vec<Value> = c
        .map(|c| c.parents.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| json!({ "sha": p.to_string(), "url": format!("{api}/repos/{full}/commits/{p}") }))
        .collect();
    let git_user = json!({
        "name": "Fake Author",
        "email": "author@example.com",
        "date": iso8601(crate::world::CLOCK_START_MS),
    });
    json!({
        "url": format!("{api}/repos/{full}/commits/{sha}"),
        "sha": sha.to_string(),
        "node_id": format!("C_fake_{}", sha.short()),
        "html_url": format!("{api}/{full}/commit/{sha}"),
        "comments_url": format!("{api}/repos/{full}/commits/{sha}/comments"),
        "commit": {
            "url": format!("{api}/repos/{full}/git/commits/{sha}"),
            "author": git_user,
            "committer": git_user,
            "message": message,
            "comment_count": 0,
            "tree": { "sha": sha.to_string(), "url": format!("{api}/repos/{full}/git/trees/{sha}") },
            "verification": { "verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null },
        },
        "author": null,
        "committer": null,
        "parents": parents,
    })
}

/// A `branch-with-protection` (never protected).
pub fn branch(api: &str, repo: &Repo, name: &str, sha: &Sha) -> Value {
    let full = repo.name.to_string();
    json!({
        "name": name,
        "commit": commit(api, repo, sha),
        "_links": {
            "html": format!("{api}/{full}/tree/{name}"),
            "self": format!("{api}/repos/{full}/branches/{name}"),
        },
        "protected": false,
        "protection": { "enabled": false, "required_status_checks": { "enforcement_level": "off", "contexts": [], "checks": [] } },
        "protection_url": format!("{api}/repos/{full}/branches/{name}/protection"),
    })
}

/// A `basic-error` body, GitHub style.
pub fn error(message: &str, status: u16, doc: &str) -> Value {
    json!({
        "message": message,
        "documentation_url": doc,
        "status": status.to_string(),
    })
}

/// A `validation-error` body (HTTP 422).
pub fn validation_error(message: &str, resource: &str, field: &str, code: &str) -> Value {
    json!({
        "message": message,
        "errors": [{ "resource": resource, "field": field, "code": code }],
        "documentation_url": "https://docs.github.com/rest",
        "status": "422",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso8601(crate::world::CLOCK_START_MS),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(iso8601(1_709_210_096_000), "2024-02-29T12:34:56Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
