//! Route dispatch and handlers of [`super::FakeGithub`]. Every handler reads or mutates the
//! world under one lock and answers with GitHub's status codes and bodies: 404 for unknown
//! objects, 400 "Problems parsing JSON", 422 validation errors (the messages GitHub uses, e.g.
//! "No commit found for SHA", "Reference already exists", "Update is not a fast forward"),
//! 405/409 on pull-request merges, and the refusals of protected branches (`protection`).

use super::json;
use crate::http::{Reply, Request};
use crate::world::{Comment, World, WorldError, WorldState};
use greg_core::{CommentId, CommitState, Login, PrNumber, PullRequestState, RepoName, Sha};
use serde_json::{Map, Value};

const DOCS: &str = "https://docs.github.com/rest";

/// GitHub's limit on a commit status description.
const MAX_DESCRIPTION: usize = 140;
/// GitHub's limit on a comment body (characters).
const MAX_COMMENT: usize = 65_536;

pub(super) fn not_found() -> Reply {
    Reply::json(404, &json::error("Not Found", 404, DOCS))
}

fn bad_json() -> Reply {
    Reply::json(400, &json::error("Problems parsing JSON", 400, DOCS))
}

pub(super) fn invalid(message: &str, resource: &str, field: &str, code: &str) -> Reply {
    Reply::json(422, &json::validation_error(message, resource, field, code))
}

fn world_error(e: &WorldError) -> Reply {
    match e {
        WorldError::Git(m) => Reply::json(409, &json::error(m, 409, DOCS)),
        _ => not_found(),
    }
}

/// The JSON object body; an empty body is an empty object.
pub(super) fn body_object(req: &Request) -> Result<Map<String, Value>, Reply> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad_json()),
    }
}

fn opt_str<'a>(m: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Reply> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(
            &format!("Invalid request.\n\nFor '{key}', the value is not a string."),
            "Request",
            key,
            "invalid",
        )),
    }
}

fn number(s: &str) -> Option<u64> {
    s.parse().ok()
}

/// Dispatches one request.
pub(super) fn route(world: &World, req: &Request) -> Reply {
    if let Some(reply) = super::hooks::route(world, req) {
        return reply;
    }
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let ["repos", owner, name, rest @ ..] = seg.as_slice() else {
        return not_found();
    };
    let repo = RepoName::new(*owner, *name);
    let m = req.method.as_str();
    let reply = match (m, rest) {
        ("GET", []) => get_repo(world, &repo),
        ("GET", ["pulls"]) => list_pulls(world, &repo, req),
        ("GET", ["pulls", n]) => number(n).and_then(|n| get_pull(world, &repo, PrNumber(n))),
        ("GET", ["pulls", n, "reviews"]) => {
            number(n).and_then(|n| list_reviews(world, &repo, PrNumber(n), req))
        }
        ("PUT", ["pulls", n, "merge"]) => {
            number(n).map(|n| merge_pull(world, &repo, PrNumber(n), req))
        }
        ("GET", ["collaborators", user, "permission"]) => permission(world, &repo, user),
        ("GET", ["collaborators"]) => collaborators(world, &repo, req),
        ("GET", ["issues", "comments", id]) => {
            number(id).and_then(|id| get_comment(world, &repo, id))
        }
        ("PATCH", ["issues", "comments", id]) => {
            number(id).and_then(|id| edit_comment(world, &repo, id, req))
        }
        ("DELETE", ["issues", "comments", id]) => {
            number(id).and_then(|id| delete_comment(world, &repo, id))
        }
        ("POST", ["issues", "comments", id, "reactions"]) => {
            number(id).and_then(|id| create_reaction(world, &repo, id, req))
        }
        ("GET", ["issues", n, "comments"]) => {
            number(n).and_then(|n| list_comments(world, &repo, PrNumber(n), req))
        }
        ("POST", ["issues", n, "comments"]) => {
            number(n).and_then(|n| create_comment(world, &repo, PrNumber(n), req))
        }
        ("POST", ["statuses", sha]) => Some(create_status(world, &repo, sha, req)),
        ("GET", ["commits", sha, "pulls"]) => commit_pulls(world, &repo, sha, req),
        ("GET", ["commits", r @ .., "status"]) if !r.is_empty() => {
            Some(combined_status(world, &repo, &r.join("/")))
        }
        ("GET", ["branches", b @ ..]) if !b.is_empty() => {
            Some(get_branch(world, &repo, &b.join("/")))
        }
        ("GET", ["git", "ref", r @ ..]) if !r.is_empty() => {
            Some(get_ref(world, &repo, &r.join("/")))
        }
        ("POST", ["git", "refs"]) => Some(create_ref(world, &repo, req)),
        ("PATCH", ["git", "refs", r @ ..]) if !r.is_empty() => {
            Some(update_ref(world, &repo, &r.join("/"), req))
        }
        ("DELETE", ["git", "refs", r @ ..]) if !r.is_empty() => {
            Some(delete_ref(world, &repo, &r.join("/")))
        }
        ("POST", ["merges"]) => Some(merge_branches(world, &repo, req)),
        _ => None,
    };
    reply.unwrap_or_else(not_found)
}

