//! Route dispatch and handlers of [`super::FakeBitbucketCloud`] (REST 2.0). Each handler reads
//! or mutates the world under one lock and answers with Cloud's statuses and error bodies:
//! 404 for unknown objects, 400 for bodies Cloud would refuse (a build status without `url`,
//! an existing branch, a merge that conflicts: `{"error": {"message", "fields":
//! {"merge_checks": [...]}}}`), 403 for editing someone else's comment and for listing
//! permissions without administering the repository.
//!
//! References per route are on the handlers; shapes in `cloud_json`.

use super::cloud_json as j;
use super::{HookFields, body_object, cloud_error, cloud_page, str_field};
use crate::http::{Reply, Request};
use crate::world::bitbucket::{BbHook, BbStatus, Bitbucket, uuid};
use greg_core::{CommentId, Login, Permission, PrNumber, PullRequestState, RepoName, Sha};
use serde_json::{Value, json};

fn not_found(what: &str) -> Reply {
    cloud_error(404, &format!("{what} not found"))
}

fn bad_request(message: &str) -> Reply {
    cloud_error(400, message)
}

fn number(s: &str) -> Option<u64> {
    s.parse().ok()
}

/// Dispatches one request.
pub(super) fn route(bb: &Bitbucket, req: &Request) -> Reply {
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    match seg.as_slice() {
        ["2.0", "user"] if m == "GET" => bb.read(|b| Reply::json(200, &j::user(b, &b.bot))),
        ["2.0", "workspaces", ws, "permissions", "repositories", slug] if m == "GET" => {
            permissions(bb, &RepoName::new(*ws, *slug), req)
        }
        ["2.0", "repositories", ws, slug, rest @ ..] => {
            repo_route(bb, &RepoName::new(*ws, *slug), m, rest, req)
        }
        _ => not_found("Resource"),
    }
}

fn repo_route(bb: &Bitbucket, repo: &RepoName, m: &str, rest: &[&str], req: &Request) -> Reply {
    if bb.read(|b| !b.repos.contains_key(repo)) {
        return not_found(&format!("Repository {repo}"));
    }
    let pr = |n: &str| number(n).map(PrNumber);
    match (m, rest) {
        ("GET", []) => bb.read(|b| Reply::json(200, &j::repository(b, repo))),
        ("GET", ["pullrequests"]) => list_pulls(bb, repo, req),
        ("GET", ["pullrequests", n]) => with_pr(pr(n), |n| get_pull(bb, repo, n)),
        ("GET", ["pullrequests", n, "activity"]) => with_pr(pr(n), |n| activity(bb, repo, n, req)),
        ("POST", ["pullrequests", n, "merge"]) => with_pr(pr(n), |n| merge(bb, repo, n, req)),
        ("GET", ["pullrequests", n, "comments"]) => {
            with_pr(pr(n), |n| list_comments(bb, repo, n, req))
        }
        ("POST", ["pullrequests", n, "comments"]) => {
            with_pr(pr(n), |n| create_comment(bb, repo, n, req))
        }
        (_, ["pullrequests", n, "comments", id]) => match (pr(n), number(id)) {
            (Some(n), Some(id)) => comment(bb, repo, n, CommentId(id), m, req),
            _ => not_found("Comment"),
        },
        ("GET", ["commit", rev]) => get_commit(bb, repo, rev),
        ("POST", ["commit", rev, "statuses", "build"]) => set_status(bb, repo, rev, req),
        ("GET", ["commit", rev, "statuses"]) => list_statuses(bb, repo, rev, req),
        ("GET", ["commit", rev, "statuses", "build", key]) => get_status(bb, repo, rev, key),
        ("GET", ["refs", "branches"]) => list_branches(bb, repo, req),
        ("POST", ["refs", "branches"]) => create_branch(bb, repo, req),
        ("GET", ["refs", "branches", name @ ..]) if !name.is_empty() => {
            get_branch(bb, repo, &name.join("/"))
        }
        ("DELETE", ["refs", "branches", name @ ..]) if !name.is_empty() => {
            delete_branch(bb, repo, &name.join("/"))
        }
        ("GET", ["hooks"]) => list_hooks(bb, repo, req),
        ("POST", ["hooks"]) => create_hook(bb, repo, req),
        (_, ["hooks", uid]) => hook(bb, repo, uid, m, req),
        _ => not_found("Resource"),
    }
}

