//! The read-only JSON API (hail's endpoints; docs/api.md has an example of each answer):
//! `GET /api/queue/{owner}/{repo}`, `/api/status`, `/api/ready-for-merge`,
//! `/api/review-status`, `/api/passing?limit=N`, and the dead letters (SPEC §11):
//! `GET /api/deliveries?state=failed` and, with the admin token,
//! `POST /api/deliveries/{seq}/redeliver`. Answers come from the store only (no provider
//! call), except the access check of SPEC §9 (`auth`): with sign-in configured, a private
//! repository's queue answers 401 to anonymous requests and 404 to those who cannot read
//! it, and the cross-repository lists leave out the repositories the requester may not read
//! (`/api/passing` applies `limit` first). Errors are JSON too: `{"error": "<one line>"}` with 400, 401, 403, 404, 409 or 503
//! (the store does not answer; the message never carries the database URL).

use crate::auth;
use crate::routes::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use greg_core::RepoName;
use serde::Serialize;

/// Default and largest `limit` of `/api/passing`.
const PASSING_DEFAULT: i64 = 50;
const PASSING_MAX: i64 = 500;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/queue/{owner}/{repo}", web::get().to(queue))
        .route("/api/status", web::get().to(status))
        .route("/api/ready-for-merge", web::get().to(ready_for_merge))
        .route("/api/review-status", web::get().to(review_status))
        .route("/api/passing", web::get().to(passing))
        .route("/api/deliveries", web::get().to(deliveries))
        .route("/api/deliveries/{seq}/redeliver", web::post().to(redeliver));
}

fn json<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message }))
}

fn store_error(e: &greg_store::StoreError) -> HttpResponse {
    tracing::error!(error = %e, "JSON API: the store failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the store does not answer; try again",
    )
}

async fn queue(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (owner, name) = path.into_inner();
    let repo = RepoName::new(owner, name);
    let engine = state.engine();
    let not_configured = format!("repository {repo} is not configured");
    let Some(provider) = auth::provider_of(engine.config(), &repo) else {
        return error(StatusCode::NOT_FOUND, &not_configured);
    };
    let access = auth::access(&req, &state, provider, &repo).await;
    if let Some(refused) = auth::json_refusal(&access, &not_configured) {
        return refused;
    }
    match engine.queue_view(&repo).await {
        Ok(queues) => json(&serde_json::json!({ "repo": repo.to_string(), "queues": queues })),
        Err(e) => store_error(&e),
    }
}

async fn status(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match state.engine().status_view().await {
        Ok(prs) => {
            let prs = auth::readable(&req, &state, prs, |p| &p.repo).await;
            json(&serde_json::json!({ "pull_requests": prs }))
        }
        Err(e) => store_error(&e),
    }
}

async fn ready_for_merge(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match state.engine().ready_for_merge_view().await {
        Ok(queues) => {
            let queues = auth::readable(&req, &state, queues, |q| &q.repo).await;
            json(&serde_json::json!({ "queues": queues }))
        }
        Err(e) => store_error(&e),
    }
}

async fn review_status(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match state.engine().review_status_view().await {
        Ok(prs) => {
            let prs = auth::readable(&req, &state, prs, |p| &p.repo).await;
            json(&serde_json::json!({ "pull_requests": prs }))
        }
        Err(e) => store_error(&e),
    }
}

#[derive(serde::Deserialize)]
struct PassingQuery {
    limit: Option<String>,
}

async fn passing(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PassingQuery>,
) -> HttpResponse {
    let limit = match query.limit.as_deref().map(str::parse::<i64>) {
        None => PASSING_DEFAULT,
        Some(Ok(n)) if (1..=PASSING_MAX).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("limit must be a whole number from 1 to {PASSING_MAX}"),
            );
        }
    };
    match state.engine().passing_view(limit).await {
        Ok(list) => {
            let list = auth::readable(&req, &state, list, |p| &p.repo).await;
            json(&serde_json::json!({ "passing": list }))
        }
        Err(e) => store_error(&e),
    }
}

/// Most dead letters one answer lists.
const DELIVERIES_MAX: i64 = 1000;

#[derive(serde::Deserialize)]
struct DeliveriesQuery {
    state: Option<String>,
}

/// One dead letter, as `GET /api/deliveries?state=failed` lists it.
#[derive(Serialize)]
struct FailedView {
    seq: i64,
    source: String,
    delivery_id: String,
    event: String,
    repo: String,
    received_ms: i64,
    failed_ms: Option<i64>,
    attempts: i64,
    error: String,
}

async fn deliveries(
    state: web::Data<AppState>,
    query: web::Query<DeliveriesQuery>,
) -> HttpResponse {
    if query.state.as_deref() != Some("failed") {
        return error(
            StatusCode::BAD_REQUEST,
            "state must be `failed` (the dead letters)",
        );
    }
    match state.engine().failed_deliveries(DELIVERIES_MAX).await {
        Ok(list) => {
            let list: Vec<FailedView> = list
                .into_iter()
                .map(|d| FailedView {
                    seq: d.seq,
                    source: d.source,
                    delivery_id: d.delivery_id,
                    event: d.event,
                    repo: d.repo_key,
                    received_ms: d.received_ms,
                    failed_ms: d.failed_ms,
                    attempts: d.attempts,
                    error: d.error,
                })
                .collect();
            json(&serde_json::json!({ "state": "failed", "deliveries": list }))
        }
        Err(e) => {
            tracing::error!(error = %e, "JSON API: the store failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store does not answer; try again",
            )
        }
    }
}

/// Checks `Authorization: Bearer <server.admin_token>`; returns the refusal, if any: 403 when
/// no admin token is configured, 401 when the header is missing or wrong (compared in
/// constant time).
fn admin_refusal(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let Some(expected) = state.engine().config().server.admin_token.as_ref() else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "the admin API is off: set server.admin_token",
        ));
    };
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let ok = match given {
        Some(g) if !expected.is_empty() => bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.expose().as_bytes(),
            g.as_bytes(),
        )),
        _ => false,
    };
    (!ok).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token (Authorization: Bearer ...)",
        )
    })
}

async fn redeliver(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    if let Some(refused) = admin_refusal(&req, &state) {
        return refused;
    }
    let Ok(seq) = path.into_inner().parse::<i64>() else {
        return error(StatusCode::NOT_FOUND, "no such delivery");
    };
    match state.engine().redeliver(seq).await {
        Ok(greg_engine::Redelivered::Queued) => {
            tracing::info!(seq, "Admin API: delivery redelivered");
            HttpResponse::Accepted().json(serde_json::json!({ "seq": seq, "state": "pending" }))
        }
        Ok(greg_engine::Redelivered::NotFound) => {
            error(StatusCode::NOT_FOUND, &format!("no delivery {seq}"))
        }
        Ok(greg_engine::Redelivered::NotFailed) => error(
            StatusCode::CONFLICT,
            &format!("delivery {seq} has not failed; only failed deliveries are redelivered"),
        ),
        Err(e) => {
            tracing::error!(error = %e, "JSON API: the store failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store does not answer; try again",
            )
        }
    }
}
