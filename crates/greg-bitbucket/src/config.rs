//! [`BitbucketConfig`]: what greg needs to talk to one Bitbucket, Cloud or Server/Data Center,
//! as read from `providers.bitbucket` in config.yaml (SPEC §2), and the checks that turn it
//! into a base URL the client joins paths onto.

use greg_core::{Error, Secret};
use std::fmt;
use std::str::FromStr;
use url::Url;

/// Which Bitbucket: the two speak different REST APIs and webhook payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// bitbucket.org: REST API 2.0 (<https://developer.atlassian.com/cloud/bitbucket/rest/>).
    Cloud,
    /// Bitbucket Server / Data Center: REST API 1.0
    /// (<https://developer.atlassian.com/server/bitbucket/rest/>).
    Server,
}

impl Flavor {
    /// `cloud` or `server`, as config.yaml spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Flavor::Cloud => "cloud",
            Flavor::Server => "server",
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A config.yaml `flavor` that is neither `cloud` nor `server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFlavor(pub String);

impl fmt::Display for UnknownFlavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.0.chars().take(40).collect();
        write!(
            f,
            "unknown Bitbucket flavor {shown:?} (expected cloud or server)"
        )
    }
}

impl std::error::Error for UnknownFlavor {}

impl FromStr for Flavor {
    type Err = UnknownFlavor;

    /// `cloud` or `server`, case-insensitively; `datacenter` and `data-center` mean `server`.
    fn from_str(s: &str) -> Result<Self, UnknownFlavor> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cloud" => Ok(Flavor::Cloud),
            "server" | "datacenter" | "data-center" => Ok(Flavor::Server),
            _ => Err(UnknownFlavor(s.to_owned())),
        }
    }
}

/// The connection settings of one Bitbucket provider.
///
/// Authentication: with a `username`, every request carries HTTP basic auth
/// (`username:password`); this is how Bitbucket Cloud app passwords and API tokens (the
/// username is then the Atlassian account e-mail) and Bitbucket Server HTTP access tokens or
/// passwords are sent. With an empty `username`, `password` is sent as
/// `Authorization: Bearer` (Cloud repository/project/workspace access tokens, Server HTTP
/// access tokens).
///
/// `Debug` is safe to log: [`Secret`] prints `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitbucketConfig {
    /// Provider name, used in `?provider=` and in logs; normally `bitbucket`.
    pub name: String,
    /// Cloud or Server/Data Center.
    pub flavor: Flavor,
    /// API root without a trailing slash. Cloud: `https://api.bitbucket.org` (greg appends
    /// `/2.0/...`). Server: the base URL of the instance, with its context path if any
    /// (`https://bitbucket.example.com` or `https://example.com/bitbucket`; greg appends
    /// `/rest/api/1.0/...`). A fake on `http://127.0.0.1:PORT` in tests. `http` and `https`
    /// only; no credentials, query or fragment.
    pub api_url: String,
    /// The bot's user for basic auth (see the type's documentation); empty for a bearer token.
    /// On Server it is also the bot's login (its own comments are ignored); on Cloud the bot's
    /// login is its account id, learnt with [`BitbucketProvider::identify`](crate::BitbucketProvider::identify).
    pub username: String,
    /// Cloud: app password, API token or access token. Server: HTTP access token (or the
    /// user's password).
    pub password: Secret,
    /// Webhook secret: when set (and non-empty), deliveries must carry a matching
    /// `X-Hub-Signature: sha256=<hex>`.
    pub webhook_secret: Option<Secret>,
}

impl BitbucketConfig {
    /// The provider name used when config.yaml does not give one.
    pub const DEFAULT_NAME: &'static str = "bitbucket";
    /// The Bitbucket Cloud REST API root.
    pub const CLOUD_API_URL: &'static str = "https://api.bitbucket.org";

    /// A Bitbucket Cloud configuration for api.bitbucket.org, named `bitbucket`, without a
    /// webhook secret.
    pub fn cloud(username: impl Into<String>, password: Secret) -> Self {
        Self {
            name: Self::DEFAULT_NAME.to_owned(),
            flavor: Flavor::Cloud,
            api_url: Self::CLOUD_API_URL.to_owned(),
            username: username.into(),
            password,
            webhook_secret: None,
        }
    }

    /// A Bitbucket Server/Data Center configuration for the instance at `api_url`, named
    /// `bitbucket`, without a webhook secret.
    pub fn server(
        api_url: impl Into<String>,
        username: impl Into<String>,
        password: Secret,
    ) -> Self {
        Self {
            name: Self::DEFAULT_NAME.to_owned(),
            flavor: Flavor::Server,
            api_url: api_url.into(),
            username: username.into(),
            password,
            webhook_secret: None,
        }
    }