fn with_pr(n: Option<PrNumber>, f: impl FnOnce(PrNumber) -> Reply) -> Reply {
    n.map_or_else(|| not_found("Pull request"), f)
}

/// `GET .../pullrequests?state=OPEN|MERGED|DECLINED|SUPERSEDED` (repeatable; default
/// `OPEN`), newest first.
fn list_pulls(bb: &Bitbucket, repo: &RepoName, req: &Request) -> Reply {
    let states: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k == "state")
        .map(|(_, v)| v.as_str())
        .collect();
    let wanted = |s: PullRequestState| {
        let name = match s {
            PullRequestState::Open => "OPEN",
            PullRequestState::Merged => "MERGED",
            PullRequestState::Closed => "DECLINED",
        };
        if states.is_empty() {
            name == "OPEN"
        } else {
            states.iter().any(|w| w.eq_ignore_ascii_case(name))
        }
    };
    let items = bb.read(|b| {
        let r = &b.repos[repo];
        r.pulls
            .values()
            .rev()
            .filter(|p| wanted(p.state))
            .map(|p| j::pull_request(b, r, p))
            .collect()
    });
    cloud_page(bb, req, items)
}

fn get_pull(bb: &Bitbucket, repo: &RepoName, n: PrNumber) -> Reply {
    bb.read(|b| {
        let r = &b.repos[repo];
        match r.pulls.get(&n.0) {
            Some(p) => Reply::json(200, &j::pull_request(b, r, p)),
            None => not_found(&format!("Pull request {n}")),
        }
    })
}

fn activity(bb: &Bitbucket, repo: &RepoName, n: PrNumber, req: &Request) -> Reply {
    let items = bb.read(|b| {
        let r = &b.repos[repo];
        r.pulls.get(&n.0).map(|p| j::activity(b, r, p))
    });
    match items {
        Some(items) => cloud_page(bb, req, items),
        None => not_found(&format!("Pull request {n}")),
    }
}

/// `POST .../pullrequests/{id}/merge` (`merge_strategy`, `message`, `close_source_branch`):
/// 200 with the merged pull request; 400 with `error.fields.merge_checks` when a merge check
/// ([`Bitbucket::veto_merges`](crate::Bitbucket::veto_merges)) or a conflict blocks it. No
/// precondition: whatever the head is then is merged.
fn merge(bb: &Bitbucket, repo: &RepoName, n: PrNumber, req: &Request) -> Reply {
    let Some(body) = body_object(req) else {
        return bad_request("Invalid JSON");
    };
    let strategy = str_field(&body, "merge_strategy").unwrap_or("merge_commit");
    if !matches!(strategy, "merge_commit" | "squash" | "fast_forward") {
        return bad_request(&format!("merge_strategy: {strategy} is not a valid choice"));
    }
    let message = str_field(&body, "message").map(str::to_owned);
    bb.mutate(|b, now| {
        let bot = b.bot.clone();
        let Some(r) = b.repos.get_mut(repo) else {
            return not_found("Repository");
        };
        let Some(p) = r.pulls.get(&n.0).cloned() else {
            return not_found(&format!("Pull request {n}"));
        };
        if p.state != PullRequestState::Open {
            return bad_request("You can't merge a pull request that is not open.");
        }
        if let Some(vetoes) = r.merge_vetoes.get(&p.base_ref) {
            let checks: Vec<&str> = vetoes.iter().map(|v| v.summary.as_str()).collect();
            return Reply::json(
                400,
                &json!({"type": "error", "error": {
                    "message": "Bad request",
                    "fields": {"merge_checks": checks},
                }}),
            );
        }
        let message = message.unwrap_or_else(|| format!("Merged in {} (pull request #{n})", p.head_ref));
        let merged = match r.merge(&p.base_ref, &p.head_sha, &message) {
            Ok(Some(sha)) => sha,
            Ok(None) => match r.branches.get(&p.base_ref) {
                Some(tip) => tip.clone(),
                None => return not_found("Branch"),
            },
            Err(e) => {
                return Reply::json(
                    400,
                    &json!({"type": "error", "error": {
                        "message": "Bad request",
                        "fields": {"merge_checks": [format!("You can't merge until you resolve all merge conflicts. ({e})")]},
                    }}),
                );
            }
        };
        let Some(pr) = r.pulls.get_mut(&n.0) else {
            return not_found("Pull request");
        };
        pr.state = PullRequestState::Merged;
        pr.merge_commit = Some(merged);
        pr.closed_by = Some(bot);
        pr.updated_at = now;
        pr.version += 1;
        let pr = pr.clone();
        Reply::json(200, &j::pull_request(b, &b.repos[repo], &pr))
    })
}

