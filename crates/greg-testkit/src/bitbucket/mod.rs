//! [`FakeBitbucketCloud`] and [`FakeBitbucketServer`]: the Bitbucket REST subsets greg calls,
//! served over HTTP from the [`World`]'s Bitbucket state ([`crate::world::bitbucket`]), and the
//! webhook deliveries each flavor would send ([`webhook`]).
//!
//! Every request is logged ([`Bitbucket::requests`]); an armed fault
//! ([`Bitbucket::fail_next`]) answers first; then a request without valid credentials gets
//! the flavor's 401; then the route answers. Unknown routes get the flavor's 404.
//!
//! Wire formats, as the vendors document them:
//! - Cloud REST 2.0 (<https://developer.atlassian.com/cloud/bitbucket/rest/>): error bodies
//!   `{"type": "error", "error": {"message"}}`
//!   (<https://developer.atlassian.com/cloud/bitbucket/rest/intro/#errors>), pages
//!   `{pagelen, size, page, values, next}` with `next` an absolute URL
//!   (<https://developer.atlassian.com/cloud/bitbucket/rest/intro/#pagination>).
//! - Server/Data Center REST 1.0 (<https://developer.atlassian.com/server/bitbucket/rest/>):
//!   error bodies `{"errors": [{"context", "message", "exceptionName"}]}`, pages
//!   `{size, limit, isLastPage, values, start, nextPageStart}` driven by `start` and `limit`.
//!
//! What is modelled: repositories, branches and a commit graph; pull requests (get, list by
//! state, merge: Cloud without a precondition, Server at `?version=N`; Server's `GET .../merge`
//! check), reviewers and participants with verdicts (Cloud `participants` and the activity
//! log of head updates, approvals and comments; Server `reviewers`/`participants` with
//! `lastReviewedCommit`), comments (create, get, edit, delete; Server locks them by
//! `version`), build statuses (Cloud `commit/{sha}/statuses/build`, Server
//! `commits/{sha}/builds` and the legacy `/rest/build-status/1.0/commits/{sha}`; one per key),
//! commits by full hash, abbreviation or branch, branches (Cloud `refs/branches`, Server
//! `branches?filterText` and branch-utils create/delete), effective permissions (Cloud's
//! workspace listing filtered by BBQL `user.account_id`/`user.uuid`, admin only; Server's
//! `users?permission.1=`), webhooks (list, create, get, update, delete; Cloud shows
//! `secret_set` only), `GET /2.0/user`, credentials (basic or bearer), page sizes, one-shot
//! faults, and webhook deliveries ([`webhook`]).
//!
//! What is NOT modelled: deliveries sent by the fakes themselves, forks as separate
//! repositories (a fork's head lives in the target's commit graph), Cloud's asynchronous merges
//! (every merge answers 200 at once), merge strategies other than a merge commit, merge checks
//! beyond conflicts and the vetoes a test plants ([`Bitbucket::veto_merges`]), approval withdrawal on push (a repository setting on both
//! flavors), tasks, inline comments and replies, rate-limit accounting (only injected faults),
//! OAuth scopes, projects and workspaces as objects, and the request log of the GitHub and
//! Jenkins fakes (Bitbucket requests are logged in the Bitbucket state).

mod cloud;
mod cloud_json;
mod server;
mod server_json;
mod verbs;
pub mod webhook;

use crate::http::{self, Reply, Request};
use crate::world::World;
use crate::world::bitbucket::{BbFault, BbRequest, Bitbucket, Flavor};
use actix_web::dev::ServerHandle;
use base64::Engine as _;
use serde_json::{Value, json};
use std::fmt;

/// The fake Bitbucket Cloud API server (`https://api.bitbucket.org`'s REST 2.0). Stops when
/// dropped.
pub struct FakeBitbucketCloud {
    /// Base URL of the API, `http://127.0.0.1:PORT` (greg's `providers.bitbucket.api_url`
    /// with `flavor: cloud`; paths start with `/2.0/`).
    pub url: String,
    world: World,
    handle: ServerHandle,
}

