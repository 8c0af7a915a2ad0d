//! `/project/{owner}/{repo}` (SPEC §9): the repository's admins and required reviewers; its
//! admins edit the reviewers greg stores (form fields `reviewers`, one login per line, and
//! `csrf_token`), which join `repos[].reviewers` in the rules at once. JSON twin:
//! `GET /api/project/{owner}/{repo}` → `{"admins": [...], "reviewers": [...]}`.
//!
//! A POST is checked in this order: a configured repository the requester may read (404),
//! the form's size (413), a session (403), its CSRF token (403), admin permission on the
//! repository, asked of GitHub (403), the logins (400); then stored, and 303 back to the
//! page.

use crate::auth::{self, Access, Viewer};
use crate::pages::{Chrome, not_found, render};
use crate::routes::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use greg_core::{Login, RepoName};

/// Most reviewers one list may hold.
pub(crate) const MAX_REVIEWERS: usize = 100;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/project/{owner}/{repo}", web::get().to(page))
        .route("/project/{owner}/{repo}", web::post().to(edit))
        .route("/api/project/{owner}/{repo}", web::get().to(json));
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    chrome: Chrome,
    repo: String,
    /// `None`: GitHub could not be asked.
    admins: Option<Vec<String>>,
    configured: Vec<String>,
    stored: Vec<String>,
    /// What the form shows: the stored list, one per line.
    text: String,
    /// The viewer may edit (an admin).
    editable: bool,
    /// Why not, for a viewer who may not.
    note: &'static str,
}

/// The configured repository named by the path and its provider, or the 404 message.
fn resolve(state: &AppState, owner: String, name: String) -> Result<(RepoName, String), String> {
    let repo = RepoName::new(owner, name);
    match auth::provider_of(state.engine().config(), &repo) {
        Some(p) => Ok((repo, p.to_owned())),
        None => Err(format!(
            "repository {} is not configured",
            crate::routes::printable(&repo.to_string())
        )),
    }
}

/// `repos[].reviewers` of `repo`'s entry.
fn configured(state: &AppState, provider: &str, repo: &RepoName) -> Vec<Login> {
    state
        .engine()
        .config()
        .repo(provider, repo)
        .map(|r| r.reviewers.clone())
        .unwrap_or_default()
}

fn store_failed(e: &greg_store::StoreError) -> HttpResponse {
    tracing::error!(error = %e, "Project page: the store failed");
    crate::Answer::unavailable("the store does not answer").into_response()
}

async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (owner, name) = path.into_inner();
    let sign_in = auth::sign_in_configured(&state);
    let (repo, provider) = match resolve(&state, owner, name) {
        Ok(r) => r,
        Err(why) => {
            return not_found(
                Chrome::new(auth::viewer(&req, &state).as_ref(), sign_in),
                &why,
            );
        }
    };
    let viewer = match auth::access(&req, &state, &provider, &repo).await {
        Access::Allowed(v) => v,
        Access::SignIn => return auth::sign_in_redirect(&req),
        Access::Denied => {
            let v = auth::viewer(&req, &state);
            return not_found(
                Chrome::new(v.as_ref(), sign_in),
                &format!("repository {repo} is not configured"),
            );
        }
    };
    let stored = match state.engine().project_reviewers(&repo).await {
        Ok(s) => s,
        Err(e) => return store_failed(&e),
    };
    let admins = if provider == "github" {
        auth::admins(&state, &repo).await
    } else {
        None
    };
    let editable = match &viewer {
        Some(v) => auth::is_admin(&state, v, &repo).await,
        None => false,
    };
    let note = match (&viewer, editable) {
        (_, true) => "",
        (Some(_), false) => "Only admins of this repository can edit its reviewers.",
        (None, false) if sign_in => "Sign in as an admin of this repository to edit its reviewers.",
        (None, false) => "Editing needs sign-in, which is not configured (providers.github.oauth).",
    };
    let names = |l: &[Login]| l.iter().map(ToString::to_string).collect::<Vec<_>>();
    render(
        StatusCode::OK,
        &ProjectPage {
            chrome: Chrome::new(viewer.as_ref(), sign_in),
            repo: repo.to_string(),
            admins: admins.as_deref().map(names),
            configured: names(&configured(&state, &provider, &repo)),
            text: names(&stored).join("\n"),
            stored: names(&stored),
            editable,
            note,
        },
    )
}

