//! Route dispatch and handlers of [`super::FakeJenkins`]: basic auth (401 without it or with
//! other credentials than the configured ones), the crumb check on every POST when crumbs are
//! on (403 "No valid crumb was included in the request", as Jenkins' `CrumbFilter` answers),
//! folder jobs (`/job/a/job/b/...`), and Jenkins' status codes: 201 + `Location` for a queued
//! build, 302 for stop, 204/404/500 for `cancelItem` (Jenkins' `Queue.doCancelItem`: a waiting
//! item is cancelled, an unknown id is 404, an item that already left the queue is 500
//! "Could not cancel run").

use super::json;
use crate::http::{Reply, Request, parse_query};
use crate::world::{Fault, HoldMode, LoggedRequest, Server, World, WorldError};
use base64::Engine;
use greg_core::{BuildNumber, BuildOutcome, JobName, QueueItemId};

fn html(status: u16, title: &str, message: &str) -> Reply {
    Reply::text(
        status,
        "text/html;charset=utf-8",
        format!(
            "<html><head><title>Error {status} {title}</title></head><body><h2>HTTP ERROR {status} {message}</h2></body></html>"
        ),
    )
}

fn not_found() -> Reply {
    html(404, "Not Found", "Not Found")
}

fn fault_reply(f: &Fault) -> Reply {
    let mut r = html(f.status, "Server Error", "Injected failure");
    if let Some(secs) = f.retry_after {
        r = r.with_header("retry-after", secs.to_string());
    }
    r
}

/// `Some(user)` when the request carries acceptable basic auth.
fn authenticate(world: &World, req: &Request) -> Result<(), Reply> {
    let unauthorized = |msg: &str| {
        Err(html(401, "Unauthorized", msg)
            .with_header("www-authenticate", "Basic realm=\"Jenkins\""))
    };
    let Some(encoded) = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Basic "))
    else {
        return unauthorized("Authentication required");
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, token)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return unauthorized("Authentication required");
    };
    match world.read(|s| s.jenkins.credentials.clone()) {
        Some((u, t)) if u != user || t != token => {
            unauthorized(&format!("Invalid password/token for user: {user}"))
        }
        _ => Ok(()),
    }
}

fn check_crumb(world: &World, req: &Request) -> Result<(), Reply> {
    if req.method != "POST" {
        return Ok(());
    }
    match world.read(|s| s.jenkins.crumb.clone()) {
        Some(crumb) if req.header("jenkins-crumb") != Some(crumb.as_str()) => Err(html(
            403,
            "Forbidden",
            "No valid crumb was included in the request",
        )),
        _ => Ok(()),
    }
}