    /// Checks the settings that would otherwise fail on the first request, and returns the
    /// API root with a path ending in `/`, ready for [`Url::path_segments_mut`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `providers.<name>.name`, `.api_url`, `.username` or
    /// `.password`: an empty name; a URL that does not parse, is not http(s), has no host, or
    /// carries credentials, a query or a fragment; an empty password; a username or password
    /// with a line break or another character not allowed in an HTTP header. Messages never
    /// contain the password.
    pub(crate) fn base_url(&self) -> Result<Url, Error> {
        let name = self.name.trim();
        let invalid = |field: &str, message: String| Error::InvalidConfig {
            key: format!(
                "providers.{}.{field}",
                if name.is_empty() { "bitbucket" } else { name }
            ),
            message,
        };
        if name.is_empty() {
            return Err(invalid("name", "must not be empty".to_owned()));
        }
        let raw = self.api_url.trim();
        let mut url =
            Url::parse(raw).map_err(|e| invalid("api_url", format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(
                "api_url",
                format!("scheme must be http or https, not {}", url.scheme()),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Never echo the URL here: it holds the credentials.
            return Err(invalid(
                "api_url",
                "must not contain credentials; set username and password instead".to_owned(),
            ));
        }
        if url.cannot_be_a_base() || url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("api_url", format!("has no host: {raw:?}")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                "api_url",
                format!("must not have a query or a fragment: {url}"),
            ));
        }
        if self.password.is_empty() {
            return Err(invalid(
                "password",
                "must not be empty (an app password, API token or access token)".to_owned(),
            ));
        }
        if !header_safe(&self.username) {
            return Err(invalid(
                "username",
                "contains a line break or another control character".to_owned(),
            ));
        }
        if !header_safe(self.password.expose()) {
            return Err(invalid(
                "password",
                "contains a line break or another control character (a token file's final newline?)"
                    .to_owned(),
            ));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }
}

/// True when `value` can be sent inside an HTTP header (no control characters).
fn header_safe(value: &str) -> bool {
    !value.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(api_url: &str, password: &str) -> BitbucketConfig {
        BitbucketConfig::server(api_url, "greg-bot", Secret::new(password))
    }

    fn key_of(result: Result<Url, Error>) -> String {
        match result {
            Err(Error::InvalidConfig { key, .. }) => key,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn flavors_parse_as_config_yaml_spells_them() {
        assert_eq!("cloud".parse(), Ok(Flavor::Cloud));
        assert_eq!(" Server ".parse(), Ok(Flavor::Server));
        assert_eq!("datacenter".parse(), Ok(Flavor::Server));
        let err = "gitlab".parse::<Flavor>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown Bitbucket flavor \"gitlab\" (expected cloud or server)"
        );
        assert_eq!(Flavor::Cloud.to_string(), "cloud");
    }

    #[test]
    fn base_urls_keep_a_context_path_and_end_in_a_slash() {
        for (input, expected) in [
            ("https://api.bitbucket.org", "https://api.bitbucket.org/"),
            ("https://api.bitbucket.org/", "https://api.bitbucket.org/"),
            (
                "https://example.com/bitbucket",
                "https://example.com/bitbucket/",
            ),
            ("http://127.0.0.1:7990", "http://127.0.0.1:7990/"),
        ] {
            let url = server(input, "t").base_url().expect(input);
            assert_eq!(url.as_str(), expected);
        }
    }

    #[test]
    fn bad_urls_are_refused_naming_the_key() {
        for url in [
            "",
            "bitbucket.example.com",
            "ftp://bitbucket.example.com",
            "https://a.example.com/?q=1",
            "https://a.example.com/#x",
            "https://user:pw@a.example.com",
            "mailto:x@example.com",
        ] {
            assert_eq!(
                key_of(server(url, "t").base_url()),
                "providers.bitbucket.api_url",
                "{url}"
            );
        }
    }

    #[test]
    fn credentials_are_checked_without_being_printed() {
        assert_eq!(
            key_of(server("https://x.io", "").base_url()),
            "providers.bitbucket.password"
        );
        let err = server("https://x.io", "BBDC-secret\n")
            .base_url()
            .expect_err("newline");
        assert!(
            matches!(&err, Error::InvalidConfig { key, .. } if key == "providers.bitbucket.password")
        );
        assert!(!err.to_string().contains("BBDC-secret"), "{err}");
        let mut cfg = server("https://x.io", "t");
        cfg.username = "greg\r\nX-Injected: 1".to_owned();
        assert_eq!(key_of(cfg.base_url()), "providers.bitbucket.username");
        cfg.username = String::new();
        cfg.name = " ".to_owned();
        assert_eq!(key_of(cfg.base_url()), "providers.bitbucket.name");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut c = BitbucketConfig::cloud("greg-bot", Secret::new("app-password-1"));
        c.webhook_secret = Some(Secret::new("hook-secret"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("app-password-1") && !shown.contains("hook-secret"));
        assert_eq!(c.api_url, "https://api.bitbucket.org");
        assert_eq!(c.flavor, Flavor::Cloud);
    }
}
