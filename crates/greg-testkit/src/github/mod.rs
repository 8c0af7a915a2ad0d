//! [`FakeGithub`]: the GitHub REST subset greg calls, served over HTTP from the [`World`].
//!
//! Every request is logged (see [`World::requests`]); an armed fault (see
//! [`World::fail_next`]) answers first; then the OAuth web flow (`oauth` module: sign-in to
//! greg's pages; its host is the API's); then, when the world has a GitHub App, its routes
//! (`app` module: JWT-authenticated); then a request without `Authorization` gets GitHub's
//! 401 body; then the route answers. Unknown routes get GitHub's 404 body.

mod app;
mod deliveries;
mod hooks;
pub mod json;
mod oauth;
mod protection;
mod routes;

use crate::http::{self, Reply, Request};
use crate::openapi::{OpenApi, Violation};
use crate::world::{Fault, HoldMode, LoggedRequest, Server, World};
use actix_web::dev::ServerHandle;
use std::fmt;

pub use app::FakeApp;

/// The fake GitHub API server. Stops when dropped.
pub struct FakeGithub {
    /// Base URL of the API, `http://127.0.0.1:PORT` (greg's `providers.github.api_url`).
    pub url: String,
    world: World,
    handle: ServerHandle,
}

impl fmt::Debug for FakeGithub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeGithub")
            .field("url", &self.url)
            .finish()
    }
}

impl FakeGithub {
    /// Starts the server on `127.0.0.1:0`, on its own thread, and records its URL in the world
    /// (`github.api_url`, used in response URLs). Errors when the port cannot be bound.
    pub fn start(world: World) -> std::io::Result<Self> {
        let w = world.clone();
        let (addr, handle) = http::serve("github", move |req| handle(&w, req), || {})?;
        let url = format!("http://{addr}");
        world.update(|s| s.github.api_url = url.clone());
        Ok(Self { url, world, handle })
    }

    /// The world this fake serves.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Validates every logged GitHub REST request against `api` (method and path must match
    /// an operation; a JSON body must match its request schema); the OAuth web flow's
    /// `/login/oauth/…` is not REST and is skipped. Returns the violations, empty
    /// when every call was valid.
    pub fn validate_log(&self, api: &OpenApi) -> Vec<Violation> {
        self.world
            .requests()
            .iter()
            .filter(|r| r.server == Server::Github)
            // The OAuth web flow is GitHub's web host, not its REST API.
            .filter(|r| !r.path.starts_with("/login/oauth/"))
            .filter_map(|r| {
                api.validate(&r.method, &r.path, r.json.as_ref())
                    .err()
                    .map(|message| Violation {
                        seq: r.seq,
                        method: r.method.clone(),
                        path: r.path.clone(),
                        message,
                    })
            })
            .collect()
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        // `stop` sends the command eagerly; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}

const DOCS: &str = "https://docs.github.com/rest";

fn fault_reply(f: &Fault) -> Reply {
    let mut reply = match f.status {
        403 | 429 => Reply::json(
            f.status,
            &json::error(
                "API rate limit exceeded for installation.",
                f.status,
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            ),
        )
        .with_header("x-ratelimit-limit", "5000")
        .with_header("x-ratelimit-remaining", "0")
        .with_header("x-ratelimit-used", "5000")
        .with_header("x-ratelimit-reset", "1704067260"),
        s => Reply::json(s, &json::error("Server Error", s, DOCS)),
    };
    if let Some(secs) = f.retry_after {
        reply = reply.with_header("retry-after", secs.to_string());
    }
    reply
}

fn authorized(world: &World, req: &Request) -> bool {
    let Some(auth) = req.header("authorization") else {
        return false;
    };
    match world.read(|s| s.github.token.clone()) {
        None => !auth.trim().is_empty(),
        Some(token) => {
            let given = auth
                .strip_prefix("token ")
                .or_else(|| auth.strip_prefix("Bearer "))
                .or_else(|| auth.strip_prefix("bearer "))
                .unwrap_or("");
            given == token
        }
    }
}

fn handle(world: &World, req: Request) -> Reply {
    let dropped = world.gate(Server::Github, &req.method, &req.path) == Some(HoldMode::Drop);
    let fault = world.take_fault(Server::Github, &req.path);
    let reply = match &fault {
        _ if dropped => Reply::json(503, &json::error("Service Unavailable", 503, DOCS)),
        Some(f) => fault_reply(f),
        None => match oauth::route(world, &req).or_else(|| app::route(world, &req)) {
            Some(reply) => reply,
            None if !authorized(world, &req) => {
                Reply::json(401, &json::error("Requires authentication", 401, DOCS))
            }
            None => routes::route(world, &req),
        },
    };
    world.log_request(LoggedRequest {
        seq: 0,
        server: Server::Github,
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.raw_query.clone(),
        json: req.json(),
        form: req.form(),
        body: String::from_utf8_lossy(&req.body).into_owned(),
        status: reply.status,
        faulted: fault.is_some(),
        at: std::time::Instant::now(),
    });
    reply
}
