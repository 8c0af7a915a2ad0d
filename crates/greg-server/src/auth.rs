//! Who is looking, and what they may see (SPEC §9): the session cookie, the GitHub OAuth web
//! flow, CSRF tokens, and the read check for private repositories.
//!
//! Design note. The session is one cookie, `greg_session`, sealed with the `cookie` crate's
//! private jar (AES-256-GCM under a key derived from `server.session_secret`): it holds the
//! login, the session's CSRF token and an expiry (12 h of the engine's clock), and cannot be
//! read or forged without the secret. A cookie that does not open, or has expired, is simply
//! no session. greg keeps no user token: the OAuth token only serves to read `GET /user`
//! once; whether the user may read or administer a repository is asked with greg's own
//! credentials through the collaborator-permission API, and cached for [`CACHE_TTL`] so that
//! a page view is not an API call each time. A provider error denies (fails closed), logged.
//!
//! Access rules ([`access`]): no OAuth configured, or `server.public_pages: true`, or a
//! public GitHub repository → allowed; a private one → a signed-in viewer with read
//! permission; anonymous → sign in; anyone else → denied, answered as an unknown repository
//! (404) so private names do not leak. Bitbucket repositories have no sign-in of their own
//! (SPEC §9 names GitHub's only) and greg cannot check their visibility for a GitHub user, so
//! with sign-in configured their pages are shown only when `public_pages` is true.

mod routes;
mod session;

use crate::routes::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use greg_config::Config;
use greg_core::{Login, Permission, RepoName};
use greg_github::{GithubConfig, GithubProvider, OauthClient};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub(crate) use routes::{configure, csrf_refusal, form_refusal, message};
pub(crate) use session::{csrf_matches, read_form};

/// How long a repository's visibility, a user's permission or a repository's admins are
/// kept before GitHub is asked again.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(60);

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

/// Sign-in's parts, built once per server from the configuration.
pub(crate) struct AuthState {
    /// The OAuth flow and the cookie key; `None` without `providers.github.oauth`.
    sign_in: Option<SignIn>,
    /// `server.public_pages`.
    public_pages: bool,
    /// greg's own GitHub client for visibility, permissions and admins (`None` without
    /// `providers.github`, or when it could not be built: then private checks deny).
    github: Option<Arc<GithubProvider>>,
    /// Repository (lower-cased `owner/name`) → (when read, private?).
    private: Mutex<HashMap<String, (Instant, bool)>>,
    /// (repository, lower-cased login) → (when read, permission).
    permissions: Mutex<HashMap<(String, String), (Instant, Permission)>>,
    /// Repository → (when read, admins).
    admins: Mutex<HashMap<String, (Instant, Vec<Login>)>>,
}

/// The configured sign-in.
pub(crate) struct SignIn {
    /// The OAuth app's web flow; `Err`: it could not be built (logged; sign-in answers 503).
    oauth: Result<OauthClient, String>,
    /// The key sealing the session and state cookies.
    key: cookie::Key,
    /// `server.public_url`, for the callback URL and the `Secure` flag.
    public_url: Option<String>,
}

impl AuthState {
    /// Builds sign-in from `config` (no network access). Problems are logged, never fatal:
    /// a sign-in that cannot work fails closed.
    pub(crate) fn new(config: &Config) -> Self {
        let github_cfg = config.providers.github.as_ref();
        let sign_in = match (
            github_cfg.and_then(|g| g.oauth.as_ref()),
            &config.server.session_secret,
        ) {
            (Some(oauth), Some(secret))
                if secret.expose().len() >= greg_config::MIN_SESSION_SECRET_BYTES =>
            {
                let g = github_cfg.map(|g| (g.web_url.as_str(), g.api_url.as_str()));
                let (web, api) = g.unwrap_or((
                    greg_config::DEFAULT_GITHUB_WEB_URL,
                    greg_config::DEFAULT_GITHUB_API_URL,
                ));
                let client =
                    OauthClient::new(web, api, &oauth.client_id, oauth.client_secret.clone())
                        .map_err(|e| {
                            tracing::error!(error = %e, "Sign-in is configured but cannot work");
                            e.to_string()
                        });
                Some(SignIn {
                    oauth: client,
                    key: cookie::Key::derive_from(secret.expose().as_bytes()),
                    public_url: config.server.public_url.clone(),
                })
            }
            (Some(_), _) => {
                // Config validation requires the secret; a hand-built Config may lack it.
                tracing::error!(
                    "providers.github.oauth without a usable server.session_secret: sign-in is off and private repositories are hidden"
                );
                None
            }
            (None, _) => None,
        };
        let github = github_cfg.and_then(|g| {
            GithubProvider::new(GithubConfig {
                name: "github".to_owned(),
                api_url: g.api_url.clone(),
                username: g.username.clone(),
                password: g.password.clone(),
                app: g.app.as_ref().map(|a| greg_github::GithubAppConfig {
                    id: a.id,
                    private_key: a.private_key.clone(),
                    installation_id: a.installation_id,
                }),
                webhook_secret: None,
            })
            .map_err(|e| tracing::error!(error = %e, "The web pages' GitHub client cannot be built; private repositories are hidden"))
            .ok()
            .map(Arc::new)
        });
        let oauth_configured = github_cfg.is_some_and(|g| g.oauth.is_some());
        Self {
            // A configured OAuth without its secret still restricts (fails closed).
            sign_in,
            public_pages: config.server.public_pages || !oauth_configured,
            github,
            private: Mutex::new(HashMap::new()),
            permissions: Mutex::new(HashMap::new()),
            admins: Mutex::new(HashMap::new()),
        }
    }
}

