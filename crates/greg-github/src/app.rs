//! GitHub App authentication: which octocrab client sends a request.
//!
//! With a token, every request goes through one client sending `Authorization: Bearer
//! <token>`. With a GitHub App
//! (<https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation>),
//! a base client signs a short-lived RS256 JWT with the app's private key (octocrab does this
//! per request), and each installation gets its own client that exchanges that JWT for an
//! installation token (`POST /app/installations/{installation_id}/access_tokens`) and
//! mints a new one before the current one expires (octocrab's cache, refreshed 30 s early).
//!
//! When no installation id is configured, the installation of each owner is discovered on
//! its first request (`GET /repos/{owner}/{repo}/installation`, `GET
//! /orgs/{org}/installation` or `GET /users/{username}/installation`, depending on the path)
//! and cached for the life of the provider.

use crate::client::{GithubProvider, decode, protocol};
use crate::error::{GithubAnswer, Operation, from_octocrab, from_status};
use greg_core::{Error, Result, Secret};
use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// How a [`GithubProvider`] authenticates, checked by [`crate::GithubConfig`]'s validation.
pub(crate) enum Credentials {
    /// A personal access token.
    Token(Secret),
    /// A GitHub App.
    App {
        /// The app's id (GitHub's "App ID").
        id: AppId,
        /// The app's RSA private key, parsed.
        key: octocrab::EncodingKey,
        /// The installation to act as; `None`: discovered per owner.
        installation_id: Option<InstallationId>,
    },
}

impl std::fmt::Debug for Credentials {
    /// `Token(***)` or the app and installation ids; never the token or the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(***)"),
            Credentials::App {
                id,
                installation_id,
                ..
            } => f
                .debug_struct("App")
                .field("id", id)
                .field("installation_id", installation_id)
                .finish_non_exhaustive(),
        }
    }
}

/// The installation clients of an app provider.
#[derive(Default)]
pub(crate) struct Installations {
    /// The configured installation's client.
    fixed: OnceLock<Arc<Octocrab>>,
    /// Discovered installations' clients, by owner (as it appears in request paths).
    by_owner: Mutex<HashMap<String, Arc<Octocrab>>>,
}

/// The part of GitHub's installation object greg reads.
#[derive(Deserialize)]
struct WireInstallation {
    id: u64,
}

/// The owner in a request path and the route that names its installation, or `None` for a
/// path that belongs to no owner.
fn installation_route(path: &str) -> Option<(String, String)> {
    let path = path.split('?').next().unwrap_or(path);
    let mut segments = path.trim_start_matches('/').split('/');
    let kind = segments.next()?;
    let owner = segments.next().filter(|s| !s.is_empty())?;
    let route = match kind {
        "repos" => {
            let repo = segments.next().filter(|s| !s.is_empty())?;
            format!("/repos/{owner}/{repo}/installation")
        }
        "orgs" => format!("/orgs/{owner}/installation"),
        "users" => format!("/users/{owner}/installation"),
        _ => return None,
    };
    Some((owner.to_owned(), route))
}

impl GithubProvider {
    /// The client that sends a request to `path`: the token client, or the app installation
    /// client of the path's owner (discovered and cached when not configured).
    ///
    /// # Errors
    /// The HTTP client cannot be built; [`Error::NotFound`] when the app is not installed
    /// for the owner; other errors of the discovery request.
    pub(crate) async fn client_for(&self, path: &str) -> Result<Arc<Octocrab>> {
        let base = self.client()?;
        let Credentials::App {
            installation_id, ..
        } = &self.credentials
        else {
            return Ok(base);
        };
        if let Some(id) = installation_id {
            return self.fixed_installation(&base, *id);
        }
        let Some((owner, route)) = installation_route(path) else {
            return Err(protocol(
                path,
                "no repository, organization or user to find the GitHub App installation of",
            ));
        };
        let cached = self
            .installations
            .by_owner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&owner)
            .cloned();
        if let Some(client) = cached {
            return Ok(client);
        }
        let what = format!("GitHub App installation for {owner}");
        let response = base
            ._get(route.as_str())
            .await
            .map_err(|e| from_octocrab(&what, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = base
            .body_to_string(response)
            .await
            .map_err(|e| from_octocrab(&what, e))?;
        if !status.is_success() {
            return Err(from_status(
                Operation::Other,
                &what,
                status,
                &headers,
                &GithubAnswer::parse(status, &text),
            ));
        }
        let found: WireInstallation = decode(&what, &text)?;
        let client = installation_client(&base, InstallationId(found.id))?;
        tracing::info!(
            provider = greg_core::Provider::name(self),
            owner,
            installation = found.id,
            "GitHub App installation found"
        );
        let mut by_owner = self
            .installations
            .by_owner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(by_owner.entry(owner).or_insert(client).clone())
    }

    fn fixed_installation(&self, base: &Octocrab, id: InstallationId) -> Result<Arc<Octocrab>> {
        if let Some(client) = self.installations.fixed.get() {
            return Ok(client.clone());
        }
        let client = installation_client(base, id)?;
        Ok(self.installations.fixed.get_or_init(|| client).clone())
    }
}

/// The client acting as installation `id` of the app `base` authenticates as.
fn installation_client(base: &Octocrab, id: InstallationId) -> Result<Arc<Octocrab>> {
    base.installation(id)
        .map(Arc::new)
        .map_err(|e| Error::InvalidConfig {
            key: "app".to_owned(),
            message: format!("cannot act as GitHub App installation {id}: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::installation_route;

    #[test]
    fn installation_routes_follow_the_owner_of_the_path() {
        let route = |p: &str| installation_route(p).map(|(o, r)| format!("{o} {r}"));
        assert_eq!(
            route("/repos/acme/demo/pulls/1").as_deref(),
            Some("acme /repos/acme/demo/installation")
        );
        assert_eq!(
            route("/orgs/acme/repos?per_page=100&page=1").as_deref(),
            Some("acme /orgs/acme/installation")
        );
        assert_eq!(
            route("/users/octo/repos?per_page=100").as_deref(),
            Some("octo /users/octo/installation")
        );
        assert_eq!(route("/repos/acme"), None);
        assert_eq!(route("/user"), None);
        assert_eq!(route("/meta"), None);
    }
}