/// The fake Bitbucket Server / Data Center (REST 1.0 and the build-status and branch-utils
/// plugins). Stops when dropped.
pub struct FakeBitbucketServer {
    /// Base URL of the instance, `http://127.0.0.1:PORT` (greg's `providers.bitbucket.api_url`
    /// with `flavor: server`; paths start with `/rest/`).
    pub url: String,
    world: World,
    handle: ServerHandle,
}

impl fmt::Debug for FakeBitbucketCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeBitbucketCloud")
            .field("url", &self.url)
            .finish()
    }
}

impl fmt::Debug for FakeBitbucketServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeBitbucketServer")
            .field("url", &self.url)
            .finish()
    }
}

impl FakeBitbucketCloud {
    /// Starts the server on `127.0.0.1:0`, on its own thread, and records its URL in the world
    /// (`bitbucket.cloud_url`, used in links and `next` pages). Errors when the port cannot be
    /// bound.
    pub fn start(world: World) -> std::io::Result<Self> {
        let bb = world.bitbucket();
        let (addr, handle) = http::serve(
            "bitbucket-cloud",
            move |req| handle(&bb, Flavor::Cloud, req),
            || {},
        )?;
        let url = format!("http://{addr}");
        world.update(|s| s.bitbucket.cloud_url = url.clone());
        Ok(Self { url, world, handle })
    }

    /// The world this fake serves.
    pub fn world(&self) -> &World {
        &self.world
    }
}

impl FakeBitbucketServer {
    /// Starts the server on `127.0.0.1:0`, on its own thread, and records its URL in the world
    /// (`bitbucket.server_url`, used in links). Errors when the port cannot be bound.
    pub fn start(world: World) -> std::io::Result<Self> {
        let bb = world.bitbucket();
        let (addr, handle) = http::serve(
            "bitbucket-server",
            move |req| handle(&bb, Flavor::Server, req),
            || {},
        )?;
        let url = format!("http://{addr}");
        world.update(|s| s.bitbucket.server_url = url.clone());
        Ok(Self { url, world, handle })
    }

    /// The world this fake serves.
    pub fn world(&self) -> &World {
        &self.world
    }
}

impl Drop for FakeBitbucketCloud {
    fn drop(&mut self) {
        // `stop` sends the command eagerly; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}

impl Drop for FakeBitbucketServer {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// Cloud's error body.
pub(crate) fn cloud_error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"type": "error", "error": {"message": message}}),
    )
}

/// Server's error body, with the Java exception Bitbucket names.
pub(crate) fn server_error(status: u16, message: &str, exception: &str) -> Reply {
    Reply::json(
        status,
        &json!({"errors": [{"context": null, "message": message, "exceptionName": exception}]}),
    )
}

/// The error body of `flavor` for an injected fault.
fn fault_reply(f: &BbFault) -> Reply {
    let message = match f.status {
        401 => "Authentication failed. Please check your credentials and try again.",
        403 => "You are not permitted to access this resource",
        404 => "Resource not found",
        429 => "Rate limit for this resource has been exceeded",
        _ => "Something went wrong",
    };
    let mut reply = match f.flavor {
        Flavor::Cloud => cloud_error(f.status, message),
        Flavor::Server => server_error(
            f.status,
            message,
            "com.atlassian.bitbucket.ServiceException",
        ),
    };
    if let Some(secs) = f.retry_after {
        reply = reply.with_header("retry-after", secs.to_string());
    }
    reply
}

/// Whether the request carries acceptable credentials: basic auth or a bearer token whose
/// secret is the configured password (any credentials when none is configured).
fn authorized(bb: &Bitbucket, req: &Request) -> bool {
    let Some(auth) = req.header("authorization") else {
        return false;
    };
    let Some(password) = bb.read(|b| b.password.clone()) else {
        return !auth.trim().is_empty();
    };
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return token.trim() == password;
    }
    auth.strip_prefix("Basic ")
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, p)| p == password))
        .unwrap_or(false)
}