/// Whether sign-in is configured (`providers.github.oauth`).
pub(crate) fn sign_in_configured(state: &AppState) -> bool {
    state.auth().sign_in.is_some()
}

/// The signed-in viewer of `req`, if any (a tampered or expired cookie: none).
pub(crate) fn viewer(req: &HttpRequest, state: &AppState) -> Option<Viewer> {
    let sign_in = state.auth().sign_in.as_ref()?;
    session::read_session(req, &sign_in.key, state.engine().now_ms())
}

/// May `req` read `repo` (of provider `provider`)? See [`Access`].
pub(crate) async fn access(
    req: &HttpRequest,
    state: &AppState,
    provider: &str,
    repo: &RepoName,
) -> Access {
    let viewer = viewer(req, state);
    access_for(state, viewer, provider, repo).await
}

/// [`access`] for an already known viewer (the cross-repository lists check many).
pub(crate) async fn access_for(
    state: &AppState,
    viewer: Option<Viewer>,
    provider: &str,
    repo: &RepoName,
) -> Access {
    let auth = state.auth();
    if auth.public_pages {
        return Access::Allowed(viewer);
    }
    if provider != "github" {
        return closed(viewer);
    }
    match auth.is_private(repo).await {
        Some(false) => Access::Allowed(viewer),
        // Private, or unknown (an error, logged): only readers.
        _ => match viewer {
            None => Access::SignIn,
            Some(v) => match auth.permission(repo, &v.login).await {
                Some(p) if p >= Permission::Read => Access::Allowed(Some(v)),
                _ => Access::Denied,
            },
        },
    }
}

/// Not shown: anonymous viewers are asked to sign in, others are denied.
fn closed(viewer: Option<Viewer>) -> Access {
    match viewer {
        None => Access::SignIn,
        Some(_) => Access::Denied,
    }
}

/// Whether `viewer` has admin permission on `repo` (the collaborator-permission API, cached);
/// an error: no.
pub(crate) async fn is_admin(state: &AppState, viewer: &Viewer, repo: &RepoName) -> bool {
    state
        .auth()
        .permission(repo, &viewer.login)
        .await
        .is_some_and(|p| p >= Permission::Admin)
}

/// The admins of `repo` (`GET .../collaborators?permission=admin`, cached); `None` when
/// GitHub could not be asked (logged).
pub(crate) async fn admins(state: &AppState, repo: &RepoName) -> Option<Vec<Login>> {
    state.auth().admins(repo).await
}

/// The answer to a page request that needs a signed-in viewer: 302 to `/login?next=<this
/// path>`.
pub(crate) fn sign_in_redirect(req: &HttpRequest) -> HttpResponse {
    let next = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", &next)
        .finish();
    HttpResponse::Found()
        .insert_header(("location", format!("/login?{query}")))
        .insert_header(("cache-control", "no-store"))
        .finish()
}

/// The JSON answer of `/api` for a refused [`Access`]: 401 `{"error": …}` for
/// [`Access::SignIn`], 404 with `not_found` for [`Access::Denied`]; `None` when allowed.
pub(crate) fn json_refusal(access: &Access, not_found: &str) -> Option<HttpResponse> {
    let (status, message) = match access {
        Access::Allowed(_) => return None,
        Access::SignIn => (
            StatusCode::UNAUTHORIZED,
            "sign in at /login to see this repository",
        ),
        Access::Denied => (StatusCode::NOT_FOUND, not_found),
    };
    Some(HttpResponse::build(status).json(serde_json::json!({ "error": message })))
}