fn list_comments(bb: &Bitbucket, repo: &RepoName, n: PrNumber, req: &Request) -> Reply {
    let items = bb.read(|b| {
        let r = &b.repos[repo];
        let p = r.pulls.get(&n.0)?;
        Some(
            r.comments
                .iter()
                .filter(|c| c.pr == n)
                .map(|c| j::comment(b, r, p, c))
                .collect(),
        )
    });
    match items {
        Some(items) => cloud_page(bb, req, items),
        None => not_found(&format!("Pull request {n}")),
    }
}

/// The Markdown of a `{"content": {"raw": ...}}` body.
fn raw_content(req: &Request) -> Result<String, Reply> {
    let body = body_object(req).ok_or_else(|| bad_request("Invalid JSON"))?;
    body.get("content")
        .and_then(|c| c.get("raw"))
        .and_then(Value::as_str)
        .filter(|raw| !raw.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| bad_request("content.raw: This field is required."))
}

fn create_comment(bb: &Bitbucket, repo: &RepoName, n: PrNumber, req: &Request) -> Reply {
    let raw = match raw_content(req) {
        Ok(raw) => raw,
        Err(reply) => return reply,
    };
    if bb.pull_request(repo, n).is_none() {
        return not_found(&format!("Pull request {n}"));
    }
    let bot = bb.bot();
    match bb.comment(repo, n, bot.as_str(), &raw) {
        Ok(c) => bb.read(|b| {
            let r = &b.repos[repo];
            let p = &r.pulls[&n.0];
            let v = j::comment(b, r, p, &c);
            let location = v
                .pointer("/links/self/href")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            Reply::json(201, &v).with_header("location", location)
        }),
        Err(e) => not_found(&e.to_string()),
    }
}

/// `GET`, `PUT` (`{"content": {"raw"}}`, the author only) and `DELETE` (204) of one comment.
fn comment(
    bb: &Bitbucket,
    repo: &RepoName,
    n: PrNumber,
    id: CommentId,
    m: &str,
    req: &Request,
) -> Reply {
    let raw = if m == "PUT" {
        match raw_content(req) {
            Ok(raw) => Some(raw),
            Err(reply) => return reply,
        }
    } else {
        None
    };
    bb.mutate(|b, now| {
        let bot = b.bot.clone();
        let Some(r) = b.repos.get_mut(repo) else {
            return not_found("Repository");
        };
        let Some(i) = r.comments.iter().position(|c| c.id == id && c.pr == n) else {
            return not_found(&format!("Comment {id}"));
        };
        if m != "GET" && r.comments[i].author != bot {
            return cloud_error(403, "You can only edit or delete your own comments.");
        }
        match m {
            "GET" => {}
            "PUT" => {
                let c = &mut r.comments[i];
                c.text = raw.unwrap_or_default();
                c.version += 1;
                c.updated_at = now;
            }
            "DELETE" => {
                r.comments.remove(i);
                return Reply::empty(204);
            }
            _ => return not_found("Resource"),
        }
        let r = &b.repos[repo];
        match r.pulls.get(&n.0) {
            Some(p) => Reply::json(200, &j::comment(b, r, p, &r.comments[i])),
            None => not_found("Pull request"),
        }
    })
}

/// `GET .../commit/{commit}`: a full hash, an unambiguous abbreviation or a branch name.
fn get_commit(bb: &Bitbucket, repo: &RepoName, rev: &str) -> Reply {
    bb.read(|b| {
        let r = &b.repos[repo];
        match r.resolve(rev) {
            Some(sha) => Reply::json(200, &j::commit(b, r, &sha)),
            None => not_found(&format!("Commit {rev}")),
        }
    })
}

/// The full commit a status path names (Cloud accepts a full hash there).
fn status_commit(bb: &Bitbucket, repo: &RepoName, rev: &str) -> Option<Sha> {
    bb.read(|b| b.repos[repo].resolve(rev))
}

