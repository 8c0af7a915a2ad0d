//! Routes: `POST /repo`, `POST /build`, `GET /`, `GET /healthz`, `GET /metrics`; the JSON API under `/api`
//! is in `api.rs`.
//!
//! Checks run cheapest first and nothing is stored until every check passed: unknown provider
//! (404), token (401), declared size (413), content type (415), body read with the limit (413),
//! signature (401), parse (400 or 202 ignored), configured repository (202 ignored), then the
//! durable inbox write and 202.

use crate::MAX_BODY_BYTES;
use crate::answer::Answer;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use greg_core::{Event, Headers, Inbound, Secret};
use greg_engine::{Accepted, Engine};
use sha2::Digest as _;
use subtle::ConstantTimeEq;

/// Shared state of all workers.
pub(crate) struct AppState {
    engine: Engine,
    auth: crate::auth::AuthState,
}

impl AppState {
    pub(crate) fn new(engine: Engine) -> Self {
        let auth = crate::auth::AuthState::new(engine.config());
        Self { engine, auth }
    }

    /// Sign-in and access (SPEC §9).
    pub(crate) fn auth(&self) -> &crate::auth::AuthState {
        &self.auth
    }

    /// The engine (for the JSON API's read models).
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics))
        .route("/repo", web::post().to(repo_hook))
        .route("/build", web::post().to(build_hook))
        .configure(crate::pages::configure)
        .configure(crate::api::configure)
        .configure(crate::reports::configure)
        .configure(crate::auth::configure)
        .configure(crate::project::configure)
        .configure(crate::web_api::configure);
}

#[derive(serde::Deserialize)]
pub(crate) struct HookQuery {
    provider: Option<String>,
    pub(crate) builder: Option<String>,
    token: Option<String>,
}

/// `GET /`: the dashboard page for HTML clients (`Accept` names `text/html`), else the
/// one-line `I am Greg` for probes and scripts (SPEC §3).
async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let html = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"));
    if html {
        return crate::pages::repo::index_page(&req, &state).await;
    }
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(format!("I am Greg (greg {})\n", env!("CARGO_PKG_VERSION")))
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    match state.engine.store().ping().await {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ok\n"),
        Err(e) => {
            tracing::error!(error = %e, "Health check: the store does not answer");
            Answer::unavailable("the store does not answer").into_response()
        }
    }
}

/// `GET /metrics`: Prometheus' scrape (SPEC §9), OpenMetrics text; docs/operations.md lists
/// every metric.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match state.engine.metrics_text().await {
        Ok(text) => HttpResponse::Ok()
            .content_type(greg_engine::METRICS_CONTENT_TYPE)
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "Metrics could not be encoded");
            Answer::unavailable("metrics could not be encoded").into_response()
        }
    }
}

fn token_matches(expected: &Secret, given: Option<&str>) -> bool {
    match given {
        Some(g) if !expected.is_empty() => {
            bool::from(expected.expose().as_bytes().ct_eq(g.as_bytes()))
        }
        _ => false,
    }
}

fn headers_of(req: &HttpRequest) -> Headers {
    Headers::new(
        req.headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))),
    )
}

/// Content type check: JSON or absent is fine, anything else is 415.
fn check_content_type(req: &HttpRequest) -> Result<(), Answer> {
    let Some(ct) = req.headers().get("content-type") else {
        return Ok(());
    };
    let ct = ct
        .to_str()
        .unwrap_or("(not text)")
        .trim()
        .to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(Answer::unsupported_media(&ct))
    }
}

