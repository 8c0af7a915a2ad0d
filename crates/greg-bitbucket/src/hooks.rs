//! Repository webhooks for `greg fix-hooks` (SPEC §7): list, create, update and delete, on
//! both flavors, and the rule that says whether a hook is greg's as configured.
//!
//! Shapes:
//! - Cloud: `webhook_subscription` objects under `/2.0/repositories/{workspace}/{repo_slug}/hooks`
//!   (<https://developer.atlassian.com/cloud/bitbucket/rest/api-group-repositories/#api-repositories-workspace-repo-slug-hooks-get>):
//!   `uuid` (the id, braces included), `url`, `description`, `active`, `events`, and
//!   `secret_set`; the `secret` itself is write-only. Lists page by `next`.
//! - Server/Data Center: `/rest/api/1.0/projects/{key}/repos/{slug}/webhooks`
//!   (<https://developer.atlassian.com/server/bitbucket/rest/> "Repository" › webhooks;
//!   <https://confluence.atlassian.com/bitbucketserver/manage-webhooks-938025878.html>): `id`
//!   (a number), `name`, `url`, `active`, `events`, and `configuration.secret`. Lists page by
//!   `start`/`isLastPage`.
//!
//! # The secret
//!
//! greg cannot read a secret back (Cloud never returns it; Server's answer is not documented to
//! carry it). As for GitHub (greg-github's `hooks` module), a hook whose secret presence
//! matches the configuration is taken as correct, and `rotate_secret` rewrites every set
//! secret.

use crate::client::{BitbucketProvider, decode, protocol};
use crate::config::Flavor;
use crate::routes::{self, MAX_PAGES, SERVER_LIMIT, cloud_next};
use greg_core::{RepoName, Result, Secret};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::fmt;

/// The Cloud events greg's webhook subscribes to: pushes, pull-request lifecycle, reviews and
/// comments (the events `greg_bitbucket::webhook::parse` reads).
pub const CLOUD_EVENTS: [&str; 9] = [
    "repo:push",
    "pullrequest:created",
    "pullrequest:updated",
    "pullrequest:fulfilled",
    "pullrequest:rejected",
    "pullrequest:approved",
    "pullrequest:unapproved",
    "pullrequest:changes_request_created",
    "pullrequest:comment_created",
];

/// The Server/Data Center events greg's webhook subscribes to.
pub const SERVER_EVENTS: [&str; 11] = [
    "repo:refs_changed",
    "pr:opened",
    "pr:from_ref_updated",
    "pr:modified",
    "pr:merged",
    "pr:declined",
    "pr:deleted",
    "pr:reviewer:approved",
    "pr:reviewer:unapproved",
    "pr:reviewer:needs_work",
    "pr:comment:added",
];

/// The name (Server) or description (Cloud) greg gives its webhook.
pub const HOOK_NAME: &str = "greg";

/// The events greg subscribes to on `flavor`.
pub fn greg_events(flavor: Flavor) -> &'static [&'static str] {
    match flavor {
        Flavor::Cloud => &CLOUD_EVENTS,
        Flavor::Server => &SERVER_EVENTS,
    }
}

/// The webhook greg wants on a repository. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// The delivery URL, `<public_url>/repo?provider=bitbucket&token=…` (it carries a token:
    /// mask it before printing).
    pub url: String,
    /// The HMAC secret Bitbucket signs deliveries with (`providers.bitbucket.webhook_secret`).
    pub secret: Option<Secret>,
    /// Subscribed events, in the flavor's names.
    pub events: Vec<String>,
}

impl HookSpec {
    /// greg's webhook for `url` on `flavor`: [`greg_events`], signed with `secret` when given.
    pub fn greg(flavor: Flavor, url: impl Into<String>, secret: Option<Secret>) -> Self {
        Self {
            url: url.into(),
            secret: secret.filter(|s| !s.is_empty()),
            events: greg_events(flavor)
                .iter()
                .map(|e| (*e).to_owned())
                .collect(),
        }
    }

    /// How `hook` differs from this spec, one word each (`url`, `events`, `active`, `secret`);
    /// empty when it needs no update. Events compare as sets; see the module documentation
    /// for the secret.
    pub fn differences(&self, hook: &Hook, rotate_secret: bool) -> Vec<String> {
        let mut out = Vec::new();
        if hook.url != self.url {
            out.push("url".to_owned());
        }
        let mut want: Vec<&str> = self.events.iter().map(String::as_str).collect();
        let mut have: Vec<&str> = hook.events.iter().map(String::as_str).collect();
        want.sort_unstable();
        want.dedup();
        have.sort_unstable();
        have.dedup();
        if want != have {
            out.push("events".to_owned());
        }
        if !hook.active {
            out.push("active".to_owned());
        }
        let secret_wrong = match &self.secret {
            Some(_) => !hook.secret_set || rotate_secret,
            None => hook.secret_set,
        };
        if secret_wrong {
            out.push("secret".to_owned());
        }
        out
    }

