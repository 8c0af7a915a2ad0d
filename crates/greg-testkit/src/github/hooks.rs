//! Routes of [`super::FakeGithub`] for `greg fix-hooks` and `greg check-config`: `GET /user`,
//! `GET /orgs/{org}/repos` and `GET /users/{username}/repos` (both list the world's
//! repositories of that owner, ASCII case-insensitive, 404 when it has none), and repository
//! webhooks CRUD with GitHub's shapes (<https://docs.github.com/en/rest/repos/webhooks>):
//! `config.secret` reads back as `"********"`, a second hook with the same URL is a 422
//! "Hook already exists on this repository", a missing `config.url` a 422. The deliveries
//! routes are in `deliveries`.

use super::json;
use super::routes::{body_object, invalid, not_found, paginate};
use crate::http::{Reply, Request};
use crate::world::{FakeHook, World};
use greg_core::RepoName;
use serde_json::{Map, Value, json};

/// Answers the routes of this module; `None` for any other route.
pub(super) fn route(world: &World, req: &Request) -> Option<Reply> {
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    let reply = match (m, seg.as_slice()) {
        ("GET", ["user"]) => {
            world.read(|s| Reply::json(200, &json::user(&s.github.api_url, &s.github.bot)))
        }
        ("GET", ["orgs" | "users", owner, "repos"]) => owner_repos(world, owner, req),
        ("GET", ["repos", o, n, "hooks"]) => list(world, &RepoName::new(*o, *n), req),
        ("POST", ["repos", o, n, "hooks"]) => create(world, &RepoName::new(*o, *n), req),
        ("PATCH", ["repos", o, n, "hooks", id]) => {
            with_id(id, |id| update(world, &RepoName::new(*o, *n), id, req))
        }
        ("DELETE", ["repos", o, n, "hooks", id]) => {
            with_id(id, |id| delete(world, &RepoName::new(*o, *n), id))
        }
        ("GET", ["repos", o, n, "hooks", id, "deliveries"]) => with_id(id, |id| {
            super::deliveries::list(world, &RepoName::new(*o, *n), id, req)
        }),
        ("POST", ["repos", o, n, "hooks", id, "deliveries", d, "attempts"]) => with_id(id, |id| {
            with_id(d, |d| {
                super::deliveries::redeliver(world, &RepoName::new(*o, *n), id, d)
            })
        }),
        _ => return None,
    };
    Some(reply)
}

fn with_id(raw: &str, f: impl FnOnce(u64) -> Reply) -> Reply {
    raw.parse().map_or_else(|_| not_found(), f)
}

fn owner_repos(world: &World, owner: &str, req: &Request) -> Reply {
    world.read(|s| {
        let api = &s.github.api_url;
        let items: Vec<Value> = s
            .github
            .repos
            .iter()
            .filter(|(name, _)| name.owner.eq_ignore_ascii_case(owner))
            .map(|(name, r)| json::repository(api, name, Some(r)))
            .collect();
        if items.is_empty() {
            not_found()
        } else {
            paginate(api, req, items)
        }
    })
}

fn hook_json(api: &str, repo: &RepoName, h: &FakeHook) -> Value {
    let mut config = Map::new();
    config.insert("url".to_owned(), Value::from(h.url.as_str()));
    config.insert(
        "content_type".to_owned(),
        Value::from(h.content_type.as_str()),
    );
    config.insert(
        "insecure_ssl".to_owned(),
        Value::from(h.insecure_ssl.as_str()),
    );
    if h.secret.is_some() {
        config.insert("secret".to_owned(), Value::from("********"));
    }
    let url = format!("{api}/repos/{repo}/hooks/{}", h.id);
    json!({
        "type": "Repository",
        "id": h.id,
        "name": "web",
        "active": h.active,
        "events": h.events,
        "config": config,
        "updated_at": "2024-01-01T00:00:00Z",
        "created_at": "2024-01-01T00:00:00Z",
        "url": url,
        "test_url": format!("{url}/test"),
        "ping_url": format!("{url}/pings"),
        "deliveries_url": format!("{url}/deliveries"),
        "last_response": { "code": null, "status": "unused", "message": null }
    })
}

