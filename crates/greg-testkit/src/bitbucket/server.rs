//! Route dispatch and handlers of [`super::FakeBitbucketServer`]: REST 1.0 under
//! `/rest/api/1.0`, the build-status API (`/rest/build-status/1.0/commits/{id}`, and the
//! repository-scoped `.../commits/{id}/builds` of Data Center 7.4+) and the branch-utils API
//! (`/rest/branch-utils/1.0/.../branches`). Answers use Server's statuses and error bodies
//! (`{"errors": [{"context", "message", "exceptionName"}]}`): 404 for unknown objects; 409
//! with `PullRequestOutOfDateException` or `CommentOutOfDateException` (and `currentVersion`,
//! `expectedVersion`) when a version is stale; 409 with `PullRequestMergeVetoedException`
//! (`conflicted: true`) for a conflicting merge; 400 for bodies Server refuses.

use super::server_json as j;
use super::{HookFields, body_object, server_error, server_page, str_field};
use crate::http::{Reply, Request};
use crate::world::bitbucket::{BbHook, BbStatus, BbVeto, Bitbucket, uuid};
use greg_core::{CommentId, Login, Permission, PrNumber, PullRequestState, RepoName, Sha};
use serde_json::{Value, json};

const NO_SUCH_REPO: &str = "com.atlassian.bitbucket.repository.NoSuchRepositoryException";
const NO_SUCH_PR: &str = "com.atlassian.bitbucket.pull.NoSuchPullRequestException";
const NO_SUCH_COMMENT: &str = "com.atlassian.bitbucket.comment.NoSuchCommentException";
const NO_SUCH_COMMIT: &str = "com.atlassian.bitbucket.commit.NoSuchCommitException";
const NO_SUCH_BRANCH: &str = "com.atlassian.bitbucket.repository.NoSuchBranchException";
const NO_SUCH_HOOK: &str = "com.atlassian.bitbucket.webhook.NoSuchWebhookException";
const BAD_REQUEST: &str = "com.atlassian.bitbucket.validation.ArgumentValidationException";

fn not_found(message: &str, exception: &str) -> Reply {
    server_error(404, message, exception)
}

fn bad_request(message: &str) -> Reply {
    server_error(400, message, BAD_REQUEST)
}

/// A stale optimistic-locking version (pull request or comment).
fn out_of_date(what: &str, exception: &str, current: u64, expected: u64) -> Reply {
    Reply::json(
        409,
        &json!({"errors": [{
            "context": null,
            "message": format!("You are attempting to modify a {what} based on out-of-date information."),
            "exceptionName": exception,
            "currentVersion": current,
            "expectedVersion": expected,
        }]}),
    )
}

fn number(s: &str) -> Option<u64> {
    s.parse().ok()
}

/// Dispatches one request.
pub(super) fn route(bb: &Bitbucket, req: &Request) -> Reply {
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    match seg.as_slice() {
        ["rest", "api", "1.0", "users"] if m == "GET" => users(bb, req),
        [
            "rest",
            "api",
            "1.0",
            "projects",
            key,
            "repos",
            slug,
            rest @ ..,
        ] => repo_route(bb, &RepoName::new(*key, *slug), m, rest, req),
        ["rest", "build-status", "1.0", "commits", sha] => match m {
            "GET" => legacy_statuses(bb, sha, req),
            "POST" => legacy_set_status(bb, sha, req),
            _ => not_found("No such resource", BAD_REQUEST),
        },
        [
            "rest",
            "branch-utils",
            "1.0",
            "projects",
            key,
            "repos",
            slug,
            "branches",
        ] => {
            let repo = RepoName::new(*key, *slug);
            match m {
                "POST" => create_branch(bb, &repo, req),
                "DELETE" => delete_branch(bb, &repo, req),
                _ => not_found("No such resource", BAD_REQUEST),
            }
        }
        _ => not_found("No such resource", BAD_REQUEST),
    }
}