    /// The request body on `flavor`. Without a secret, an update sends `secret: null` (Cloud)
    /// or an empty `configuration` (Server) so a secret set earlier is removed.
    fn body(&self, flavor: Flavor) -> Value {
        let secret = self
            .secret
            .as_ref()
            .map_or(Value::Null, |s| Value::from(s.expose()));
        match flavor {
            Flavor::Cloud => json!({
                "description": HOOK_NAME,
                "url": self.url,
                "active": true,
                "events": self.events,
                "secret": secret,
            }),
            Flavor::Server => {
                let mut configuration = Map::new();
                if !secret.is_null() {
                    configuration.insert("secret".to_owned(), secret);
                }
                json!({
                    "name": HOOK_NAME,
                    "url": self.url,
                    "active": true,
                    "events": self.events,
                    "configuration": configuration,
                })
            }
        }
    }
}

impl fmt::Debug for HookSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookSpec")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// A repository webhook as Bitbucket shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The id in paths: Cloud's `uuid` with its braces (`{2d0b…}`), Server's numeric `id`.
    pub id: String,
    /// Cloud `description`, Server `name`.
    pub name: String,
    /// The delivery URL (it may carry a token: mask it before printing).
    pub url: String,
    /// Subscribed events.
    pub events: Vec<String>,
    /// `active`.
    pub active: bool,
    /// Whether a secret is set: Cloud `secret_set`, Server a non-empty
    /// `configuration.secret`.
    pub secret_set: bool,
}

/// Cloud `webhook_subscription`.
#[derive(Debug, Deserialize)]
struct CloudHook {
    uuid: String,
    url: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    secret_set: bool,
}

/// Server webhook.
#[derive(Debug, Deserialize)]
struct ServerHook {
    id: u64,
    #[serde(default)]
    name: Option<String>,
    url: String,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    configuration: Map<String, Value>,
}

fn yes() -> bool {
    true
}

impl From<CloudHook> for Hook {
    fn from(h: CloudHook) -> Self {
        Hook {
            id: h.uuid,
            name: h.description.unwrap_or_default(),
            url: h.url,
            events: h.events,
            active: h.active,
            secret_set: h.secret_set,
        }
    }
}

impl From<ServerHook> for Hook {
    fn from(h: ServerHook) -> Self {
        let secret_set = h
            .configuration
            .get("secret")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        Hook {
            id: h.id.to_string(),
            name: h.name.unwrap_or_default(),
            url: h.url,
            events: h.events,
            active: h.active,
            secret_set,
        }
    }
}

impl BitbucketProvider {
    /// The webhooks of `repo`, all pages. Cloud needs the `webhook` scope; Server needs
    /// repository administration.
    ///
    /// # Errors
    /// As [`crate::error::from_status`] (403 without the rights, 404 for an unknown
    /// repository); [`greg_core::Error::Protocol`] after more than 100 pages.
    pub async fn list_hooks(&self, repo: &RepoName) -> Result<Vec<Hook>> {
        let what = format!("webhooks of {repo}");
        let mut hooks = Vec::new();
        match self.flavor() {
            Flavor::Cloud => {
                let mut url = routes::cloud::hooks(repo).url(&self.base)?;
                for _ in 0..MAX_PAGES {
                    let page: crate::client::CloudPage<CloudHook> =
                        self.get_json(&what, url).await?;
                    hooks.extend(page.values.into_iter().map(Hook::from));
                    match page.next {
                        None => return Ok(hooks),
                        Some(next) => {
                            url = cloud_next(&self.base, &next).map_err(|e| protocol(&what, &e))?
                        }
                    }
                }
            }
            Flavor::Server => {
                let mut start = 0;
                for _ in 0..MAX_PAGES {
                    let route = routes::server::webhooks(repo)
                        .and("start", start.to_string())
                        .and("limit", SERVER_LIMIT.to_string());
                    let page: crate::client::ServerPage<ServerHook> =
                        self.get_route(&what, &route).await?;
                    let next = page.next(start);
                    hooks.extend(page.values.into_iter().map(Hook::from));
                    match next {
                        Some(n) => start = n,
                        None => return Ok(hooks),
                    }
                }
            }
        }
        Err(protocol(&what, &format!("more than {MAX_PAGES} pages")))
    }

    /// Creates greg's webhook; returns it as Bitbucket shows it.
    ///
    /// # Errors
    /// As [`crate::error::from_status`].
    pub async fn create_hook(&self, repo: &RepoName, spec: &HookSpec) -> Result<Hook> {
        let what = format!("webhook of {repo}");
        let route = match self.flavor() {
            Flavor::Cloud => routes::cloud::hooks(repo),
            Flavor::Server => routes::server::webhooks(repo),
        };
        let reply = self
            .call(&what, Method::POST, &route, Some(&spec.body(self.flavor())))
            .await?;
        self.decode_hook(&what, &reply.body)
    }