/// Logs and answers one request.
pub(super) fn handle(world: &World, req: Request) -> Reply {
    let dropped = world.gate(Server::Jenkins, &req.method, &req.path) == Some(HoldMode::Drop);
    let fault = world.take_fault(Server::Jenkins, &req.path);
    let reply = match &fault {
        _ if dropped => Reply::text(503, "text/plain", "held and dropped"),
        Some(f) => fault_reply(f),
        None => authenticate(world, &req)
            .and_then(|()| check_crumb(world, &req))
            .map_or_else(|r| r, |()| route(world, &req)),
    };
    world.log_request(LoggedRequest {
        seq: 0,
        server: Server::Jenkins,
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

fn route(world: &World, req: &Request) -> Reply {
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    match (m, seg.as_slice()) {
        ("GET", ["crumbIssuer", "api", "json"]) => match world.read(|s| s.jenkins.crumb.clone()) {
            Some(c) => Reply::json(200, &json::crumb(&c)),
            None => not_found(),
        },
        ("GET", ["queue", "item", id, "api", "json"]) => id
            .parse::<u64>()
            .ok()
            .and_then(|id| {
                world.read(|s| {
                    let q = s.jenkins.queue.get(&id)?;
                    Some(Reply::json(200, &json::queue_item(&s.jenkins, q)))
                })
            })
            .unwrap_or_else(not_found),
        ("POST", ["queue", "cancelItem"]) => cancel_item(world, req),
        (_, ["job", ..]) => job_route(world, req, &seg),
        _ => not_found(),
    }
}

fn cancel_item(world: &World, req: &Request) -> Reply {
    let Some(id) = req.query("id").and_then(|i| i.parse::<u64>().ok()) else {
        return html(400, "Bad Request", "Missing or invalid id");
    };
    match world.cancel_queued(QueueItemId(id)) {
        Ok(()) => Reply::empty(204),
        Err(WorldError::QueueItemLeft(_)) => html(
            500,
            "Server Error",
            &format!("Could not cancel run for id {id}"),
        ),
        Err(_) => html(404, "Not Found", &format!("Provided id ({id}) not found")),
    }
}

/// `/job/a/job/b/<rest>` → (`a/b`, rest).
fn split_job<'a>(seg: &'a [&'a str]) -> Option<(JobName, &'a [&'a str])> {
    let mut names = Vec::new();
    let mut rest = seg;
    while let ["job", name, tail @ ..] = rest {
        names.push(*name);
        rest = tail;
    }
    if names.is_empty() {
        return None;
    }
    Some((JobName(names.join("/")), rest))
}

fn job_route(world: &World, req: &Request, seg: &[&str]) -> Reply {
    let Some((job, rest)) = split_job(seg) else {
        return not_found();
    };
    let known = world.read(|s| s.jenkins.jobs.contains_key(&job));
    if !known {
        return not_found();
    }
    match (req.method.as_str(), rest) {
        ("GET", [] | ["api", "json"]) => world
            .read(|s| {
                let j = s.jenkins.jobs.get(&job)?;
                Some(Reply::json(200, &json::job(&s.jenkins, j)))
            })
            .unwrap_or_else(not_found),
        ("POST", ["buildWithParameters"]) => build_with_parameters(world, req, &job),
        ("GET", ["config.xml"]) => world
            .read(|s| {
                let j = s.jenkins.jobs.get(&job)?;
                Some(Reply::text(200, "application/xml", j.config_xml.clone()))
            })
            .unwrap_or_else(not_found),
        ("POST", ["config.xml"]) => {
            let xml = String::from_utf8_lossy(&req.body);
            if !xml.trim_start().starts_with('<') {
                return html(500, "Server Error", "Failed to parse the posted config.xml");
            }
            match world.set_config_xml(&job, &xml) {
                Ok(()) => Reply::empty(200),
                Err(_) => not_found(),
            }
        }
        ("GET", [n, "api", "json"]) => n
            .parse::<u64>()
            .ok()
            .and_then(|n| {
                world.read(|s| {
                    let b = s.jenkins.jobs.get(&job)?.builds.get(&n)?;
                    Some(Reply::json(200, &json::build(&s.jenkins, b)))
                })
            })
            .unwrap_or_else(not_found),
        ("POST", [n, "stop"]) => match n.parse::<u64>() {
            Ok(n) => stop(world, &job, BuildNumber(n)),
            Err(_) => not_found(),
        },
        _ => not_found(),
    }
}

fn build_with_parameters(world: &World, req: &Request, job: &JobName) -> Reply {
    let declared = world.read(|s| s.jenkins.jobs.get(job).map_or(0, |j| j.parameters.len()));
    if declared == 0 {
        return html(400, "Bad Request", &format!("{job} is not parameterized"));
    }
    let mut params: Vec<(String, String)> = req
        .query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "delay" | "token" | "cause"))
        .cloned()
        .collect();
    let ct = req.header("content-type").unwrap_or("");
    if ct.starts_with("application/x-www-form-urlencoded")
        || (ct.is_empty() && !req.body.is_empty())
    {
        params.extend(parse_query(&String::from_utf8_lossy(&req.body)));
    } else if !req.body.is_empty() {
        return html(415, "Unsupported Media Type", "Expected a form body");
    }
    match world.trigger(job, &params) {
        Ok(id) => {
            let root = world.read(|s| s.jenkins.root_url.clone());
            Reply::empty(201).with_header("location", format!("{root}/queue/item/{id}/"))
        }
        Err(_) => not_found(),
    }
}

fn stop(world: &World, job: &JobName, n: BuildNumber) -> Reply {
    let url = world.read(|s| {
        s.jenkins
            .jobs
            .get(job)
            .and_then(|j| j.builds.get(&n.0))
            .map(|_| s.jenkins.build_url(job, n))
    });
    let Some(url) = url else {
        return not_found();
    };
    match world.finish_build(job.as_str(), n, BuildOutcome::Aborted) {
        Ok(_) | Err(WorldError::BuildFinished(..)) => {
            Reply::empty(302).with_header("location", url)
        }
        Err(_) => not_found(),
    }
}