fn repo_route(bb: &Bitbucket, repo: &RepoName, m: &str, rest: &[&str], req: &Request) -> Reply {
    if bb.read(|b| !b.repos.contains_key(repo)) {
        return not_found(
            &format!("Repository {}/{} does not exist.", repo.owner, repo.name),
            NO_SUCH_REPO,
        );
    }
    let pr = |n: &str| number(n).map(PrNumber);
    match (m, rest) {
        ("GET", []) => bb.read(|b| Reply::json(200, &j::repository(b, repo, b.repos[repo].id))),
        ("GET", ["pull-requests"]) => list_pulls(bb, repo, req),
        ("GET", ["pull-requests", n]) => with_pr(pr(n), |n| get_pull(bb, repo, n)),
        ("GET", ["pull-requests", n, "merge"]) => with_pr(pr(n), |n| can_merge(bb, repo, n)),
        ("POST", ["pull-requests", n, "merge"]) => with_pr(pr(n), |n| merge(bb, repo, n, req)),
        ("POST", ["pull-requests", n, "comments"]) => {
            with_pr(pr(n), |n| create_comment(bb, repo, n, req))
        }
        (_, ["pull-requests", n, "comments", id]) => match (pr(n), number(id)) {
            (Some(n), Some(id)) => comment(bb, repo, n, CommentId(id), m, req),
            _ => not_found("No such comment", NO_SUCH_COMMENT),
        },
        ("GET", ["commits", rev]) => get_commit(bb, repo, rev),
        ("POST", ["commits", sha, "builds"]) => set_status(bb, Some(repo), sha, req),
        ("GET", ["branches"]) => list_branches(bb, repo, req),
        ("GET", ["webhooks"]) => list_hooks(bb, repo, req),
        ("POST", ["webhooks"]) => create_hook(bb, repo, req),
        (_, ["webhooks", id]) => match number(id) {
            Some(id) => hook(bb, repo, id, m, req),
            None => not_found("No such webhook", NO_SUCH_HOOK),
        },
        _ => not_found("No such resource", BAD_REQUEST),
    }
}

fn with_pr(n: Option<PrNumber>, f: impl FnOnce(PrNumber) -> Reply) -> Reply {
    n.map_or_else(|| not_found("No such pull request", NO_SUCH_PR), f)
}

fn no_such_pr(n: PrNumber) -> Reply {
    not_found(&format!("Pull request {n} does not exist."), NO_SUCH_PR)
}

/// `GET .../pull-requests?state=OPEN|DECLINED|MERGED|ALL` (default `OPEN`), newest first.
fn list_pulls(bb: &Bitbucket, repo: &RepoName, req: &Request) -> Reply {
    let state = req.query("state").unwrap_or("OPEN").to_ascii_uppercase();
    let items = bb.read(|b| {
        let r = &b.repos[repo];
        r.pulls
            .values()
            .rev()
            .filter(|p| match state.as_str() {
                "ALL" => true,
                "MERGED" => p.state == PullRequestState::Merged,
                "DECLINED" => p.state == PullRequestState::Closed,
                _ => p.state == PullRequestState::Open,
            })
            .map(|p| j::pull_request(b, r, p))
            .collect()
    });
    server_page(bb, req, items)
}

fn get_pull(bb: &Bitbucket, repo: &RepoName, n: PrNumber) -> Reply {
    bb.read(|b| {
        let r = &b.repos[repo];
        match r.pulls.get(&n.0) {
            Some(p) => Reply::json(200, &j::pull_request(b, r, p)),
            None => no_such_pr(n),
        }
    })
}

/// `GET .../pull-requests/{id}/merge`: whether it can be merged.
fn can_merge(bb: &Bitbucket, repo: &RepoName, n: PrNumber) -> Reply {
    bb.read(|b| {
        let r = &b.repos[repo];
        let Some(p) = r.pulls.get(&n.0) else {
            return no_such_pr(n);
        };
        let conflicted = r.conflicting_heads.contains(&p.head_sha);
        let vetoes = veto_json(r.merge_vetoes.get(&p.base_ref));
        let vetoed = !vetoes.is_empty();
        Reply::json(
            200,
            &json!({
                "canMerge": p.state == PullRequestState::Open && !conflicted && !vetoed,
                "conflicted": conflicted,
                "outcome": if conflicted { "CONFLICTED" } else { "CLEAN" },
                "vetoes": vetoes,
            }),
        )
    })
}

/// Server's `vetoes[]` of merges into a branch (`[]` when none).
fn veto_json(vetoes: Option<&Vec<BbVeto>>) -> Vec<Value> {
    vetoes
        .into_iter()
        .flatten()
        .map(|v| json!({"summaryMessage": v.summary, "detailedMessage": v.detail}))
        .collect()
}

