//! Repository webhooks and organization listings for `greg fix-hooks` and `greg check-config`
//! (SPEC §7): list an owner's repositories, list / create / update / delete a repository's
//! webhooks, and the probes `current_user` and `repository_visible`.
//!
//! Shapes: GitHub's REST reference, <https://docs.github.com/en/rest/repos/webhooks> and
//! <https://docs.github.com/en/rest/repos/repos#list-organization-repositories>; the
//! `repos/create-webhook` and `repos/list-webhooks` operations of
//! tests/data/github/openapi-subset.json.
//!
//! # The webhook secret
//!
//! GitHub never returns a webhook's secret: `GET .../hooks` shows `config.secret` as
//! `"********"` when one is set and leaves it out otherwise ([`MASKED_SECRET`]). greg therefore
//! cannot tell whether a set secret equals the configured one. The rule
//! ([`HookSpec::differences`]): a hook whose secret presence matches the configuration (set
//! when `webhook_secret` is configured, absent when not) is taken as correct, so runs stay
//! idempotent; passing `rotate_secret` treats every set secret as different, which rewrites
//! it (`greg fix-hooks --rotate-secret`, after changing `webhook_secret`).

use crate::client::{GithubProvider, decode, protocol};
use crate::routes::{self, MAX_PAGES};
use crate::wire::{self, User};
use greg_core::{Error, Login, RepoName, Result, Secret};
use http::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt;

/// The events greg's webhook subscribes to (SPEC §2: pushes, pull requests, reviews and
/// comment commands).
pub const GREG_EVENTS: [&str; 4] = [
    "push",
    "pull_request",
    "pull_request_review",
    "issue_comment",
];

/// How GitHub shows a set webhook secret on read.
pub const MASKED_SECRET: &str = "********";

/// The webhook greg wants on a repository: `config {url, content_type: "json", secret,
/// insecure_ssl: "0"}`, `events` [`GREG_EVENTS`], `active: true`.
///
/// `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// The delivery URL, `<public_url>/repo?provider=github&token=…` (contains a token: mask
    /// it before printing).
    pub url: String,
    /// The HMAC secret GitHub signs deliveries with (`providers.github.webhook_secret`).
    pub secret: Option<Secret>,
    /// Subscribed events, in GitHub's names.
    pub events: Vec<String>,
}

