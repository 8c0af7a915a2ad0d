//! The repository pages (SPEC §9): the index `/` (for HTML clients), the merge queues
//! `/queue/{owner}/{repo}` and a pull request `/pr/{owner}/{repo}/{number}`. Each reads the
//! engine's read models (store only, no provider call) and asks `auth::access` first: a
//! repository the viewer may not see answers exactly as an unknown one (404).
//!
//! The JSON twins (`web_api.rs`, and `/api/queue/…` in `api.rs`) serve the same read models.

use super::{Chrome, not_found, render};
use crate::auth::{self, Access, Viewer};
use crate::routes::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use greg_core::{PrNumber, RepoName};
use greg_engine::api::QueueView;
use greg_engine::eta::{Eta, human};
use greg_engine::views::{PrView, RepoSummary};

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/queue/{owner}/{repo}", web::get().to(queue_page))
        .route("/pr/{owner}/{repo}/{number}", web::get().to(pr_page));
}

/// A repository named by a path, once resolved.
pub(crate) enum Resolved {
    /// Configured, and the viewer may see it.
    Allowed {
        /// The configured provider.
        provider: String,
        /// The repository.
        repo: RepoName,
        /// Who is looking.
        viewer: Option<Viewer>,
    },
    /// Not anonymously.
    SignIn,
    /// Unknown, or not for this viewer: answered the same.
    NotFound(String),
}

/// Resolves `owner/name` of a page or twin path: configured (the provider whose
/// `repos[]` matches it) and readable by the viewer (`auth::access`).
pub(crate) async fn resolve(
    req: &HttpRequest,
    state: &AppState,
    owner: String,
    name: String,
) -> Resolved {
    let repo = RepoName::new(owner, name);
    let unknown = || {
        Resolved::NotFound(format!(
            "repository {} is not configured",
            crate::routes::printable(&repo.to_string())
        ))
    };
    let Some(provider) = state
        .engine()
        .config()
        .repos
        .iter()
        .find(|r| r.matches(&r.provider, &repo))
        .map(|r| r.provider.clone())
    else {
        return unknown();
    };
    match auth::access(req, state, &provider, &repo).await {
        Access::Allowed(viewer) => Resolved::Allowed {
            provider,
            repo,
            viewer,
        },
        Access::SignIn => Resolved::SignIn,
        Access::Denied => unknown(),
    }
}

/// 303 to `/login?next=<path>`.
fn sign_in(req: &HttpRequest) -> HttpResponse {
    let next: String = req
        .path()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    HttpResponse::SeeOther()
        .insert_header(("location", format!("/login?next={next}")))
        .finish()
}

fn store_failed(chrome: Chrome, e: &greg_store::StoreError) -> HttpResponse {
    tracing::error!(error = %e, "A page could not read the store");
    render(
        StatusCode::SERVICE_UNAVAILABLE,
        &Unavailable {
            chrome,
            message: "The store does not answer; try again.",
        },
    )
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct Unavailable<'a> {
    chrome: Chrome,
    message: &'a str,
}

/// An ETA for people: the range, or `unknown`.
pub(crate) fn eta_words(eta: Option<&Eta>) -> String {
    eta.map_or_else(|| "unknown".to_owned(), Eta::words)
}

// ---------------------------------------------------------------------------------------
// `/`

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    chrome: Chrome,
    repos: Vec<RepoSummary>,
}

/// `GET /` for HTML clients: the repositories the viewer may see.
pub(crate) async fn index_page(req: &HttpRequest, state: &AppState) -> HttpResponse {
    let viewer = auth::viewer(req, state);
    let chrome = Chrome::new(viewer.as_ref(), auth::sign_in_configured(state));
    match visible_repos(req, state).await {
        Ok(repos) => render(StatusCode::OK, &IndexPage { chrome, repos }),
        Err(e) => store_failed(chrome, &e),
    }
}