/// `POST .../commit/{commit}/statuses/build` (`key`, `state`, `url` required; `name`,
/// `description`): 201; a status with the same key is overwritten.
fn set_status(bb: &Bitbucket, repo: &RepoName, rev: &str, req: &Request) -> Reply {
    let Some(body) = body_object(req) else {
        return bad_request("Invalid JSON");
    };
    let Some(sha) = status_commit(bb, repo, rev) else {
        return not_found(&format!("Commit {rev}"));
    };
    let (Some(key), Some(state), Some(url)) = (
        str_field(&body, "key"),
        str_field(&body, "state"),
        str_field(&body, "url"),
    ) else {
        return bad_request("key, state and url are required");
    };
    if !matches!(state, "INPROGRESS" | "SUCCESSFUL" | "FAILED" | "STOPPED") {
        return bad_request(&format!("state: {state} is not a valid choice"));
    }
    let name = str_field(&body, "name").map(str::to_owned);
    let description = str_field(&body, "description").map(str::to_owned);
    let (key, state, url) = (key.to_owned(), state.to_owned(), url.to_owned());
    bb.mutate(|b, now| {
        let id = b.next_id();
        let bot = b.bot.clone();
        let Some(r) = b.repos.get_mut(repo) else {
            return not_found("Repository");
        };
        let existing = r.statuses.iter().position(|s| s.sha == sha && s.key == key);
        let status = BbStatus {
            id: existing.map_or(id, |i| r.statuses[i].id),
            sha: sha.clone(),
            key,
            state,
            name,
            url,
            description,
            creator: bot,
            created_at: existing.map_or(now, |i| r.statuses[i].created_at),
            updated_at: now,
        };
        match existing {
            Some(i) => r.statuses[i] = status.clone(),
            None => r.statuses.push(status.clone()),
        }
        Reply::json(201, &j::status(b, &b.repos[repo], &status))
    })
}

fn list_statuses(bb: &Bitbucket, repo: &RepoName, rev: &str, req: &Request) -> Reply {
    let Some(sha) = status_commit(bb, repo, rev) else {
        return not_found(&format!("Commit {rev}"));
    };
    let items = bb.read(|b| {
        let r = &b.repos[repo];
        r.statuses
            .iter()
            .filter(|s| s.sha == sha)
            .map(|s| j::status(b, r, s))
            .collect()
    });
    cloud_page(bb, req, items)
}

fn get_status(bb: &Bitbucket, repo: &RepoName, rev: &str, key: &str) -> Reply {
    let Some(sha) = status_commit(bb, repo, rev) else {
        return not_found(&format!("Commit {rev}"));
    };
    bb.read(|b| {
        let r = &b.repos[repo];
        match r.statuses.iter().find(|s| s.sha == sha && s.key == key) {
            Some(s) => Reply::json(200, &j::status(b, r, s)),
            None => not_found(&format!("Build status {key}")),
        }
    })
}

fn list_branches(bb: &Bitbucket, repo: &RepoName, req: &Request) -> Reply {
    let items = bb.read(|b| {
        let r = &b.repos[repo];
        r.branches
            .iter()
            .map(|(name, tip)| j::branch(b, r, name, tip))
            .collect()
    });
    cloud_page(bb, req, items)
}

fn get_branch(bb: &Bitbucket, repo: &RepoName, name: &str) -> Reply {
    bb.read(|b| {
        let r = &b.repos[repo];
        match r.branches.get(name) {
            Some(tip) => Reply::json(200, &j::branch(b, r, name, tip)),
            None => not_found(&format!("Branch {name}")),
        }
    })
}

