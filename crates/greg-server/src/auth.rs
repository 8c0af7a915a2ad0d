//! Who is looking, and what they may see (SPEC §9): the signed session cookie, the GitHub
//! OAuth web flow, CSRF tokens, and the read check for private repositories.
//!
//! STUB: until sign-in is built every request is anonymous and every configured repository
//! is readable (the behaviour without `providers.github.oauth`).

use crate::routes::AppState;
use actix_web::HttpRequest;
use greg_core::{Login, RepoName};

/// A signed-in person.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// Their login on the provider.
    pub(crate) login: Login,
    /// The session's CSRF token, to put in every form (`csrf_token`).
    pub(crate) csrf_token: String,
}

/// The answer to "may this request see `repo`'s pages and `/api`?".
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// Yes; the viewer if signed in.
    Allowed(Option<Viewer>),
    /// Not anonymously: a page redirects to `/login`, `/api` answers 401.
    SignIn,
    /// Not this viewer: answered like an unknown repository (404), so private names do not
    /// leak.
    Denied,
}

/// Whether sign-in is configured (`providers.github.oauth`).
pub(crate) fn sign_in_configured(_state: &AppState) -> bool {
    false
}

/// The signed-in viewer of `req`, if any (a tampered or expired cookie: none).
pub(crate) fn viewer(_req: &HttpRequest, _state: &AppState) -> Option<Viewer> {
    None
}

/// May `req` read `repo` (of provider `provider`)? See [`Access`].
pub(crate) async fn access(
    req: &HttpRequest,
    state: &AppState,
    _provider: &str,
    _repo: &RepoName,
) -> Access {
    Access::Allowed(viewer(req, state))
}