fn get_repo(world: &World, repo: &RepoName) -> Option<Reply> {
    world.read(|s| {
        let r = s.github.repos.get(repo)?;
        Some(Reply::json(
            200,
            &json::repository(&s.github.api_url, repo, Some(r)),
        ))
    })
}

/// Pages `items` by `per_page` (1..=100, default 30) and `page` (from 1), with GitHub's `Link`
/// header (`next`, `last`, `first`, `prev`).
pub(super) fn paginate(api: &str, req: &Request, items: Vec<Value>) -> Reply {
    let per_page = req
        .query("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = req
        .query("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let link_to = |p: usize| {
        let mut q: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        q.push(format!("per_page={per_page}"));
        q.push(format!("page={p}"));
        format!("<{api}{}?{}>", req.path, q.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", link_to(page - 1)));
    }
    if page < last {
        links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
        links.push(format!("{}; rel=\"last\"", link_to(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", link_to(1)));
    }
    let reply = Reply::json(200, &Value::Array(slice));
    if links.is_empty() {
        reply
    } else {
        reply.with_header("link", links.join(", "))
    }
}

fn list_pulls(world: &World, repo: &RepoName, req: &Request) -> Option<Reply> {
    world.read(|s| {
        let r = s.github.repos.get(repo)?;
        let api = &s.github.api_url;
        let state = req.query("state").unwrap_or("open");
        let mut pulls: Vec<_> = r
            .pulls
            .values()
            .filter(|p| match state {
                "all" => true,
                "closed" => p.state != PullRequestState::Open,
                _ => p.state == PullRequestState::Open,
            })
            .filter(|p| req.query("base").is_none_or(|b| b == p.base_ref))
            .filter(|p| {
                req.query("head").is_none_or(|h| {
                    let owner = p.head_repo.as_ref().map_or("", |r| r.owner.as_str());
                    h == format!("{owner}:{}", p.head_ref)
                })
            })
            .collect();
        pulls.sort_by_key(|p| std::cmp::Reverse(p.created_at));
        let items = pulls
            .iter()
            .map(|p| json::pull_request(api, r, p))
            .collect();
        Some(paginate(api, req, items))
    })
}

/// `GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls`: the fake keeps no ancestry per pull
/// request, so it lists the pull requests whose head is the commit, open ones first (GitHub:
/// "If the commit is not present in the default branch, will only return open pull requests
/// associated with the commit").
fn commit_pulls(world: &World, repo: &RepoName, sha: &str, req: &Request) -> Option<Reply> {
    world.read(|s| {
        let r = s.github.repos.get(repo)?;
        let api = &s.github.api_url;
        let mut pulls: Vec<_> = r
            .pulls
            .values()
            .filter(|p| p.head_sha.as_str() == sha)
            .collect();
        pulls.sort_by_key(|p| {
            (
                p.state != PullRequestState::Open,
                std::cmp::Reverse(p.created_at),
            )
        });
        let items = pulls
            .iter()
            .map(|p| json::pull_request(api, r, p))
            .collect();
        Some(paginate(api, req, items))
    })
}

fn get_pull(world: &World, repo: &RepoName, n: PrNumber) -> Option<Reply> {
    world.read(|s| {
        let r = s.github.repos.get(repo)?;
        let p = r.pulls.get(&n.0)?;
        Some(Reply::json(
            200,
            &json::pull_request(&s.github.api_url, r, p),
        ))
    })
}

fn list_reviews(world: &World, repo: &RepoName, n: PrNumber, req: &Request) -> Option<Reply> {
    world.read(|s| {
        let r = s.github.repos.get(repo)?;
        r.pulls.get(&n.0)?;
        let api = &s.github.api_url;
        let items = r
            .reviews
            .iter()
            .filter(|v| v.pr == n)
            .map(|v| json::review(api, r, v))
            .collect();
        Some(paginate(api, req, items))
    })
}

fn permission(world: &World, repo: &RepoName, user: &str) -> Option<Reply> {
    world.read(|s| {
        let r = s.github.repos.get(repo)?;
        let login = Login::from(user);
        Some(Reply::json(
            200,
            &json::permission(&s.github.api_url, &login, r.permission(&login)),
        ))
    })
}

/// `GET /repos/{owner}/{repo}/collaborators?permission=P`: the logins granted at least `P`
/// (`pull`, `triage`, `push`, `maintain`, `admin`; default `pull`) with
/// [`World::set_permission`], by login, paged.
fn collaborators(world: &World, repo: &RepoName, req: &Request) -> Option<Reply> {
    use greg_core::Permission;
    let least = match req.query("permission").unwrap_or("pull") {
        "pull" => Permission::Read,
        "triage" => Permission::Triage,
        "push" => Permission::Write,
        "maintain" => Permission::Maintain,
        "admin" => Permission::Admin,
        _ => {
            return Some(invalid(
                "Validation Failed",
                "Collaborator",
                "permission",
                "invalid",
            ));
        }
    };
    world.read(|s| {
        let r = s.github.repos.get(repo)?;
        let api = &s.github.api_url;
        let mut logins: Vec<&Login> = r
            .permissions
            .iter()
            .filter(|(_, p)| **p >= least)
            .map(|(l, _)| l)
            .collect();
        logins.sort_by_key(|l| l.as_str().to_ascii_lowercase());
        let items = logins
            .into_iter()
            .map(|l| json::permission(api, l, r.permission(l))["user"].clone())
            .collect();
        Some(paginate(api, req, items))
    })
}

fn find_comment<'a>(s: &'a WorldState, repo: &RepoName, id: u64) -> Option<&'a Comment> {
    s.github
        .repos
        .get(repo)?
        .comments
        .iter()
        .find(|c| c.id == CommentId(id))
}

fn get_comment(world: &World, repo: &RepoName, id: u64) -> Option<Reply> {
    world.read(|s| {
        let c = find_comment(s, repo, id)?;
        let r = s.github.repos.get(repo)?;
        Some(Reply::json(200, &json::comment(&s.github.api_url, r, c)))
    })
}

fn comment_body(req: &Request) -> Result<String, Reply> {
    let m = body_object(req)?;
    let body = opt_str(&m, "body")?.unwrap_or("");
    if body.trim().is_empty() {
        return Err(invalid(
            "Validation Failed",
            "IssueComment",
            "body",
            "missing_field",
        ));
    }
    if body.chars().count() > MAX_COMMENT {
        return Err(invalid(
            "Body is too long (maximum is 65536 characters)",
            "IssueComment",
            "body",
            "custom",
        ));
    }
    Ok(body.to_owned())
}

fn edit_comment(world: &World, repo: &RepoName, id: u64, req: &Request) -> Option<Reply> {
    let body = match comment_body(req) {
        Ok(b) => b,
        Err(reply) => return Some(reply),
    };
    world.update(|s| {
        let now = s.tick();
        let api = s.github.api_url.clone();
        let r = s.github.repos.get_mut(repo)?;
        let c = r.comments.iter_mut().find(|c| c.id == CommentId(id))?;
        c.body = body;
        c.updated_at = now;
        let c = c.clone();
        Some(Reply::json(200, &json::comment(&api, r, &c)))
    })
}

fn delete_comment(world: &World, repo: &RepoName, id: u64) -> Option<Reply> {
    world.update(|s| {
        let r = s.github.repos.get_mut(repo)?;
        let i = r.comments.iter().position(|c| c.id == CommentId(id))?;
        let c = r.comments.remove(i);
        r.deleted_comments.push(c);
        Some(Reply::empty(204))
    })
}

/// GitHub's reaction contents.
const REACTIONS: [&str; 8] = [
    "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes",
];

/// `POST .../issues/comments/{id}/reactions`: 201 with a new reaction, 200 with the existing
/// one when the user already reacted so (GitHub keeps one per user and content).
fn create_reaction(world: &World, repo: &RepoName, id: u64, req: &Request) -> Option<Reply> {
    let content = match body_object(req) {
        Ok(m) => m.get("content").and_then(Value::as_str).map(str::to_owned),
        Err(reply) => return Some(reply),
    };
    let Some(content) = content.filter(|c| REACTIONS.contains(&c.as_str())) else {
        return Some(invalid(
            "Validation Failed",
            "Reaction",
            "content",
            "invalid",
        ));
    };
    world.update(|s| {
        let api = s.github.api_url.clone();
        let bot = s.github.bot.clone();
        let fresh = s.github.next_id();
        let r = s.github.repos.get_mut(repo)?;
        r.comments.iter().find(|c| c.id == CommentId(id))?;
        let existing = r
            .reactions
            .iter()
            .find(|x| x.comment == CommentId(id) && x.user == bot && x.content == content)
            .cloned();
        let (status, reaction) = match existing {
            Some(x) => (200, x),
            None => {
                let x = crate::world::github::FakeReaction {
                    id: fresh,
                    comment: CommentId(id),
                    user: bot,
                    content,
                };
                r.reactions.push(x.clone());
                (201, x)
            }
        };
        Some(Reply::json(
            status,
            &serde_json::json!({
                "id": reaction.id,
                "node_id": format!("REA_fake{}", reaction.id),
                "user": json::user(&api, &reaction.user),
                "content": reaction.content,
                "created_at": "2026-01-01T00:00:00Z",
            }),
        ))
    })
}

fn list_comments(world: &World, repo: &RepoName, n: PrNumber, req: &Request) -> Option<Reply> {
    world.read(|s| {
        let r = s.github.repos.get(repo)?;
        r.pulls.get(&n.0)?;
        let api = &s.github.api_url;
        let items = r
            .comments
            .iter()
            .filter(|c| c.pr == n)
            .map(|c| json::comment(api, r, c))
            .collect();
        Some(paginate(api, req, items))
    })
}

fn create_comment(world: &World, repo: &RepoName, n: PrNumber, req: &Request) -> Option<Reply> {
    let exists = world.read(|s| {
        s.github
            .repos
            .get(repo)
            .is_some_and(|r| r.pulls.contains_key(&n.0))
    });
    if !exists {
        return None;
    }
    let body = match comment_body(req) {
        Ok(b) => b,
        Err(reply) => return Some(reply),
    };
    let bot = world.read(|s| s.github.bot.clone());
    let c = world.comment(repo, n, bot.as_str(), &body).ok()?;
    world.read(|s| {
        let r = s.github.repos.get(repo)?;
        let v = json::comment(&s.github.api_url, r, &c);
        let location = v
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Some(Reply::json(201, &v).with_header("location", location))
    })
}

fn parse_state(s: &str) -> Option<CommitState> {
    match s {
        "pending" => Some(CommitState::Pending),
        "success" => Some(CommitState::Success),
        "failure" => Some(CommitState::Failure),
        "error" => Some(CommitState::Error),
        _ => None,
    }
}

fn create_status(world: &World, repo: &RepoName, sha: &str, req: &Request) -> Reply {
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let fields = (|| {
        let state = opt_str(&m, "state")?;
        let context = opt_str(&m, "context")?.unwrap_or("default").to_owned();
        let description = opt_str(&m, "description")?.map(str::to_owned);
        let target_url = opt_str(&m, "target_url")?.map(str::to_owned);
        let state = state
            .and_then(parse_state)
            .ok_or_else(|| invalid("Validation Failed", "Status", "state", "custom"))?;
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
        {
            return Err(invalid(
                "Validation Failed",
                "Status",
                "description",
                "custom",
            ));
        }
        Ok((state, context, description, target_url))
    })();
    let (state, context, description, target_url) = match fields {
        Ok(f) => f,
        Err(r) => return r,
    };
    let reply = world.update(|s| {
        let now = s.tick();
        let id = s.github.next_id();
        let bot = s.github.bot.clone();
        let api = s.github.api_url.clone();
        let r = s.github.repos.get_mut(repo)?;
        let Some(sha) = Sha::parse(sha)
            .ok()
            .filter(|sha| r.commits.contains_key(sha))
        else {
            return Some(invalid(
                &format!("No commit found for SHA: {sha}"),
                "Status",
                "sha",
                "custom",
            ));
        };
        let st = crate::world::Status {
            id,
            sha,
            state,
            context,
            description,
            target_url,
            creator: bot,
            created_at: now,
        };
        r.statuses.push(st.clone());
        Some(Reply::json(201, &json::status(&api, r, &st, false)))
    });
    reply.unwrap_or_else(not_found)
}

/// A branch name or a full sha known to the repository.
fn resolve(r: &crate::world::Repo, reference: &str) -> Option<Sha> {
    let name = reference.strip_prefix("heads/").unwrap_or(reference);
    r.branches.get(name).cloned().or_else(|| {
        Sha::parse(reference)
            .ok()
            .filter(|s| r.commits.contains_key(s))
    })
}

fn combined_status(world: &World, repo: &RepoName, reference: &str) -> Reply {
    world
        .read(|s| {
            let r = s.github.repos.get(repo)?;
            let sha = resolve(r, reference)?;
            let (state, latest) = r.combined_status(&sha);
            Some(Reply::json(
                200,
                &json::combined_status(&s.github.api_url, r, &sha, state, &latest),
            ))
        })
        .unwrap_or_else(|| {
            Reply::json(
                422,
                &json::error(&format!("No commit found for SHA: {reference}"), 422, DOCS),
            )
        })
}

fn get_branch(world: &World, repo: &RepoName, branch: &str) -> Reply {
    world
        .read(|s| {
            let r = s.github.repos.get(repo)?;
            let sha = r.branches.get(branch)?;
            Some(Reply::json(
                200,
                &json::branch(&s.github.api_url, r, branch, sha),
            ))
        })
        .unwrap_or_else(|| Reply::json(404, &json::error("Branch not found", 404, DOCS)))
}

fn get_ref(world: &World, repo: &RepoName, reference: &str) -> Reply {
    world
        .read(|s| {
            let r = s.github.repos.get(repo)?;
            let sha = r.branches.get(reference.strip_prefix("heads/")?)?;
            Some(Reply::json(
                200,
                &json::git_ref(&s.github.api_url, repo, reference, sha),
            ))
        })
        .unwrap_or_else(not_found)
}

fn create_ref(world: &World, repo: &RepoName, req: &Request) -> Reply {
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let (full, sha) = match (opt_str(&m, "ref"), opt_str(&m, "sha")) {
        (Ok(Some(f)), Ok(Some(s))) => (f.to_owned(), s.to_owned()),
        (Err(r), _) | (_, Err(r)) => return r,
        _ => return invalid("Invalid request.", "Reference", "ref", "missing_field"),
    };
    let Some(name) = full.strip_prefix("refs/").filter(|n| n.contains('/')) else {
        return invalid(
            "Reference name must start with 'refs/' and have at least two slashes.",
            "Reference",
            "ref",
            "invalid",
        );
    };
    let Some(branch) = name.strip_prefix("heads/") else {
        return invalid(
            "Only branch references are modelled",
            "Reference",
            "ref",
            "invalid",
        );
    };
    world
        .update(|s| {
            let api = s.github.api_url.clone();
            let r = s.github.repos.get_mut(repo)?;
            let Some(sha) = Sha::parse(&sha).ok().filter(|s| r.commits.contains_key(s)) else {
                return Some(invalid(
                    "Object does not exist",
                    "Reference",
                    "sha",
                    "invalid",
                ));
            };
            if r.branches.contains_key(branch) {
                return Some(invalid(
                    "Reference already exists",
                    "Reference",
                    "ref",
                    "already_exists",
                ));
            }
            r.branches.insert(branch.to_owned(), sha.clone());
            let v = json::git_ref(&api, repo, name, &sha);
            let location = v
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            Some(Reply::json(201, &v).with_header("location", location))
        })
        .unwrap_or_else(not_found)
}

fn update_ref(world: &World, repo: &RepoName, reference: &str, req: &Request) -> Reply {
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let sha = match opt_str(&m, "sha") {
        Ok(Some(s)) => s.to_owned(),
        Ok(None) => return invalid("Invalid request.", "Reference", "sha", "missing_field"),
        Err(r) => return r,
    };
    let force = m.get("force").and_then(Value::as_bool).unwrap_or(false);
    world
        .update(|s| {
            let api = s.github.api_url.clone();
            let now = s.tick();
            let bot = s.github.bot.clone();
            let r = s.github.repos.get_mut(repo)?;
            let Some(branch) = reference
                .strip_prefix("heads/")
                .filter(|b| r.branches.contains_key(*b))
            else {
                return Some(invalid(
                    "Reference does not exist",
                    "Reference",
                    "ref",
                    "invalid",
                ));
            };
            let Some(sha) = Sha::parse(&sha).ok().filter(|s| r.commits.contains_key(s)) else {
                return Some(invalid(
                    "Object does not exist",
                    "Reference",
                    "sha",
                    "invalid",
                ));
            };
            let old = r.branches.get(branch).cloned()?;
            if let Some(refusal) = r
                .protections
                .get(branch)
                .and_then(|p| p.refuse_push(r, &sha, &bot))
            {
                return Some(refusal);
            }
            if !force && !r.is_ancestor(&old, &sha) {
                return Some(invalid(
                    "Update is not a fast forward",
                    "Reference",
                    "sha",
                    "custom",
                ));
            }
            r.branches.insert(branch.to_owned(), sha.clone());
            r.mark_contained_merged(branch, &bot, now);
            Some(Reply::json(
                200,
                &json::git_ref(&api, repo, reference, &sha),
            ))
        })
        .unwrap_or_else(not_found)
}

fn delete_ref(world: &World, repo: &RepoName, reference: &str) -> Reply {
    world
        .update(|s| {
            let r = s.github.repos.get_mut(repo)?;
            let removed = reference
                .strip_prefix("heads/")
                .and_then(|b| r.branches.remove(b));
            Some(match removed {
                Some(_) => Reply::empty(204),
                None => invalid("Reference does not exist", "Reference", "ref", "invalid"),
            })
        })
        .unwrap_or_else(not_found)
}

fn merge_branches(world: &World, repo: &RepoName, req: &Request) -> Reply {
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let (base, head) = match (opt_str(&m, "base"), opt_str(&m, "head")) {
        (Ok(Some(b)), Ok(Some(h))) => (b.to_owned(), h.to_owned()),
        (Err(r), _) | (_, Err(r)) => return r,
        _ => return invalid("Invalid request.", "Merge", "base", "missing_field"),
    };
    let message = opt_str(&m, "commit_message")
        .ok()
        .flatten()
        .map_or_else(|| format!("Merge {head} into {base}"), str::to_owned);
    world
        .update(|s| {
            let api = s.github.api_url.clone();
            let r = s.github.repos.get_mut(repo)?;
            if !r.branches.contains_key(&base) {
                return Some(Reply::json(
                    404,
                    &json::error("Base does not exist", 404, DOCS),
                ));
            }
            let Some(head_sha) = resolve(r, &head) else {
                return Some(Reply::json(
                    404,
                    &json::error("Head does not exist", 404, DOCS),
                ));
            };
            Some(match r.merge(&base, &head_sha, &message) {
                Ok(Some(sha)) => Reply::json(201, &json::commit(&api, r, &sha)),
                Ok(None) => Reply::empty(204),
                Err(e) => world_error(&e),
            })
        })
        .unwrap_or_else(not_found)
}

fn merge_pull(world: &World, repo: &RepoName, n: PrNumber, req: &Request) -> Reply {
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let expected = match opt_str(&m, "sha") {
        Ok(s) => s.map(str::to_owned),
        Err(r) => return r,
    };
    let title = opt_str(&m, "commit_title")
        .ok()
        .flatten()
        .map(str::to_owned);
    world
        .update(|s| {
            let now = s.tick();
            let bot = s.github.bot.clone();
            let r = s.github.repos.get_mut(repo)?;
            let p = r.pulls.get(&n.0)?.clone();
            let not_mergeable = || Reply::json(405, &json::error("Pull Request is not mergeable", 405, DOCS));
            if p.state != PullRequestState::Open || p.mergeable == Some(false) || p.draft {
                return Some(not_mergeable());
            }
            if expected.as_deref().is_some_and(|e| e != p.head_sha.as_str()) {
                return Some(Reply::json(
                    409,
                    &json::error("Head branch was modified. Review and try the merge again.", 409, DOCS),
                ));
            }
            if let Some(refusal) = r
                .protections
                .get(&p.base_ref)
                .and_then(|rule| rule.refuse_merge(r, &p.head_sha, &bot))
            {
                return Some(refusal);
            }
            let message = title.unwrap_or_else(|| format!("Merge pull request #{n} from {}", p.head_ref));
            let sha = match r.merge(&p.base_ref, &p.head_sha, &message) {
                Ok(Some(sha)) => sha,
                Ok(None) => r.branches.get(&p.base_ref).cloned()?,
                Err(WorldError::Git(_)) => return Some(not_mergeable()),
                Err(e) => return Some(world_error(&e)),
            };
            let pr = r.pulls.get_mut(&n.0)?;
            pr.state = PullRequestState::Merged;
            pr.merge_commit_sha = Some(sha.clone());
            pr.merged_by = Some(bot);
            pr.merged_at = Some(now);
            pr.closed_at = Some(now);
            pr.updated_at = now;
            Some(Reply::json(
                200,
                &serde_json::json!({ "sha": sha.to_string(), "merged": true, "message": "Pull Request successfully merged" }),
            ))
        })
        .unwrap_or_else(not_found)
}
