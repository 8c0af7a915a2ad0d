//! The read-only JSON API (hail's endpoints; docs/api.md has an example of each answer):
//! `GET /api/queue/{owner}/{repo}`, `/api/status`, `/api/ready-for-merge`,
//! `/api/review-status`, `/api/passing?limit=N`. Answers come from the store only (no provider
//! call). Errors are JSON too: `{"error": "<one line>"}` with 404 (repository not configured)
//! or 503 (the store does not answer; the message never carries the database URL).

use crate::routes::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
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
        .route("/api/passing", web::get().to(passing));
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

async fn queue(state: web::Data<AppState>, path: web::Path<(String, String)>) -> HttpResponse {
    let (owner, name) = path.into_inner();
    let repo = RepoName::new(owner, name);
    let engine = state.engine();
    if !engine
        .config()
        .repos
        .iter()
        .any(|r| r.matches(&r.provider, &repo))
    {
        return error(
            StatusCode::NOT_FOUND,
            &format!("repository {repo} is not configured"),
        );
    }
    match engine.queue_view(&repo).await {
        Ok(queues) => json(&serde_json::json!({ "repo": repo.to_string(), "queues": queues })),
        Err(e) => store_error(&e),
    }
}

async fn status(state: web::Data<AppState>) -> HttpResponse {
    match state.engine().status_view().await {
        Ok(prs) => json(&serde_json::json!({ "pull_requests": prs })),
        Err(e) => store_error(&e),
    }
}

async fn ready_for_merge(state: web::Data<AppState>) -> HttpResponse {
    match state.engine().ready_for_merge_view().await {
        Ok(queues) => json(&serde_json::json!({ "queues": queues })),
        Err(e) => store_error(&e),
    }
}

async fn review_status(state: web::Data<AppState>) -> HttpResponse {
    match state.engine().review_status_view().await {
        Ok(prs) => json(&serde_json::json!({ "pull_requests": prs })),
        Err(e) => store_error(&e),
    }
}

#[derive(serde::Deserialize)]
struct PassingQuery {
    limit: Option<String>,
}

async fn passing(state: web::Data<AppState>, query: web::Query<PassingQuery>) -> HttpResponse {
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
        Ok(list) => json(&serde_json::json!({ "passing": list })),
        Err(e) => store_error(&e),
    }
}