impl HookSpec {
    /// greg's webhook for `url`, signed with `secret` when given.
    pub fn greg(url: impl Into<String>, secret: Option<Secret>) -> Self {
        Self {
            url: url.into(),
            secret: secret.filter(|s| !s.is_empty()),
            events: GREG_EVENTS.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    /// How `hook` differs from this spec, one phrase each (`url`, `events`, `content type`,
    /// `insecure_ssl`, `active`, `secret`); empty when it needs no update. Events compare as
    /// sets. See the module documentation for the secret rule.
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
        if hook.content_type.as_deref() != Some("json") {
            out.push("content type".to_owned());
        }
        if hook.insecure_ssl.as_deref().unwrap_or("0") != "0" {
            out.push("insecure_ssl".to_owned());
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

    /// The hook as greg would write it, as GitHub would then show it (secret as
    /// [`MASKED_SECRET`]), for diffs. The URL is unmasked: mask its token before printing.
    pub fn display_json(&self) -> Value {
        display(
            &self.url,
            Some("json"),
            Some("0"),
            self.secret.is_some(),
            &self.events,
            true,
        )
    }

    fn body(&self, create: bool) -> Value {
        let mut config = json!({
            "url": self.url,
            "content_type": "json",
            "insecure_ssl": "0",
        });
        if let (Some(secret), Some(map)) = (&self.secret, config.as_object_mut()) {
            map.insert("secret".to_owned(), Value::from(secret.expose()));
        }
        let mut body = json!({ "config": config, "events": self.events, "active": true });
        if let (true, Some(map)) = (create, body.as_object_mut()) {
            map.insert("name".to_owned(), Value::from("web"));
        }
        body
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

/// A repository webhook as GitHub shows it (`GET /repos/{owner}/{repo}/hooks` items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The hook id (`hook_id` in paths).
    pub id: u64,
    /// `config.url`; empty when GitHub has none (non-`web` hooks).
    pub url: String,
    /// `config.content_type` (`json` or `form`).
    pub content_type: Option<String>,
    /// `config.insecure_ssl` (`"0"` verifies TLS; GitHub also sends it as a number).
    pub insecure_ssl: Option<String>,
    /// Whether `config.secret` is present (GitHub shows it as [`MASKED_SECRET`]).
    pub secret_set: bool,
    /// Subscribed events.
    pub events: Vec<String>,
    /// `active`.
    pub active: bool,
}

impl Hook {
    /// The hook as GitHub shows it, for diffs (secret as [`MASKED_SECRET`]). The URL may
    /// carry a token: mask it before printing.
    pub fn display_json(&self) -> Value {
        display(
            &self.url,
            self.content_type.as_deref(),
            self.insecure_ssl.as_deref(),
            self.secret_set,
            &self.events,
            self.active,
        )
    }
}

fn display(
    url: &str,
    content_type: Option<&str>,
    insecure_ssl: Option<&str>,
    secret: bool,
    events: &[String],
    active: bool,
) -> Value {
    let mut config = serde_json::Map::new();
    config.insert("url".to_owned(), Value::from(url));
    if let Some(c) = content_type {
        config.insert("content_type".to_owned(), Value::from(c));
    }
    if let Some(i) = insecure_ssl {
        config.insert("insecure_ssl".to_owned(), Value::from(i));
    }
    if secret {
        config.insert("secret".to_owned(), Value::from(MASKED_SECRET));
    }
    json!({ "active": active, "config": config, "events": events })
}

/// True when `a` and `b` are absolute URLs with the same scheme, host and port (explicit or
/// the scheme's default): Greg's rule for "this webhook is greg's". Unparsable URLs never
/// match.
pub fn same_origin(a: &str, b: &str) -> bool {
    fn origin(raw: &str) -> Option<(String, String, u16)> {
        let uri: http::Uri = raw.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.to_ascii_lowercase();
        let port = uri.port_u16().or(match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        })?;
        Some((scheme, host, port))
    }
    matches!((origin(a), origin(b)), (Some(x), Some(y)) if x == y)
}

#[derive(Debug, Deserialize)]
struct WireHook {
    id: u64,
    #[serde(default = "default_true")]
    active: bool,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    config: WireHookConfig,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
struct WireHookConfig {
    url: Option<String>,
    content_type: Option<String>,
    secret: Option<String>,
    insecure_ssl: Option<Value>,
}

impl WireHook {
    fn into_hook(self) -> Hook {
        let insecure_ssl = self.config.insecure_ssl.map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        });
        Hook {
            id: self.id,
            url: self.config.url.unwrap_or_default(),
            content_type: self.config.content_type,
            insecure_ssl,
            secret_set: self.config.secret.is_some_and(|s| !s.is_empty()),
            events: self.events,
            active: self.active,
        }
    }
}

impl GithubProvider {
    /// The authenticated user (`GET /user`): proves the token is accepted.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a refused token (401); others per
    /// [`crate::error::from_status`].
    pub async fn current_user(&self) -> Result<Login> {
        let what = "the authenticated user";
        let reply = self
            .send(what, Method::GET, routes::CURRENT_USER, None::<&()>)
            .await?;
        Ok(decode::<User>(what, &reply.body)?.into_login())
    }

    /// Whether the token can see `repo` (`GET /repos/{owner}/{repo}`: 200 → true, 404 →
    /// false).
    ///
    /// # Errors
    /// Anything but 200 and 404, mapped as usual.
    pub async fn repository_visible(&self, repo: &RepoName) -> Result<bool> {
        let what = format!("repository {repo}");
        match self
            .send(&what, Method::GET, &routes::repository(repo), None::<&()>)
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every repository of `owner`, all pages: `GET /orgs/{org}/repos`, or
    /// `GET /users/{username}/repos` when GitHub answers 404 (a user account, not an
    /// organization).
    ///
    /// # Errors
    /// [`Error::NotFound`] when neither exists; [`Error::Protocol`] for an item without a
    /// valid `full_name` or more than 100 pages.
    pub async fn list_org_repos(&self, owner: &str) -> Result<Vec<RepoName>> {
        match self.list_repos(owner, routes::org_repos).await {
            Err(Error::NotFound { .. }) => self.list_repos(owner, routes::user_repos).await,
            other => other,
        }
    }

    async fn list_repos(
        &self,
        owner: &str,
        route: fn(&str, usize) -> String,
    ) -> Result<Vec<RepoName>> {
        let what = format!("repositories of {owner}");
        let mut repos = Vec::new();
        for page in 1..=MAX_PAGES {
            let reply = self
                .send(&what, Method::GET, &route(owner, page), None::<&()>)
                .await?;
            let items: Vec<wire::Repo> = decode(&what, &reply.body)?;
            let on_page = items.len();
            repos.extend(items.into_iter().map(|r| r.full_name.0));
            if on_page == 0 || !routes::has_next_page(reply.link(), on_page) {
                return Ok(repos);
            }
        }
        Err(protocol(&what, &format!("more than {MAX_PAGES} pages")))
    }

    /// The webhooks of `repo`, all pages (`GET /repos/{owner}/{repo}/hooks`; needs admin
    /// rights on the repository).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown repository or missing admin rights (GitHub answers
    /// 404 for both); others per [`crate::error::from_status`].
    pub async fn list_hooks(&self, repo: &RepoName) -> Result<Vec<Hook>> {
        let what = format!("webhooks of {repo}");
        let mut hooks = Vec::new();
        for page in 1..=MAX_PAGES {
            let reply = self
                .send(
                    &what,
                    Method::GET,
                    &routes::hooks(repo, Some(page)),
                    None::<&()>,
                )
                .await?;
            let items: Vec<WireHook> = decode(&what, &reply.body)?;
            let on_page = items.len();
            hooks.extend(items.into_iter().map(WireHook::into_hook));
            if on_page == 0 || !routes::has_next_page(reply.link(), on_page) {
                return Ok(hooks);
            }
        }
        Err(protocol(&what, &format!("more than {MAX_PAGES} pages")))
    }

    /// Creates greg's webhook (`POST /repos/{owner}/{repo}/hooks`, body `{name: "web",
    /// config, events, active}`); returns it as GitHub shows it.
    ///
    /// # Errors
    /// 422 (a hook with this URL exists) → [`Error::PreconditionFailed`] per
    /// [`crate::error::from_status`]; 404 without admin rights.
    pub async fn create_hook(&self, repo: &RepoName, spec: &HookSpec) -> Result<Hook> {
        let what = format!("webhook of {repo}");
        let reply = self
            .send(
                &what,
                Method::POST,
                &routes::hooks(repo, None),
                Some(&spec.body(true)),
            )
            .await?;
        Ok(decode::<WireHook>(&what, &reply.body)?.into_hook())
    }

    /// Rewrites webhook `id` to `spec` (`PATCH /repos/{owner}/{repo}/hooks/{hook_id}`, body
    /// `{config, events, active}`; GitHub replaces the whole `config`, secret included).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the hook is gone; others per [`crate::error::from_status`].
    pub async fn update_hook(&self, repo: &RepoName, id: u64, spec: &HookSpec) -> Result<Hook> {
        let what = format!("webhook {id} of {repo}");
        let reply = self
            .send(
                &what,
                Method::PATCH,
                &routes::hook(repo, id),
                Some(&spec.body(false)),
            )
            .await?;
        Ok(decode::<WireHook>(&what, &reply.body)?.into_hook())
    }

    /// Deletes webhook `id` (`DELETE /repos/{owner}/{repo}/hooks/{hook_id}`, 204).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the hook is already gone; others per
    /// [`crate::error::from_status`].
    pub async fn delete_hook(&self, repo: &RepoName, id: u64) -> Result<()> {
        let what = format!("webhook {id} of {repo}");
        self.send(&what, Method::DELETE, &routes::hook(repo, id), None::<&()>)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(url: &str) -> Hook {
        Hook {
            id: 1,
            url: url.to_owned(),
            content_type: Some("json".to_owned()),
            insecure_ssl: Some("0".to_owned()),
            secret_set: true,
            events: GREG_EVENTS.iter().rev().map(|e| (*e).to_owned()).collect(),
            active: true,
        }
    }

    #[test]
    fn a_matching_hook_with_a_masked_secret_needs_nothing_unless_rotating() {
        let spec = HookSpec::greg(
            "https://greg.example.com/repo?provider=github&token=t",
            Some(Secret::new("s")),
        );
        let h = hook(&spec.url);
        assert!(spec.differences(&h, false).is_empty());
        assert_eq!(spec.differences(&h, true), ["secret"]);
        let mut unsigned = h.clone();
        unsigned.secret_set = false;
        assert_eq!(spec.differences(&unsigned, false), ["secret"]);
    }

    #[test]
    fn differences_name_each_wrong_field() {
        let spec = HookSpec::greg(
            "https://greg.example.com/repo?provider=github&token=t",
            None,
        );
        let h = Hook {
            id: 2,
            url: "https://greg.example.com/old".to_owned(),
            content_type: Some("form".to_owned()),
            insecure_ssl: Some("1".to_owned()),
            secret_set: true,
            events: vec!["push".to_owned()],
            active: false,
        };
        assert_eq!(
            spec.differences(&h, false),
            [
                "url",
                "events",
                "content type",
                "insecure_ssl",
                "active",
                "secret"
            ]
        );
    }

    #[test]
    fn origin_is_scheme_host_and_port() {
        assert!(same_origin(
            "https://greg.example.com/repo?x=1",
            "https://GREG.example.com:443/other"
        ));
        assert!(!same_origin(
            "https://greg.example.com/",
            "http://greg.example.com/"
        ));
        assert!(!same_origin(
            "https://greg.example.com/",
            "https://greg.example.com:8443/"
        ));
        assert!(!same_origin("not a url", "not a url"));
    }

    #[test]
    fn create_body_matches_githubs_shape_and_debug_hides_the_secret() {
        let spec = HookSpec::greg("https://g/repo", Some(Secret::new("hush")));
        let body = spec.body(true);
        assert_eq!(body["name"], "web");
        assert_eq!(body["config"]["secret"], "hush");
        assert_eq!(body["config"]["insecure_ssl"], "0");
        assert!(spec.body(false).get("name").is_none());
        assert!(!format!("{spec:?}").contains("hush"));
        assert_eq!(spec.display_json()["config"]["secret"], MASKED_SECRET);
    }

    fn openapi() -> Value {
        let raw = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/github/openapi-subset.json"
        ))
        .expect("openapi-subset.json");
        serde_json::from_str(&raw).expect("openapi JSON")
    }

    #[test]
    fn create_body_validates_against_the_create_webhook_schema() {
        let api = openapi();
        let schema = api["paths"]["/repos/{owner}/{repo}/hooks"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"]
            .clone();
        // The schema's `$ref`s point into `#/components`: carry them along (OpenAPI 3.0
        // schemas are draft 4 with extensions).
        let root = json!({ "allOf": [schema], "components": api["components"] });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .build(&root)
            .expect("schema compiles");
        for secret in [None, Some(Secret::new("hush"))] {
            let body = HookSpec::greg("https://g.example.com/repo?token=t", secret).body(true);
            let errors: Vec<String> = validator
                .iter_errors(&body)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{body}: {errors:?}");
        }
    }

    #[test]
    fn the_list_webhooks_example_decodes() {
        let api = openapi();
        let example = api["components"]["examples"]["hook-items"]["value"].to_string();
        let items: Vec<WireHook> = crate::wire::from_json(example.as_bytes()).expect("decodes");
        let hooks: Vec<Hook> = items.into_iter().map(WireHook::into_hook).collect();
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].id, 12_345_678);
        assert_eq!(hooks[0].url, "https://example.com/webhook");
        assert_eq!(hooks[0].content_type.as_deref(), Some("json"));
        assert_eq!(hooks[0].insecure_ssl.as_deref(), Some("0"));
        assert!(!hooks[0].secret_set);
        assert_eq!(hooks[0].events, ["push", "pull_request"]);
    }
}