/// `POST .../pull-requests/{id}/merge?version=N`: 200 with the merged pull request; 409 when
/// `version` is not the current one, the pull request is not open, a merge check vetoes it
/// (`PullRequestMergeVetoedException` with `vetoes[]`, as captured in yontrack/yontrack#1120)
/// or the merge conflicts; 400 without a version.
fn merge(bb: &Bitbucket, repo: &RepoName, n: PrNumber, req: &Request) -> Reply {
    let body = body_object(req).unwrap_or_default();
    let version = req
        .query("version")
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| body.get("version").and_then(Value::as_u64));
    let Some(version) = version else {
        return bad_request("The version of the pull request is required to merge it.");
    };
    let message = str_field(&body, "message").map(str::to_owned);
    bb.mutate(|b, now| {
        let bot = b.bot.clone();
        let Some(r) = b.repos.get_mut(repo) else {
            return not_found("No such repository", NO_SUCH_REPO);
        };
        let Some(p) = r.pulls.get(&n.0).cloned() else {
            return no_such_pr(n);
        };
        if p.version != version {
            return out_of_date(
                "pull request",
                "com.atlassian.bitbucket.pull.PullRequestOutOfDateException",
                p.version,
                version,
            );
        }
        if p.state != PullRequestState::Open {
            return server_error(
                409,
                &format!("Pull request {n} is not open and cannot be merged."),
                "com.atlassian.bitbucket.pull.InvalidPullRequestStateException",
            );
        }
        let vetoes = veto_json(r.merge_vetoes.get(&p.base_ref));
        if !vetoes.is_empty() {
            return Reply::json(
                409,
                &json!({"errors": [{
                    "context": null,
                    "message": "Merging the pull request has been vetoed.",
                    "exceptionName": "com.atlassian.bitbucket.pull.PullRequestMergeVetoedException",
                    "conflicted": false,
                    "vetoes": vetoes,
                }]}),
            );
        }
        let message = message.unwrap_or_else(|| format!("Merge pull request #{n} in {repo} from {} to {}", p.head_ref, p.base_ref));
        let merged = match r.merge(&p.base_ref, &p.head_sha, &message) {
            Ok(Some(sha)) => sha,
            Ok(None) => match r.branches.get(&p.base_ref) {
                Some(tip) => tip.clone(),
                None => return not_found("No such branch", NO_SUCH_BRANCH),
            },
            Err(_) => {
                return Reply::json(
                    409,
                    &json!({"errors": [{
                        "context": null,
                        "message": format!("Pull request #{n} can not be merged: it has merge conflicts."),
                        "exceptionName": "com.atlassian.bitbucket.pull.PullRequestMergeVetoedException",
                        "conflicted": true,
                        "vetoes": [],
                    }]}),
                );
            }
        };
        let Some(pr) = r.pulls.get_mut(&n.0) else {
            return no_such_pr(n);
        };
        pr.state = PullRequestState::Merged;
        pr.merge_commit = Some(merged);
        pr.closed_by = Some(bot);
        pr.version += 1;
        pr.updated_at = now;
        let pr = pr.clone();
        Reply::json(200, &j::pull_request(b, &b.repos[repo], &pr))
    })
}

/// `{"text": ...}` of a comment body.
fn comment_text(req: &Request) -> Result<(String, Option<u64>), Reply> {
    let body =
        body_object(req).ok_or_else(|| bad_request("The request body is not valid JSON."))?;
    let text = str_field(&body, "text")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| bad_request("The comment text is required."))?;
    Ok((text.to_owned(), body.get("version").and_then(Value::as_u64)))
}

fn create_comment(bb: &Bitbucket, repo: &RepoName, n: PrNumber, req: &Request) -> Reply {
    let (text, _) = match comment_text(req) {
        Ok(t) => t,
        Err(reply) => return reply,
    };
    if bb.pull_request(repo, n).is_none() {
        return no_such_pr(n);
    }
    let bot = bb.bot();
    match bb.comment(repo, n, bot.as_str(), &text) {
        Ok(c) => bb.read(|b| Reply::json(201, &j::comment(b, &b.repos[repo], &c))),
        Err(_) => no_such_pr(n),
    }
}