/// Reads the body, refusing anything over [`MAX_BODY_BYTES`] (by Content-Length first, then
/// while reading, so a lying or absent length cannot exhaust memory).
async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<web::Bytes, Answer> {
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(Answer::too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(16 * 1024));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| Answer::bad_request(&format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Answer::too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The checks `/repo` and `/build` share, cheapest first: the `?token=` of the named provider
/// or builder (`expected` is `None` for an unknown name, already answered 404 by the caller),
/// the content type, and the body read with the size limit.
pub(crate) async fn authenticate_and_read(
    req: &HttpRequest,
    query: &HookQuery,
    expected: Option<&Secret>,
    payload: web::Payload,
) -> Result<web::Bytes, Answer> {
    let expected = expected.cloned().unwrap_or_default();
    if !token_matches(&expected, query.token.as_deref()) {
        return Err(Answer::unauthorized(if query.token.is_none() {
            "missing ?token="
        } else {
            "wrong ?token="
        }));
    }
    check_content_type(req)?;
    read_body(req, payload).await
}

async fn repo_hook(
    req: HttpRequest,
    query: web::Query<HookQuery>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let answer = match repo_hook_inner(&req, &query, payload, &state).await {
        Ok(a) | Err(a) => a,
    };
    log_answer("repo", query.provider.as_deref(), &answer);
    answer.into_response()
}

async fn repo_hook_inner(
    req: &HttpRequest,
    query: &HookQuery,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Answer> {
    let name = query.provider.as_deref().unwrap_or("");
    let provider = state
        .engine
        .provider(name)
        .ok_or_else(|| unknown("provider", query.provider.as_deref()))?;
    let expected = state.engine.config().providers.incoming_token(name);
    let body = authenticate_and_read(req, query, expected, payload).await?;
    let headers = headers_of(req);
    provider
        .verify_webhook(&headers, &body)
        .map_err(|e| Answer::unauthorized(&e.to_string()))?;
    // Several events from one delivery are stored as `<id>#<n>`, `n` their position in the
    // delivery, so a repeated delivery is dropped event by event.
    let (events, several) = match provider
        .parse_webhook(&headers, &body)
        .map_err(|e| Answer::bad_request(&e.to_string()))?
    {
        Inbound::Ignored(why) => return Ok(Answer::ignored(&why)),
        Inbound::Event(e) => (vec![e], false),
        Inbound::Events(events) => (events, true),
    };
    let config = state.engine.config();
    let mut unconfigured = None;
    let events: Vec<(usize, Event)> = events
        .into_iter()
        .enumerate()
        .filter(|(_, event)| match event.repository() {
            Some(repo) if config.repo(name, repo).is_none() => {
                unconfigured.get_or_insert_with(|| repo.to_string());
                false
            }
            _ => true,
        })
        .collect();
    if events.is_empty() {
        return Ok(Answer::ignored(&match unconfigured {
            Some(repo) => format!("repository {repo} is not configured"),
            None => "the delivery carries no event".to_owned(),
        }));
    }
    let delivery = provider.delivery_id(&headers).ok_or_else(|| {
        Answer::bad_request(&format!(
            "missing delivery id header ({})",
            delivery_header(state, name)
        ))
    })?;
    if !several {
        if let Some((_, event)) = events.into_iter().next() {
            return accept(state, name, &delivery, event).await;
        }
        return Ok(Answer::ignored("the delivery carries no event"));
    }
    let mut seqs = Vec::new();
    for (n, event) in events {
        match state
            .engine
            .accept(name, &format!("{delivery}#{n}"), event)
            .await
        {
            Ok(Accepted::New(seq)) => seqs.push(seq),
            Ok(Accepted::Duplicate) => {}
            Err(e) => return Err(store_failed(&e, name, &delivery)),
        }
    }
    Ok(if seqs.is_empty() {
        Answer::duplicate()
    } else {
        Answer::accepted_several(&seqs)
    })
}

/// The header that names a delivery of provider `name`, for the answer when it is missing.
fn delivery_header(state: &AppState, name: &str) -> &'static str {
    match (name, &state.engine.config().providers.bitbucket) {
        ("bitbucket", Some(b)) if b.flavor == greg_config::BitbucketFlavor::Server => {
            "X-Request-Id"
        }
        ("bitbucket", Some(_)) => "X-Request-UUID",
        _ => "X-GitHub-Delivery",
    }
}

async fn build_hook(
    req: HttpRequest,
    query: web::Query<HookQuery>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let answer = match build_hook_inner(&req, &query, payload, &state).await {
        Ok(a) | Err(a) => a,
    };
    log_answer("build", query.builder.as_deref(), &answer);
    answer.into_response()
}

async fn build_hook_inner(
    req: &HttpRequest,
    query: &HookQuery,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Answer> {
    let name = query.builder.as_deref().unwrap_or("");
    let builder = state
        .engine
        .builder(name)
        .ok_or_else(|| unknown("builder", query.builder.as_deref()))?;
    let expected = state.engine.config().builders.incoming_token(name);
    let body = authenticate_and_read(req, query, expected, payload).await?;
    let event = match builder
        .parse_notification(&body)
        .map_err(|e| Answer::bad_request(&e.to_string()))?
    {
        Inbound::Ignored(why) => return Ok(Answer::ignored(&why)),
        Inbound::Event(e) => e,
        Inbound::Events(_) => {
            return Err(Answer::bad_request(
                "a build notification carries one build update",
            ));
        }
    };
    // Jenkins sends no delivery id: one phase of one build, with these exact bytes, is one
    // delivery. The body's digest is part of the id so that a forged callback for a build
    // (the `?token=` is readable in the job's configuration) cannot pre-empt the real one
    // as a "duplicate"; Jenkins' own retries send the same bytes and stay duplicates.
    let digest = hex::encode(&sha2::Sha256::digest(&body)[..8]);
    let delivery = match &event {
        Event::Build(b) => format!("{}#{}/{}/{digest}", b.job, b.number, b.phase.as_str()),
        other => other.name(),
    };
    let answer = accept(state, name, &delivery, event).await;
    if let Ok(a) = &answer {
        // The engine logs a callback it finds forged or stale with its delivery seq; this
        // line ties that seq to the sender's address.
        let peer = req.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(builder = name, delivery, peer, answer = %a.reason, "Build callback accepted");
    }
    answer
}

async fn accept(
    state: &AppState,
    source: &str,
    delivery: &str,
    event: Event,
) -> Result<Answer, Answer> {
    match state.engine.accept(source, delivery, event).await {
        Ok(Accepted::New(seq)) => Ok(Answer::accepted(seq)),
        Ok(Accepted::Duplicate) => Ok(Answer::duplicate()),
        Err(e) => Err(store_failed(&e, source, delivery)),
    }
}

/// 503 for a delivery the store could not take (the sender retries), logged.
fn store_failed(e: &greg_engine::EngineError, source: &str, delivery: &str) -> Answer {
    tracing::error!(error = %e, source, delivery, "Could not store an accepted delivery");
    Answer::unavailable("could not store the delivery; retry later")
}

/// 404 for a `?provider=` / `?builder=` (`what`) that is absent or names nothing configured.
pub(crate) fn unknown(what: &str, name: Option<&str>) -> Answer {
    match name {
        None => Answer::not_found(&format!("missing ?{what}=")),
        Some(name) => Answer::not_found(&format!("unknown {what} `{}`", printable(name))),
    }
}

/// At most 64 printable characters of user input, for answers and logs.
pub(crate) fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

fn log_answer(route: &str, name: Option<&str>, a: &Answer) {
    let name = printable(name.unwrap_or(""));
    if a.status.is_success() {
        tracing::debug!(route, name = %name, status = a.status.as_u16(), reason = %a.reason, "Webhook answered");
    } else {
        tracing::warn!(route, name = %name, status = a.status.as_u16(), reason = %a.reason, "Webhook refused");
    }
}