/// The provider of the first `repos[]` entry that matches `repo` (the cross-repository
/// lists name repositories without their provider).
pub(crate) fn provider_of<'a>(config: &'a Config, repo: &RepoName) -> Option<&'a str> {
    config
        .repos
        .iter()
        .find(|r| r.matches(&r.provider, repo))
        .map(|r| r.provider.as_str())
}

/// Keeps the items of a cross-repository list whose repository (`repo_of`, `owner/name`)
/// `req` may read; each repository is checked once.
pub(crate) async fn readable<T>(
    req: &HttpRequest,
    state: &AppState,
    items: Vec<T>,
    repo_of: impl Fn(&T) -> &str,
) -> Vec<T> {
    if state.auth().public_pages {
        return items;
    }
    let viewer = viewer(req, state);
    let mut verdicts: HashMap<String, bool> = HashMap::new();
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        let name = repo_of(&item).to_ascii_lowercase();
        let ok = match verdicts.get(&name) {
            Some(ok) => *ok,
            None => {
                let ok = match RepoName::parse(&name) {
                    Some(repo) => match provider_of(state.engine().config(), &repo) {
                        Some(p) => matches!(
                            access_for(state, viewer.clone(), p, &repo).await,
                            Access::Allowed(_)
                        ),
                        None => false,
                    },
                    None => false,
                };
                verdicts.insert(name, ok);
                ok
            }
        };
        if ok {
            kept.push(item);
        }
    }
    kept
}

impl AuthState {
    /// Whether `repo` is private (cached); `None` when GitHub could not say (logged).
    async fn is_private(&self, repo: &RepoName) -> Option<bool> {
        let key = repo.to_string().to_ascii_lowercase();
        if let Some(p) = fresh(&self.private, &key) {
            return Some(p);
        }
        let github = self.github.as_ref()?;
        match github.repository_private(repo).await {
            Ok(p) => {
                store(&self.private, key, p);
                Some(p)
            }
            Err(e) => {
                tracing::warn!(%repo, error = %e, "Could not read whether a repository is private; showing it to its readers only");
                None
            }
        }
    }

    /// `login`'s permission on `repo` (cached); `None` when GitHub could not say (logged).
    async fn permission(&self, repo: &RepoName, login: &Login) -> Option<Permission> {
        let key = (
            repo.to_string().to_ascii_lowercase(),
            login.as_str().to_ascii_lowercase(),
        );
        if let Some(p) = fresh(&self.permissions, &key) {
            return Some(p);
        }
        let github = self.github.as_ref()?;
        match greg_core::Provider::permission(github.as_ref(), repo, login).await {
            Ok(p) => {
                store(&self.permissions, key, p);
                Some(p)
            }
            Err(e) => {
                tracing::warn!(%repo, user = %login, error = %e, "Could not read a user's permission; denying");
                None
            }
        }
    }

    async fn admins(&self, repo: &RepoName) -> Option<Vec<Login>> {
        let key = repo.to_string().to_ascii_lowercase();
        if let Some(a) = fresh(&self.admins, &key) {
            return Some(a);
        }
        let github = self.github.as_ref()?;
        match github.admins(repo).await {
            Ok(a) => {
                store(&self.admins, key, a.clone());
                Some(a)
            }
            Err(e) => {
                tracing::warn!(%repo, error = %e, "Could not list a repository's admins");
                None
            }
        }
    }
}

fn fresh<K: std::hash::Hash + Eq, V: Clone>(
    cache: &Mutex<HashMap<K, (Instant, V)>>,
    key: &K,
) -> Option<V> {
    let cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    cache
        .get(key)
        .filter(|(at, _)| at.elapsed() < CACHE_TTL)
        .map(|(_, v)| v.clone())
}

fn store<K: std::hash::Hash + Eq, V>(cache: &Mutex<HashMap<K, (Instant, V)>>, key: K, value: V) {
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    // Bounded: stale entries go when the map grows large.
    if cache.len() > 10_000 {
        cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
    }
    cache.insert(key, (Instant::now(), value));
}

/// The sign-in parts for the routes of [`routes`].
fn sign_in_of(state: &web::Data<AppState>) -> Option<&SignIn> {
    state.auth().sign_in.as_ref()
}