/// `GET`, `PUT` (`{"text", "version"}`) and `DELETE` (`?version=N`) of a comment; the
/// version must be the current one (409 otherwise); only the author may change it (403).
fn comment(
    bb: &Bitbucket,
    repo: &RepoName,
    n: PrNumber,
    id: CommentId,
    m: &str,
    req: &Request,
) -> Reply {
    let edit = if m == "PUT" {
        match comment_text(req) {
            Ok((text, Some(v))) => Some((text, v)),
            Ok((_, None)) => return bad_request("The comment version is required."),
            Err(reply) => return reply,
        }
    } else {
        None
    };
    let delete_version = req.query("version").and_then(|v| v.parse::<u64>().ok());
    bb.mutate(|b, now| {
        let bot = b.bot.clone();
        let Some(r) = b.repos.get_mut(repo) else {
            return not_found("No such repository", NO_SUCH_REPO);
        };
        let Some(i) = r.comments.iter().position(|c| c.id == id && c.pr == n) else {
            return not_found(&format!("Comment {id} does not exist."), NO_SUCH_COMMENT);
        };
        let current = r.comments[i].version;
        if m != "GET" && r.comments[i].author != bot {
            return server_error(
                403,
                "You are not permitted to modify this comment.",
                "com.atlassian.bitbucket.AuthorisationException",
            );
        }
        let stale = |expected| {
            out_of_date(
                "comment",
                "com.atlassian.bitbucket.comment.CommentOutOfDateException",
                current,
                expected,
            )
        };
        match m {
            "GET" => {}
            "PUT" => {
                let Some((text, version)) = edit else {
                    return bad_request("The comment text is required.");
                };
                if version != current {
                    return stale(version);
                }
                let c = &mut r.comments[i];
                c.text = text;
                c.version += 1;
                c.updated_at = now;
            }
            "DELETE" => {
                let Some(version) = delete_version else {
                    return bad_request("The comment version is required.");
                };
                if version != current {
                    return stale(version);
                }
                r.comments.remove(i);
                return Reply::empty(204);
            }
            _ => return not_found("No such resource", BAD_REQUEST),
        }
        let r = &b.repos[repo];
        Reply::json(200, &j::comment(b, r, &r.comments[i]))
    })
}

fn get_commit(bb: &Bitbucket, repo: &RepoName, rev: &str) -> Reply {
    bb.read(|b| {
        let r = &b.repos[repo];
        match r.resolve(rev) {
            Some(sha) => Reply::json(200, &j::commit(r, &sha)),
            None => not_found(
                &format!(
                    "Commit '{rev}' does not exist in repository '{}'.",
                    repo.name
                ),
                NO_SUCH_COMMIT,
            ),
        }
    })
}

/// The build status body (`key`, `state`, `url` required; `name`, `description`), stored
/// against `sha` in `repo` or, for the global build-status API, in every repository that has
/// the commit. 204.
fn set_status(bb: &Bitbucket, repo: Option<&RepoName>, sha: &str, req: &Request) -> Reply {
    let Some(body) = body_object(req) else {
        return bad_request("The request body is not valid JSON.");
    };
    let (Some(key), Some(state), Some(url)) = (
        str_field(&body, "key"),
        str_field(&body, "state"),
        str_field(&body, "url"),
    ) else {
        return bad_request("key, state and url are required.");
    };
    if !matches!(
        state,
        "INPROGRESS" | "SUCCESSFUL" | "FAILED" | "CANCELLED" | "UNKNOWN"
    ) {
        return bad_request(&format!("{state} is not a valid build state."));
    }
    let Ok(sha) = Sha::parse(sha) else {
        return bad_request("The commit id must be a full hash.");
    };
    let name = str_field(&body, "name").map(str::to_owned);
    let description = str_field(&body, "description").map(str::to_owned);
    let (key, state, url) = (key.to_owned(), state.to_owned(), url.to_owned());
    bb.mutate(|b, now| {
        let id = b.next_id();
        let bot = b.bot.clone();
        let mut stored = false;
        for (name_of, r) in b.repos.iter_mut() {
            if repo.is_some_and(|want| want != name_of) || !r.commits.contains_key(&sha) {
                continue;
            }
            let existing = r.statuses.iter().position(|s| s.sha == sha && s.key == key);
            let status = BbStatus {
                id: existing.map_or(id, |i| r.statuses[i].id),
                sha: sha.clone(),
                key: key.clone(),
                state: state.clone(),
                name: name.clone(),
                url: url.clone(),
                description: description.clone(),
                creator: bot.clone(),
                created_at: existing.map_or(now, |i| r.statuses[i].created_at),
                updated_at: now,
            };
            match existing {
                Some(i) => r.statuses[i] = status,
                None => r.statuses.push(status),
            }
            stored = true;
        }
        if stored {
            Reply::empty(204)
        } else {
            not_found(&format!("Commit '{sha}' does not exist."), NO_SUCH_COMMIT)
        }
    })
}

