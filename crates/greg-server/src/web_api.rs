//! The JSON twins of the pages (SPEC §9) that `api.rs` does not serve: `GET /api/repos` (the
//! index `/`) and `GET /api/pr/{owner}/{repo}/{number}` (the pull-request page). The queue
//! page's twin is `/api/queue/{owner}/{repo}` in `api.rs`. Same read models and the same
//! access check as the pages: an unknown repository, or one the viewer may not see, is a 404
//! `{"error": ...}`; "sign in first" is a 401.

use crate::pages::repo::{Resolved, pr_number, resolve, visible_repos};
use crate::routes::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/repos", web::get().to(repos)).route(
        "/api/pr/{owner}/{repo}/{number}",
        web::get().to(pull_request),
    );
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

async fn repos(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match visible_repos(&req, &state).await {
        Ok(list) => HttpResponse::Ok().json(serde_json::json!({ "repositories": list })),
        Err(e) => store_error(&e),
    }
}

async fn pull_request(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (owner, name, number) = path.into_inner();
    let (provider, repo) = match resolve(&req, &state, owner, name).await {
        Resolved::Allowed { provider, repo, .. } => (provider, repo),
        Resolved::SignIn => {
            return error(StatusCode::UNAUTHORIZED, "sign in to see this repository");
        }
        Resolved::NotFound(why) => return error(StatusCode::NOT_FOUND, &why),
    };
    let Some(pr) = pr_number(&number) else {
        return error(StatusCode::NOT_FOUND, "the pull request must be a number");
    };
    match state.engine().pr_view(&repo, pr).await {
        Ok(Some(view)) => HttpResponse::Ok().json(serde_json::json!({
            "provider": provider,
            "pull_request": view,
        })),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            &format!("greg holds nothing for {repo}#{pr}"),
        ),
        Err(e) => store_error(&e),
    }
}