/// `POST .../refs/branches` (`{"name", "target": {"hash"}}`): 201; 400 when the branch
/// exists or the commit is unknown.
fn create_branch(bb: &Bitbucket, repo: &RepoName, req: &Request) -> Reply {
    let Some(body) = body_object(req) else {
        return bad_request("Invalid JSON");
    };
    let name = str_field(&body, "name").map(str::to_owned);
    let hash = body
        .get("target")
        .and_then(|t| t.get("hash"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (Some(name), Some(hash)) = (name, hash) else {
        return bad_request("name and target.hash are required");
    };
    bb.mutate(|b, _| {
        let Some(r) = b.repos.get_mut(repo) else {
            return not_found("Repository");
        };
        let Some(sha) = r.resolve(&hash) else {
            return bad_request(&format!(
                "target.hash: {hash} is not a commit of this repository"
            ));
        };
        if r.branches.contains_key(&name) {
            return bad_request(&format!("BRANCH_ALREADY_EXISTS: {name}"));
        }
        r.branches.insert(name.clone(), sha.clone());
        Reply::json(201, &j::branch(b, &b.repos[repo], &name, &sha))
    })
}

fn delete_branch(bb: &Bitbucket, repo: &RepoName, name: &str) -> Reply {
    bb.mutate(|b, _| {
        let Some(r) = b.repos.get_mut(repo) else {
            return not_found("Repository");
        };
        match r.branches.remove(name) {
            Some(_) => Reply::empty(204),
            None => not_found(&format!("Branch {name}")),
        }
    })
}

/// `GET .../workspaces/{workspace}/permissions/repositories/{repo_slug}?q=...`: effective
/// permissions, filtered by a BBQL `user.account_id="..."` or `user.uuid="..."`; the caller
/// must administer the repository (403 otherwise).
fn permissions(bb: &Bitbucket, repo: &RepoName, req: &Request) -> Reply {
    let filter = req.query("q").map(parse_user_filter);
    let items = bb.read(|b| {
        let r = b.repos.get(repo)?;
        if r.permission(&b.bot) != Permission::Admin {
            return Some(Err(()));
        }
        let mut grants: Vec<(&Login, &Permission)> = r.permissions.iter().collect();
        grants.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Some(Ok(grants
            .into_iter()
            .filter(|(login, _)| match &filter {
                None => true,
                Some(None) => false,
                Some(Some((field, value))) => {
                    let u = j::user(b, login);
                    u.get(field.as_str()).and_then(Value::as_str) == Some(value.as_str())
                }
            })
            .map(|(login, p)| j::permission(b, r, login, *p))
            .collect::<Vec<_>>()))
    });
    match items {
        None => not_found(&format!("Repository {repo}")),
        Some(Err(())) => cloud_error(403, "You must be an administrator of this repository."),
        Some(Ok(items)) => cloud_page(bb, req, items),
    }
}

/// `user.account_id="x"` or `user.uuid="{x}"` → (`account_id` | `uuid`, value); `None` for
/// any other query (which then matches nothing).
fn parse_user_filter(q: &str) -> Option<(String, String)> {
    let (field, value) = q.split_once('=')?;
    let field = field.trim().strip_prefix("user.")?;
    if !matches!(field, "account_id" | "uuid") {
        return None;
    }
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    Some((field.to_owned(), value.to_owned()))
}

fn list_hooks(bb: &Bitbucket, repo: &RepoName, req: &Request) -> Reply {
    let items = bb.read(|b| {
        let r = &b.repos[repo];
        r.hooks.iter().map(|h| j::hook(b, r, h)).collect()
    });
    cloud_page(bb, req, items)
}

/// The fields of a webhook body: `url` and `events` required; `secret` `null` removes it.
fn hook_fields(req: &Request) -> Result<HookFields, Reply> {
    let body = body_object(req).ok_or_else(|| bad_request("Invalid JSON"))?;
    let url = str_field(&body, "url").ok_or_else(|| bad_request("url: This field is required."))?;
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
        return Err(bad_request("events: This field is required."));
    }
    let description = str_field(&body, "description").unwrap_or("").to_owned();
    let active = body.get("active").and_then(Value::as_bool).unwrap_or(true);
    let secret = match body.get("secret") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(v.as_str().map(str::to_owned)),
    };
    Ok(HookFields {
        name: description,
        url: url.to_owned(),
        events,
        active,
        secret,
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
            return not_found("Repository");
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
        Reply::json(201, &j::hook(b, &b.repos[repo], &h))
    })
}

/// `GET`, `PUT` (the whole hook; a `secret` left out is kept) and `DELETE` (204) of a hook.
fn hook(bb: &Bitbucket, repo: &RepoName, uid: &str, m: &str, req: &Request) -> Reply {
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
            return not_found("Repository");
        };
        let Some(i) = r.hooks.iter().position(|h| h.uuid == uid) else {
            return not_found(&format!("Webhook {uid}"));
        };
        match (m, fields) {
            ("GET", _) => {}
            ("PUT", Some(f)) => {
                let h = &mut r.hooks[i];
                h.url = f.url;
                h.name = f.name;
                h.events = f.events;
                h.active = f.active;
                if let Some(secret) = f.secret {
                    h.secret = secret;
                }
            }
            ("DELETE", _) => {
                r.hooks.remove(i);
                return Reply::empty(204);
            }
            _ => return not_found("Resource"),
        }
        let r = &b.repos[repo];
        Reply::json(200, &j::hook(b, r, &r.hooks[i]))
    })
}