fn legacy_set_status(bb: &Bitbucket, sha: &str, req: &Request) -> Reply {
    set_status(bb, None, sha, req)
}

/// `GET /rest/build-status/1.0/commits/{commitId}`: the statuses of the commit, paged.
fn legacy_statuses(bb: &Bitbucket, sha: &str, req: &Request) -> Reply {
    let items = bb.read(|b| {
        b.repos
            .values()
            .flat_map(|r| r.statuses.iter())
            .filter(|s| s.sha.as_str() == sha)
            .map(j::status)
            .collect()
    });
    server_page(bb, req, items)
}

/// `GET .../branches?filterText=`: branches whose name contains the filter, by name.
fn list_branches(bb: &Bitbucket, repo: &RepoName, req: &Request) -> Reply {
    let filter = req.query("filterText").unwrap_or("").to_ascii_lowercase();
    let items = bb.read(|b| {
        let r = &b.repos[repo];
        r.branches
            .iter()
            .filter(|(name, _)| name.to_ascii_lowercase().contains(&filter))
            .map(|(name, tip)| j::branch(r, name, tip))
            .collect()
    });
    server_page(bb, req, items)
}

/// branch-utils `POST` (`{"name", "startPoint"}`): 200 with the branch; 409 when it exists;
/// 400 for an unknown start point.
fn create_branch(bb: &Bitbucket, repo: &RepoName, req: &Request) -> Reply {
    let Some(body) = body_object(req) else {
        return bad_request("The request body is not valid JSON.");
    };
    let (Some(name), Some(start)) = (str_field(&body, "name"), str_field(&body, "startPoint"))
    else {
        return bad_request("name and startPoint are required.");
    };
    let name = name.strip_prefix("refs/heads/").unwrap_or(name).to_owned();
    let start = start.to_owned();
    bb.mutate(|b, _| {
        let Some(r) = b.repos.get_mut(repo) else {
            return not_found("No such repository", NO_SUCH_REPO);
        };
        let Some(sha) = r.resolve(start.strip_prefix("refs/heads/").unwrap_or(&start)) else {
            return bad_request(&format!("The start point {start} does not exist."));
        };
        if r.branches.contains_key(&name) {
            return server_error(
                409,
                &format!("Branch {name} already exists."),
                "com.atlassian.bitbucket.repository.DuplicateRefException",
            );
        }
        r.branches.insert(name.clone(), sha.clone());
        Reply::json(200, &j::branch(r, &name, &sha))
    })
}

/// branch-utils `DELETE` (`{"name": "refs/heads/x", "dryRun"}`): 204; 404 for an unknown
/// branch.
fn delete_branch(bb: &Bitbucket, repo: &RepoName, req: &Request) -> Reply {
    let Some(body) = body_object(req) else {
        return bad_request("The request body is not valid JSON.");
    };
    let Some(name) = str_field(&body, "name") else {
        return bad_request("name is required.");
    };
    let name = name.strip_prefix("refs/heads/").unwrap_or(name).to_owned();
    let dry_run = body.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
    bb.mutate(|b, _| {
        let Some(r) = b.repos.get_mut(repo) else {
            return not_found("No such repository", NO_SUCH_REPO);
        };
        if !r.branches.contains_key(&name) {
            return not_found(
                &format!("Branch refs/heads/{name} does not exist."),
                NO_SUCH_BRANCH,
            );
        }
        if !dry_run {
            r.branches.remove(&name);
        }
        Reply::empty(204)
    })
}

