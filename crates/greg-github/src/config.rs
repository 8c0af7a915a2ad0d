//! [`GithubConfig`]: what greg needs to talk to one GitHub (github.com or Enterprise Server),
//! as read from `providers.github` in config.yaml (SPEC §2).

use crate::app::Credentials;
use greg_core::{Error, Secret};
use octocrab::models::{AppId, InstallationId};

/// The connection settings of one GitHub provider.
///
/// `Debug` is safe to log: [`Secret`] prints `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubConfig {
    /// Provider name, used in `?provider=` and in logs; normally `github`.
    pub name: String,
    /// REST API root without a trailing slash: `https://api.github.com`, or
    /// `https://ghe.example.com/api/v3` for GitHub Enterprise Server, or a fake on
    /// `http://127.0.0.1:PORT` in tests. `http` and `https` only; no query or fragment.
    pub api_url: String,
    /// The bot's login. Greg used it as the basic-auth user; with a token it is the token's
    /// user. Comments by this login are the bot's own; empty means "unknown".
    pub username: String,
    /// Personal access token (classic or fine-grained), sent as `Authorization: Bearer`.
    /// Empty when [`app`](Self::app) is set: exactly one of the two authenticates.
    pub password: Secret,
    /// GitHub App credentials, instead of [`password`](Self::password): status and
    /// comments then appear as the app. [`username`](Self::username) is the app's bot login
    /// (`<app-slug>[bot]`).
    pub app: Option<GithubAppConfig>,
    /// Webhook secret: when set (and non-empty), deliveries must carry a matching
    /// `X-Hub-Signature-256`.
    pub webhook_secret: Option<Secret>,
}

impl GithubConfig {
    /// The provider name used when config.yaml does not give one.
    pub const DEFAULT_NAME: &'static str = "github";
    /// The public GitHub REST API root.
    pub const DEFAULT_API_URL: &'static str = "https://api.github.com";

    /// A configuration for api.github.com with the given bot login and token, named `github`,
    /// without a webhook secret.
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        Self {
            name: Self::DEFAULT_NAME.to_owned(),
            api_url: Self::DEFAULT_API_URL.to_owned(),
            username: username.into(),
            password,
            app: None,
            webhook_secret: None,
        }
    }

    /// Checks the settings that would otherwise fail on the first request (or, for a token
    /// that is not a valid header value, panic inside octocrab).
    ///
    /// Returns the API root parsed as a URI, without a trailing slash, and the credentials.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `name`, `api_url`, `password` or `app`; the message
    /// never contains the token or the private key.
    pub(crate) fn validate(&self) -> Result<(http::Uri, Credentials), Error> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        let api_url = parse_api_url(&self.api_url)?;
        if let Some(app) = &self.app {
            if !self.password.is_empty() {
                return Err(invalid(
                    "app",
                    "set either password (a token) or app, not both",
                ));
            }
            return Ok((api_url, app.credentials()?));
        }
        if self.password.is_empty() {
            return Err(invalid("password", "the GitHub token must not be empty"));
        }
        // octocrab builds `Bearer <token>` with `.parse().unwrap()`; refuse what would panic
        // there (line breaks and other control characters, e.g. a token file's final newline).
        if http::HeaderValue::from_str(&format!("Bearer {}", self.password.expose())).is_err() {
            return Err(invalid(
                "password",
                "the GitHub token contains a line break or another character not allowed in an HTTP header",
            ));
        }
        Ok((api_url, Credentials::Token(self.password.clone())))
    }
}

/// A GitHub App greg authenticates as
/// (<https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/about-authentication-with-a-github-app>).
///
/// `Debug` is safe to log: the key is a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubAppConfig {
    /// The app's id ("App ID" on the app's settings page); non-zero.
    pub id: u64,
    /// The app's private key: the PEM text GitHub downloads (`-----BEGIN RSA PRIVATE
    /// KEY-----`, PKCS#1, or PKCS#8 `-----BEGIN PRIVATE KEY-----`).
    pub private_key: Secret,
    /// The installation to act as; `None`: each owner's installation is looked up on its
    /// first request (`GET /repos/{owner}/{repo}/installation`) and remembered.
    pub installation_id: Option<u64>,
}

impl GithubAppConfig {
    /// The parsed credentials.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `app.id`, `app.installation_id` or
    /// `app.private_key`; never quoting the key.
    fn credentials(&self) -> Result<Credentials, Error> {
        if self.id == 0 {
            return Err(invalid("app.id", "must be the app's id, not 0"));
        }
        if self.installation_id == Some(0) {
            return Err(invalid(
                "app.installation_id",
                "must be an installation id, not 0 (leave it out to look installations up)",
            ));
        }
        let key = octocrab::EncodingKey::from_rsa_pem(self.private_key.expose().as_bytes())
            .map_err(|_| {
                invalid(
                    "app.private_key",
                    "not an RSA private key in PEM form (the .pem file GitHub generates)",
                )
            })?;
        Ok(Credentials::App {
            id: AppId(self.id),
            key,
            installation_id: self.installation_id.map(InstallationId),
        })
    }
}