/// The repositories of [`greg_engine::Engine::repo_summaries`] that `auth::access` allows.
pub(crate) async fn visible_repos(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Vec<RepoSummary>, greg_store::StoreError> {
    let mut out = Vec::new();
    for r in state.engine().repo_summaries().await? {
        let Some(repo) = RepoName::parse(&r.repo) else {
            continue;
        };
        if matches!(
            auth::access(req, state, &r.provider, &repo).await,
            Access::Allowed(_)
        ) {
            out.push(r);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// `/queue/{owner}/{repo}`

struct QueueRow {
    position: String,
    pr: u64,
    /// `None`: greg never saw the pull request (the page shows its number alone).
    title: Option<String>,
    author: Option<String>,
    kind: &'static str,
    approved_by: String,
    priority: i32,
    state: &'static str,
    build_url: Option<String>,
    build_label: String,
    waited: String,
    eta: String,
}

struct TargetQueue {
    target: String,
    tree_closed_below: Option<i32>,
    rows: Vec<QueueRow>,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    chrome: Chrome,
    repo: String,
    queues: Vec<TargetQueue>,
}

/// The queue page's rows from the engine's queue views, at `now` (unix milliseconds).
fn queue_rows(views: &[QueueView], now: i64) -> Vec<TargetQueue> {
    views
        .iter()
        .map(|q| TargetQueue {
            target: q.target.clone(),
            tree_closed_below: q.tree_closed_below,
            rows: q
                .entries
                .iter()
                .map(|e| QueueRow {
                    position: e.position.map_or_else(|| "–".to_owned(), |p| p.to_string()),
                    pr: e.pr.0,
                    title: e.title.clone(),
                    author: e.author.as_ref().map(ToString::to_string),
                    kind: e.kind,
                    approved_by: e.approved_by.to_string(),
                    priority: e.priority,
                    state: e.state,
                    build_url: e.build.as_ref().and_then(|b| b.url.clone()),
                    build_label: e
                        .build
                        .as_ref()
                        .map_or_else(String::new, |b| match b.number {
                            Some(n) => format!("{} #{n} {}", b.job, b.state),
                            None => format!("{} {}", b.job, b.state),
                        }),
                    waited: human(now.saturating_sub(e.approved_ms)),
                    eta: eta_words(e.eta.as_ref()),
                })
                .collect(),
        })
        .collect()
}

async fn queue_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (owner, name) = path.into_inner();
    let (repo, viewer) = match resolve(&req, &state, owner, name).await {
        Resolved::Allowed { repo, viewer, .. } => (repo, viewer),
        Resolved::SignIn => return sign_in(&req),
        Resolved::NotFound(why) => {
            let chrome = Chrome::new(
                auth::viewer(&req, &state).as_ref(),
                auth::sign_in_configured(&state),
            );
            return not_found(chrome, &why);
        }
    };
    let chrome = Chrome::new(viewer.as_ref(), auth::sign_in_configured(&state));
    match state.engine().queue_view(&repo).await {
        Ok(views) => render(
            StatusCode::OK,
            &QueuePage {
                chrome,
                repo: repo.to_string(),
                queues: queue_rows(&views, state.engine().now_ms()),
            },
        ),
        Err(e) => store_failed(chrome, &e),
    }
}

// ---------------------------------------------------------------------------------------
// `/pr/{owner}/{repo}/{number}`

#[derive(Template)]
#[template(path = "pr.html")]
struct PrPage {
    chrome: Chrome,
    provider: String,
    view: PrView,
}

impl PrPage {
    fn duration(&self, ms: &Option<i64>) -> String {
        ms.map_or_else(|| "running".to_owned(), secs)
    }

    fn reported(&self, ms: &Option<u64>) -> String {
        ms.map_or_else(String::new, |ms| {
            secs(i64::try_from(ms).unwrap_or(i64::MAX))
        })
    }
}

/// `ms` milliseconds as `1 min 5 s` or `42 s`.
fn secs(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// The pull-request number of a path; `None` when it is not one.
pub(crate) fn pr_number(text: &str) -> Option<PrNumber> {
    text.parse::<u64>().ok().map(PrNumber)
}

async fn pr_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (owner, name, number) = path.into_inner();
    let anonymous = || {
        Chrome::new(
            auth::viewer(&req, &state).as_ref(),
            auth::sign_in_configured(&state),
        )
    };
    let (provider, repo, viewer) = match resolve(&req, &state, owner, name).await {
        Resolved::Allowed {
            provider,
            repo,
            viewer,
        } => (provider, repo, viewer),
        Resolved::SignIn => return sign_in(&req),
        Resolved::NotFound(why) => return not_found(anonymous(), &why),
    };
    let chrome = Chrome::new(viewer.as_ref(), auth::sign_in_configured(&state));
    let Some(pr) = pr_number(&number) else {
        return not_found(chrome, "the pull request must be a number");
    };
    match state.engine().pr_view(&repo, pr).await {
        Ok(Some(view)) => render(
            StatusCode::OK,
            &PrPage {
                chrome,
                provider,
                view,
            },
        ),
        Ok(None) => not_found(chrome, &format!("greg holds nothing for {repo}#{pr}")),
        Err(e) => store_failed(chrome, &e),
    }
}