/// `GET /rest/api/1.0/users?filter=&permission.1=REPO_*&permission.1.projectKey=&permission.1.repositorySlug=`:
/// users whose name, display name or e-mail contains the filter and who hold at least the
/// permission on the repository.
fn users(bb: &Bitbucket, req: &Request) -> Reply {
    let filter = req.query("filter").unwrap_or("").to_ascii_lowercase();
    let needed = match req.query("permission.1") {
        None => None,
        Some("REPO_READ") => Some(Permission::Read),
        Some("REPO_WRITE") => Some(Permission::Write),
        Some("REPO_ADMIN") => Some(Permission::Admin),
        Some(other) => return bad_request(&format!("{other} is not a repository permission.")),
    };
    let repo = match (
        req.query("permission.1.projectKey"),
        req.query("permission.1.repositorySlug"),
    ) {
        (Some(k), Some(s)) => Some(RepoName::new(k, s)),
        _ => None,
    };
    let items = bb.read(|b| {
        let mut logins: Vec<&Login> = b
            .repos
            .values()
            .flat_map(|r| r.permissions.keys())
            .collect();
        logins.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        logins.dedup();
        logins
            .into_iter()
            .filter(|l| {
                let name = l.as_str().to_ascii_lowercase();
                name.contains(&filter) || format!("{name}@example.com").contains(&filter)
            })
            .filter(|l| match (&needed, &repo) {
                (Some(p), Some(repo)) => b.repos.get(repo).is_some_and(|r| r.permission(l) >= *p),
                _ => true,
            })
            .map(|l| j::user(b, l))
            .collect()
    });
    server_page(bb, req, items)
}

fn list_hooks(bb: &Bitbucket, repo: &RepoName, req: &Request) -> Reply {
    let items = bb.read(|b| b.repos[repo].hooks.iter().map(j::hook).collect());
    server_page(bb, req, items)
}

/// The fields of a webhook body: `name`, `url` and `events` required.
fn hook_fields(req: &Request) -> Result<HookFields, Reply> {
    let body =
        body_object(req).ok_or_else(|| bad_request("The request body is not valid JSON."))?;
    let (Some(name), Some(url)) = (str_field(&body, "name"), str_field(&body, "url")) else {
        return Err(bad_request("name and url are required."));
    };
    let events: Vec<String> = body
        .get("events")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if events.is_empty() {
        return Err(bad_request("At least one event is required."));
    }
    let active = body.get("active").and_then(Value::as_bool).unwrap_or(true);
    let secret = body
        .get("configuration")
        .and_then(|c| c.get("secret"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok(HookFields {
        name: name.to_owned(),
        url: url.to_owned(),
        events,
        active,
        secret: Some(secret),
    })
}

fn create_hook(bb: &Bitbucket, repo: &RepoName, req: &Request) -> Reply {
    let HookFields {
        name,
        url,
        events,
        active,
        secret,
    } = match hook_fields(req) {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    bb.mutate(|b, _| {
        let id = b.next_id();
        let Some(r) = b.repos.get_mut(repo) else {
            return not_found("No such repository", NO_SUCH_REPO);
        };
        let h = BbHook {
            id,
            uuid: uuid(&format!("hook {id}")),
            name,
            url,
            events,
            active,
            secret: secret.flatten(),
        };
        r.hooks.push(h.clone());
        Reply::json(201, &j::hook(&h))
    })
}

/// `GET`, `PUT` (the whole hook, `configuration` included) and `DELETE` (204) of a hook.
fn hook(bb: &Bitbucket, repo: &RepoName, id: u64, m: &str, req: &Request) -> Reply {
    let fields = if m == "PUT" {
        match hook_fields(req) {
            Ok(f) => Some(f),
            Err(reply) => return reply,
        }
    } else {
        None
    };
    bb.mutate(|b, _| {
        let Some(r) = b.repos.get_mut(repo) else {
            return not_found("No such repository", NO_SUCH_REPO);
        };
        let Some(i) = r.hooks.iter().position(|h| h.id == id) else {
            return not_found(&format!("Webhook {id} does not exist."), NO_SUCH_HOOK);
        };
        match (m, fields) {
            ("GET", _) => {}
            ("PUT", Some(f)) => {
                let h = &mut r.hooks[i];
                h.name = f.name;
                h.url = f.url;
                h.events = f.events;
                h.active = f.active;
                h.secret = f.secret.flatten();
            }
            ("DELETE", _) => {
                r.hooks.remove(i);
                return Reply::empty(204);
            }
            _ => return not_found("No such resource", BAD_REQUEST),
        }
        Reply::json(200, &j::hook(&r.hooks[i]))
    })
}
