//! `POST /api/reports?builder=NAME&token=T` (SPEC §8: what `greg report` sends) and
//! `GET /report/{provider}/{owner}/{repo}/{pr}` (the full report page the comment links to).
//!
//! Checks run cheapest first and nothing is stored until every check passed: unknown builder
//! (404), token (401), content type (415), size (413, 10 MiB), then the engine's checks: the
//! body and its JUnit files (400 naming the field or file), the provider and repository
//! (404), then the durable inbox write (503 when the store fails) and 202. As for webhooks,
//! no provider is called here: the pull requests of the commit are found in the lane.
//! Answers are one line of text, as `/build`'s.
//!
//! The GET routes check access first (SPEC §9, `auth`): a private repository's report page
//! redirects anonymous viewers to `/login`, its JSON answers 401, and both answer 404 to
//! those who cannot read it.

use crate::answer::Answer;
use crate::auth::{self, Access};
use crate::routes::{AppState, HookQuery, authenticate_and_read, printable, unknown};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use greg_core::{PrNumber, RepoName};
use greg_engine::{Accepted, ReportRefusal};
use greg_report::BodyError;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/reports", web::post().to(post_report))
        .route(
            "/api/reports/{provider}/{owner}/{repo}/{pr}",
            web::get().to(report_json),
        )
        .route(
            "/report/{provider}/{owner}/{repo}/{pr}",
            web::get().to(report_page),
        );
}

async fn post_report(
    req: HttpRequest,
    query: web::Query<HookQuery>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let answer = match post_report_inner(&req, &query, payload, &state).await {
        Ok(a) | Err(a) => a,
    };
    let builder = printable(query.builder.as_deref().unwrap_or(""));
    if answer.status.is_success() {
        tracing::info!(builder = %builder, answer = %answer.reason, "Report answered");
    } else {
        tracing::warn!(builder = %builder, status = answer.status.as_u16(), answer = %answer.reason, "Report refused");
    }
    answer.into_response()
}

async fn post_report_inner(
    req: &HttpRequest,
    query: &HookQuery,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Answer> {
    let name = query.builder.as_deref().unwrap_or("");
    let engine = state.engine();
    if engine.builder(name).is_none() {
        return Err(unknown("builder", query.builder.as_deref()));
    }
    let expected = engine.config().builders.incoming_token(name);
    let body = authenticate_and_read(req, query, expected, payload).await?;
    match engine.accept_report(&body).await {
        Ok(receipt) => Ok(match receipt.accepted {
            Accepted::New(seq) => Answer::new(
                StatusCode::ACCEPTED,
                format!(
                    "accepted: report of {} on {}@{} queued as delivery {seq}",
                    printable(&receipt.job),
                    receipt.repo,
                    receipt.sha.short()
                ),
            ),
            Accepted::Duplicate => Answer::duplicate(),
        }),
        Err(refusal) => Err(refused(&refusal)),
    }
}

/// The answer for a report the engine refused.
fn refused(refusal: &ReportRefusal) -> Answer {
    match refusal {
        ReportRefusal::Body(BodyError::TooLarge { .. }) => Answer::too_large(),
        ReportRefusal::Body(_) | ReportRefusal::Junit(_) | ReportRefusal::Invalid(_) => {
            Answer::bad_request(&refusal.to_string())
        }
        ReportRefusal::NotConfigured(why) => Answer::not_found(why),
        ReportRefusal::Files(why) => {
            tracing::error!(error = %why, "Could not keep a report's files");
            Answer::unavailable("could not keep the report's files; retry later")
        }
        ReportRefusal::Store(e) => {
            tracing::error!(error = %e, "Could not store a report");
            Answer::unavailable("could not store the report; retry later")
        }
    }
}

async fn report_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String, String)>,
) -> HttpResponse {
    let (provider, owner, name, pr) = path.into_inner();
    let not_found = |what: &str| {
        HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body(format!("not found: {what}\n"))
    };
    let Ok(pr) = pr.parse::<u64>() else {
        return not_found("the pull request must be a number");
    };
    let repo = RepoName::new(owner, name);
    let engine = state.engine();
    let not_configured = format!(
        "repository {} is not configured for {}",
        printable(&repo.to_string()),
        printable(&provider)
    );
    if engine.config().repo(&provider, &repo).is_none() {
        return not_found(&not_configured);
    }
    match auth::access(&req, &state, &provider, &repo).await {
        Access::Allowed(_) => {}
        Access::SignIn => return auth::sign_in_redirect(&req),
        Access::Denied => return not_found(&not_configured),
    }
    match engine.full_report(&provider, &repo, PrNumber(pr)).await {
        Ok(Some(page)) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'",
            ))
            .body(page),
        Ok(None) => not_found(&format!("no report for {repo}#{pr}")),
        Err(e) => {
            tracing::error!(error = %e, "Report page: the store failed");
            Answer::unavailable("the store does not answer").into_response()
        }
    }
}

/// `GET /api/reports/{provider}/{owner}/{repo}/{pr}`: the JSON twin of the report page (the
/// comment's state, each job's latest report, the metadata files). Errors are JSON, as the
/// rest of `/api`.
async fn report_json(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String, String)>,
) -> HttpResponse {
    let (provider, owner, name, pr) = path.into_inner();
    let error = |status: StatusCode, message: &str| {
        HttpResponse::build(status).json(serde_json::json!({ "error": message }))
    };
    let Ok(pr) = pr.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, "the pull request must be a number");
    };
    let repo = RepoName::new(owner, name);
    let engine = state.engine();
    let not_configured = format!(
        "repository {} is not configured for {}",
        printable(&repo.to_string()),
        printable(&provider)
    );
    if engine.config().repo(&provider, &repo).is_none() {
        return error(StatusCode::NOT_FOUND, &not_configured);
    }
    let access = auth::access(&req, &state, &provider, &repo).await;
    if let Some(refused) = auth::json_refusal(&access, &not_configured) {
        return refused;
    }
    match engine.report_view(&repo, PrNumber(pr)).await {
        Ok(Some(view)) => HttpResponse::Ok().json(serde_json::json!({
            "provider": provider, "repo": repo.to_string(), "report": view
        })),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no report for {repo}#{pr}")),
        Err(e) => {
            tracing::error!(error = %e, "Report API: the store failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store does not answer; try again",
            )
        }
    }
}