/// Parses and checks `api_url`: absolute `http`/`https` with a host, no query or fragment.
fn parse_api_url(raw: &str) -> Result<http::Uri, Error> {
    let trimmed = raw.trim().trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|_| invalid("api_url", &format!("not a URL: {trimmed:?}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(invalid(
                "api_url",
                &format!("must start with http:// or https://: {trimmed:?}"),
            ));
        }
    }
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err(invalid("api_url", &format!("has no host: {trimmed:?}")));
    }
    if uri.query().is_some() || trimmed.contains('#') {
        return Err(invalid(
            "api_url",
            &format!("must not have a query or fragment: {trimmed:?}"),
        ));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // Credentials in the URL would be logged with every request URL.
        return Err(invalid(
            "api_url",
            "must not contain credentials; use username and password",
        ));
    }
    Ok(uri)
}

fn invalid(key: &str, message: &str) -> Error {
    Error::InvalidConfig {
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(api_url: &str, token: &str) -> GithubConfig {
        GithubConfig {
            api_url: api_url.to_owned(),
            ..GithubConfig::new("greg-bot", Secret::new(token))
        }
    }

    fn key_of<T>(result: Result<T, Error>) -> String {
        match result {
            Err(Error::InvalidConfig { key, .. }) => key,
            Err(other) => panic!("expected InvalidConfig, got {other:?}"),
            Ok(_) => panic!("expected InvalidConfig, got Ok"),
        }
    }

    #[test]
    fn accepts_github_enterprise_and_loopback_urls() {
        for url in [
            "https://api.github.com",
            "https://api.github.com/",
            "https://ghe.example.com/api/v3",
            "http://127.0.0.1:8081",
        ] {
            let (uri, _) = config(url, "ghp_x").validate().expect(url);
            assert!(!uri.to_string().ends_with("//"), "{uri}");
        }
    }

    #[test]
    fn rejects_bad_urls_naming_the_key() {
        for url in [
            "",
            "api.github.com",
            "ftp://x.example.com",
            "https://a.example.com/?q=1",
            "https://user:pw@a.example.com",
            "not a url",
        ] {
            assert_eq!(key_of(config(url, "ghp_x").validate()), "api_url", "{url}");
        }
    }

    #[test]
    fn rejects_empty_or_unsendable_tokens_without_printing_them() {
        assert_eq!(key_of(config("https://x.io", "").validate()), "password");
        let err = config("https://x.io", "ghp_secret\n")
            .validate()
            .expect_err("newline");
        assert!(matches!(&err, Error::InvalidConfig { key, .. } if key == "password"));
        assert!(!err.to_string().contains("ghp_secret"), "{err}");
    }

    /// The TEST-ONLY app key (tests/data/README.md).
    const APP_KEY: &str = include_str!("../tests/data/test-only-github-app-key.pem");

    fn app_config(key: &str) -> GithubConfig {
        GithubConfig {
            app: Some(GithubAppConfig {
                id: 42,
                private_key: Secret::new(key),
                installation_id: None,
            }),
            ..config("https://x.io", "")
        }
    }

    #[test]
    fn accepts_an_app_with_an_rsa_key_instead_of_a_token() {
        let validated = app_config(APP_KEY).validate();
        assert!(
            matches!(validated, Ok((_, Credentials::App { .. }))),
            "{validated:?}"
        );
    }

    #[test]
    fn rejects_a_token_and_an_app_together_and_bad_app_settings() {
        let mut both = app_config(APP_KEY);
        both.password = Secret::new("ghp_x");
        assert_eq!(key_of(both.validate()), "app");
        let err = app_config("-----BEGIN RSA PRIVATE KEY-----\nhunter2\n")
            .validate()
            .expect_err("bad key");
        assert!(matches!(&err, Error::InvalidConfig { key, .. } if key == "app.private_key"));
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let mut zero = app_config(APP_KEY);
        if let Some(app) = zero.app.as_mut() {
            app.id = 0;
        }
        assert_eq!(key_of(zero.validate()), "app.id");
        let mut zero = app_config(APP_KEY);
        if let Some(app) = zero.app.as_mut() {
            app.installation_id = Some(0);
        }
        assert_eq!(key_of(zero.validate()), "app.installation_id");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut c = config("https://x.io", "ghp_secret");
        c.webhook_secret = Some(Secret::new("hook-secret"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("ghp_secret") && !shown.contains("hook-secret"));
        let shown = format!(
            "{:?} {:?}",
            app_config(APP_KEY),
            app_config(APP_KEY).validate()
        );
        assert!(
            !shown.contains("PRIVATE") && !shown.contains("MII"),
            "{shown}"
        );
    }
}