fn list(world: &World, repo: &RepoName, req: &Request) -> Reply {
    world.read(|s| {
        let Some(r) = s.github.repos.get(repo) else {
            return not_found();
        };
        let api = &s.github.api_url;
        let items = r.hooks.iter().map(|h| hook_json(api, repo, h)).collect();
        paginate(api, req, items)
    })
}

/// Applies the fields of a create or update body to `h`; `Err` with GitHub's 422 for a
/// field of the wrong type.
fn apply(h: &mut FakeHook, body: &Map<String, Value>, replace_config: bool) -> Result<(), Reply> {
    if let Some(config) = body.get("config") {
        let Value::Object(c) = config else {
            return Err(invalid("Validation Failed", "Hook", "config", "invalid"));
        };
        let field = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
        if replace_config {
            h.secret = None;
            h.content_type = "form".to_owned();
            h.insecure_ssl = "0".to_owned();
        }
        if let Some(url) = field("url") {
            h.url = url;
        }
        if let Some(ct) = field("content_type") {
            h.content_type = ct;
        }
        if let Some(i) = field("insecure_ssl") {
            h.insecure_ssl = i;
        }
        if let Some(secret) = field("secret") {
            h.secret = Some(secret).filter(|s| !s.is_empty());
        }
    }
    if let Some(events) = body.get("events") {
        let Some(list) = events.as_array() else {
            return Err(invalid("Validation Failed", "Hook", "events", "invalid"));
        };
        h.events = list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
    }
    if let Some(active) = body.get("active") {
        h.active = active
            .as_bool()
            .ok_or_else(|| invalid("Validation Failed", "Hook", "active", "invalid"))?;
    }
    Ok(())
}

fn create(world: &World, repo: &RepoName, req: &Request) -> Reply {
    let body = match body_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut hook = FakeHook {
        id: 0,
        url: String::new(),
        content_type: "form".to_owned(),
        insecure_ssl: "0".to_owned(),
        secret: None,
        events: vec!["push".to_owned()],
        active: true,
    };
    if let Err(r) = apply(&mut hook, &body, false) {
        return r;
    }
    if hook.url.is_empty() {
        return invalid("Validation Failed", "Hook", "url", "custom");
    }
    world.update(|s| {
        let id = s.github.next_id();
        let api = s.github.api_url.clone();
        let Some(r) = s.github.repos.get_mut(repo) else {
            return not_found();
        };
        if r.hooks.iter().any(|h| h.url == hook.url) {
            return invalid(
                "Validation Failed",
                "Hook",
                "hook",
                "Hook already exists on this repository",
            );
        }
        hook.id = id;
        r.hooks.push(hook.clone());
        Reply::json(201, &hook_json(&api, repo, &hook))
    })
}

fn update(world: &World, repo: &RepoName, id: u64, req: &Request) -> Reply {
    let body = match body_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    world.update(|s| {
        let api = s.github.api_url.clone();
        let Some(h) = s
            .github
            .repos
            .get_mut(repo)
            .and_then(|r| r.hooks.iter_mut().find(|h| h.id == id))
        else {
            return not_found();
        };
        let mut changed = h.clone();
        if let Err(r) = apply(&mut changed, &body, true) {
            return r;
        }
        *h = changed.clone();
        Reply::json(200, &hook_json(&api, repo, &changed))
    })
}

fn delete(world: &World, repo: &RepoName, id: u64) -> Reply {
    world.update(|s| {
        let Some(r) = s.github.repos.get_mut(repo) else {
            return not_found();
        };
        match r.hooks.iter().position(|h| h.id == id) {
            Some(i) => {
                r.hooks.remove(i);
                Reply::empty(204)
            }
            None => not_found(),
        }
    })
}