    /// Rewrites webhook `id` to `spec` (`PUT`: Bitbucket replaces the whole hook).
    ///
    /// # Errors
    /// [`greg_core::Error::NotFound`] when the hook is gone; others per
    /// [`crate::error::from_status`].
    pub async fn update_hook(&self, repo: &RepoName, id: &str, spec: &HookSpec) -> Result<Hook> {
        let what = format!("webhook {id} of {repo}");
        let reply = self
            .call(
                &what,
                Method::PUT,
                &self.hook_route(repo, id),
                Some(&spec.body(self.flavor())),
            )
            .await?;
        self.decode_hook(&what, &reply.body)
    }

    /// Deletes webhook `id` (204).
    ///
    /// # Errors
    /// [`greg_core::Error::NotFound`] when the hook is already gone; others per
    /// [`crate::error::from_status`].
    pub async fn delete_hook(&self, repo: &RepoName, id: &str) -> Result<()> {
        let what = format!("webhook {id} of {repo}");
        self.call(
            &what,
            Method::DELETE,
            &self.hook_route(repo, id),
            None::<&()>,
        )
        .await?;
        Ok(())
    }

    fn hook_route(&self, repo: &RepoName, id: &str) -> routes::Route {
        match self.flavor() {
            Flavor::Cloud => routes::cloud::hook(repo, id),
            Flavor::Server => routes::server::webhook(repo, id),
        }
    }

    fn decode_hook(&self, what: &str, body: &[u8]) -> Result<Hook> {
        Ok(match self.flavor() {
            Flavor::Cloud => decode::<CloudHook>(what, body)?.into(),
            Flavor::Server => decode::<ServerHook>(what, body)?.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(flavor: Flavor) -> Hook {
        Hook {
            id: "1".to_owned(),
            name: HOOK_NAME.to_owned(),
            url: "https://greg.example.com/repo?provider=bitbucket&token=t".to_owned(),
            events: greg_events(flavor)
                .iter()
                .rev()
                .map(|e| (*e).to_owned())
                .collect(),
            active: true,
            secret_set: true,
        }
    }

    #[test]
    fn a_matching_hook_needs_nothing_unless_the_secret_rotates() {
        for flavor in [Flavor::Cloud, Flavor::Server] {
            let spec = HookSpec::greg(
                flavor,
                "https://greg.example.com/repo?provider=bitbucket&token=t",
                Some(Secret::new("s")),
            );
            assert!(spec.differences(&hook(flavor), false).is_empty());
            assert_eq!(spec.differences(&hook(flavor), true), ["secret"]);
            let mut other = hook(flavor);
            other.url = "https://greg.example.com/repo?provider=bitbucket&token=old".to_owned();
            other.events.pop();
            other.active = false;
            other.secret_set = false;
            assert_eq!(
                spec.differences(&other, false),
                ["url", "events", "active", "secret"]
            );
        }
    }

    #[test]
    fn bodies_follow_each_flavor_and_debug_hides_the_secret() {
        let spec = HookSpec::greg(Flavor::Cloud, "https://g/repo", Some(Secret::new("s3")));
        assert_eq!(
            spec.body(Flavor::Cloud),
            json!({"description": "greg", "url": "https://g/repo", "active": true,
                   "events": CLOUD_EVENTS, "secret": "s3"})
        );
        let spec = HookSpec::greg(Flavor::Server, "https://g/repo", None);
        assert_eq!(
            spec.body(Flavor::Server),
            json!({"name": "greg", "url": "https://g/repo", "active": true,
                   "events": SERVER_EVENTS, "configuration": {}})
        );
        let shown = format!(
            "{:?}",
            HookSpec::greg(Flavor::Cloud, "u", Some(Secret::new("s3")))
        );
        assert!(!shown.contains("s3"), "{shown}");
    }

    #[test]
    fn hooks_read_from_both_shapes() {
        let cloud: CloudHook = serde_json::from_value(json!({
            "type": "webhook_subscription", "uuid": "{afe61e14-2c5f-49e8-8b68-ad1fb55fc052}",
            "url": "https://g/repo", "description": "greg", "subject_type": "repository",
            "active": true, "created_at": "2024-01-01T00:00:00.000000+00:00",
            "events": ["repo:push"], "secret_set": true
        }))
        .expect("cloud hook");
        let cloud = Hook::from(cloud);
        assert_eq!(
            (cloud.id.as_str(), cloud.secret_set),
            ("{afe61e14-2c5f-49e8-8b68-ad1fb55fc052}", true)
        );
        let server: ServerHook = serde_json::from_value(json!({
            "id": 10, "name": "greg", "createdDate": 1513106011000u64,
            "updatedDate": 1513106011000u64, "events": ["repo:refs_changed"],
            "configuration": {"secret": "password"}, "url": "http://example.com", "active": true
        }))
        .expect("server hook");
        let server = Hook::from(server);
        assert_eq!((server.id.as_str(), server.secret_set), ("10", true));
    }
}