/// The logins of the `reviewers` field: one per line, a leading `@` dropped, blank lines
/// skipped, repeats (in any case) kept once. Errors name the first bad line.
pub(crate) fn parse_reviewers(text: &str) -> Result<Vec<Login>, String> {
    let mut logins: Vec<Login> = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        let l = l.strip_prefix('@').unwrap_or(l);
        if l.is_empty() {
            continue;
        }
        let valid = l.len() <= 39
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-');
        if !valid {
            return Err(format!(
                "`{}` is not a GitHub login (letters, digits and single hyphens, at most 39)",
                crate::routes::printable(l)
            ));
        }
        let login = Login::from(l);
        if !logins.contains(&login) {
            logins.push(login);
        }
    }
    if logins.len() > MAX_REVIEWERS {
        return Err(format!("at most {MAX_REVIEWERS} reviewers"));
    }
    Ok(logins)
}

async fn edit(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let (owner, name) = path.into_inner();
    let sign_in = auth::sign_in_configured(&state);
    let (repo, provider) = match resolve(&state, owner, name) {
        Ok(r) => r,
        Err(why) => {
            return not_found(
                Chrome::new(auth::viewer(&req, &state).as_ref(), sign_in),
                &why,
            );
        }
    };
    let viewer: Option<Viewer> = match auth::access(&req, &state, &provider, &repo).await {
        Access::Allowed(v) => v,
        Access::SignIn => None,
        Access::Denied => {
            return not_found(
                Chrome::new(auth::viewer(&req, &state).as_ref(), sign_in),
                &format!("repository {repo} is not configured"),
            );
        }
    };
    let form = match auth::read_form(&req, payload).await {
        Ok(f) => f,
        Err(e) => return auth::form_refusal(&req, &state, &e),
    };
    let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let Some(viewer) = viewer else {
        return auth::message(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Sign in as an admin of this repository to edit its reviewers.",
        );
    };
    if !auth::csrf_matches(&viewer.csrf_token, field("csrf_token")) {
        return auth::csrf_refusal(&req, &state);
    }
    if !auth::is_admin(&state, &viewer, &repo).await {
        tracing::warn!(%repo, user = %viewer.login, "Reviewer edit refused: not an admin");
        return auth::message(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Only admins of this repository can edit its reviewers.",
        );
    }
    let logins = match parse_reviewers(field("reviewers").unwrap_or("")) {
        Ok(l) => l,
        Err(why) => {
            return auth::message(&req, &state, StatusCode::BAD_REQUEST, "Not saved", &why);
        }
    };
    if let Err(e) = state
        .engine()
        .set_project_reviewers(&repo, &logins, &viewer.login)
        .await
    {
        return store_failed(&e);
    }
    HttpResponse::SeeOther()
        .insert_header(("location", format!("/project/{repo}")))
        .finish()
}

async fn json(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (owner, name) = path.into_inner();
    let error = |status: StatusCode, message: &str| {
        HttpResponse::build(status).json(serde_json::json!({ "error": message }))
    };
    let (repo, provider) = match resolve(&state, owner, name) {
        Ok(r) => r,
        Err(why) => return error(StatusCode::NOT_FOUND, &why),
    };
    let access = auth::access(&req, &state, &provider, &repo).await;
    if let Some(refused) =
        auth::json_refusal(&access, &format!("repository {repo} is not configured"))
    {
        return refused;
    }
    let stored = match state.engine().project_reviewers(&repo).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "Project API: the store failed");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store does not answer; try again",
            );
        }
    };
    let mut reviewers = configured(&state, &provider, &repo);
    for l in stored {
        if !reviewers.contains(&l) {
            reviewers.push(l);
        }
    }
    let admins = if provider == "github" {
        auth::admins(&state, &repo).await
    } else {
        None
    };
    let Some(admins) = admins else {
        return error(
            StatusCode::BAD_GATEWAY,
            "the repository's admins could not be read from the provider",
        );
    };
    HttpResponse::Ok().json(serde_json::json!({ "admins": admins, "reviewers": reviewers }))
}

#[cfg(test)]
mod tests {
    use super::parse_reviewers;

    #[test]
    fn reviewers_are_one_login_per_line() {
        let names = |t: &str| {
            parse_reviewers(t).map(|l| l.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        assert_eq!(
            names(" alice \r\n\n@bob\nAlice\n").expect("valid"),
            ["alice", "bob"]
        );
        assert_eq!(names("").expect("empty"), Vec::<String>::new());
        assert!(names("alice bob").is_err());
        assert!(names("-alice").is_err());
        assert!(names("<script>").is_err());
        assert!(names(&"a".repeat(40)).is_err());
        let many: String = (0..101).map(|i| format!("u{i}\n")).collect();
        assert!(names(&many).is_err());
    }
}