fn handle(bb: &Bitbucket, flavor: Flavor, req: Request) -> Reply {
    let fault = bb.take_fault(flavor, &req.path);
    let reply = match (&fault, flavor) {
        (Some(f), _) => fault_reply(f),
        (None, Flavor::Cloud) if !authorized(bb, &req) => cloud_error(
            401,
            "Authentication failed: the request carries no valid credentials",
        ),
        (None, Flavor::Server) if !authorized(bb, &req) => server_error(
            401,
            "Authentication failed. Please check your credentials and try again.",
            "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException",
        ),
        (None, Flavor::Cloud) => cloud::route(bb, &req),
        (None, Flavor::Server) => server::route(bb, &req),
    };
    bb.log_request(BbRequest {
        seq: 0,
        flavor,
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.raw_query.clone(),
        json: req.json(),
        status: reply.status,
        faulted: fault.is_some(),
    });
    reply
}

/// The JSON object body; an empty body is an empty object; `None` for anything else.
pub(crate) fn body_object(req: &Request) -> Option<serde_json::Map<String, Value>> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Some(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// The fields of a webhook body, as both fakes read them.
pub(crate) struct HookFields {
    /// Server `name`, Cloud `description`.
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    /// `None`: not in the body (an update keeps the secret); `Some(None)`: removed.
    pub secret: Option<Option<String>>,
}

/// A string field of a JSON object.
pub(crate) fn str_field<'a>(m: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

/// The page size a client asked for with `key`, within `default` and `max`, capped by the
/// world's `max_page`.
fn page_size(bb: &Bitbucket, req: &Request, key: &str, default: usize, max: usize) -> usize {
    let asked = req
        .query(key)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
        .clamp(1, max);
    match bb.read(|b| b.max_page) {
        Some(cap) => asked.min(cap),
        None => asked,
    }
}

/// One Cloud page of `items`: `pagelen` (default 10, at most 100) and `page` (from 1) from
/// the query, `next` and `previous` as absolute URLs on the fake.
pub(crate) fn cloud_page(bb: &Bitbucket, req: &Request, items: Vec<Value>) -> Reply {
    let pagelen = page_size(bb, req, "pagelen", 10, 100);
    let page = req
        .query("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let size = items.len();
    let values: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(pagelen))
        .take(pagelen)
        .collect();
    let base = bb.read(|b| b.cloud_url.clone());
    let link = |p: usize| {
        let mut q: Vec<(String, String)> = req
            .query
            .iter()
            .filter(|(k, _)| k != "page")
            .cloned()
            .collect();
        q.push(("page".to_owned(), p.to_string()));
        let mut url = reqwest::Url::parse(&format!("{base}{}", req.path))
            .unwrap_or_else(|_| reqwest::Url::parse("http://bitbucket.invalid/").expect("URL"));
        url.query_pairs_mut().extend_pairs(q);
        url.to_string()
    };
    let mut body = json!({
        "pagelen": pagelen,
        "size": size,
        "page": page,
        "values": values,
    });
    if page * pagelen < size {
        body["next"] = Value::from(link(page + 1));
    }
    if page > 1 {
        body["previous"] = Value::from(link(page - 1));
    }
    Reply::json(200, &body)
}

/// One Server page of `items`: `start` (default 0) and `limit` (default 25, at most 1000).
pub(crate) fn server_page(bb: &Bitbucket, req: &Request, items: Vec<Value>) -> Reply {
    let limit = page_size(bb, req, "limit", 25, 1000);
    let start = req
        .query("start")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let values: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let is_last = start + values.len() >= items.len();
    let mut body = json!({
        "size": values.len(),
        "limit": limit,
        "isLastPage": is_last,
        "values": values,
        "start": start,
    });
    if !is_last {
        body["nextPageStart"] = Value::from(start + limit);
    }
    Reply::json(200, &body)
}
