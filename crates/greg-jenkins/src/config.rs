//! [`JenkinsConfig`]: what greg needs to talk to one Jenkins controller, and the checks that
//! turn it into a base URL the client can join paths onto.

use greg_core::{Error, Secret};
use std::time::Duration;
use url::Url;

/// The timeout of one HTTP request when the configuration names none.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The builder name when the configuration names none (`builders.jenkins` in config.yaml).
pub const DEFAULT_NAME: &str = "jenkins";

/// One Jenkins controller (config.yaml `builders.jenkins`, SPEC §2).
///
/// `Debug` is safe to log: the API token is a [`Secret`] and prints as `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JenkinsConfig {
    /// The builder name, as used in `?builder=` and in `jobs.*.builder` (normally `jenkins`).
    pub name: String,
    /// The Jenkins root URL, `http` or `https`, optionally with a path prefix
    /// (`https://ci.example.com/jenkins`). A trailing `/` is optional. It must not carry
    /// credentials, a query or a fragment.
    pub url: String,
    /// The Jenkins user greg acts as. Empty together with an empty `api_token`: anonymous
    /// requests (a Jenkins that allows them, or a test server).
    pub username: String,
    /// The user's API token (config.yaml `password`), sent with `username` as HTTP basic auth
    /// on every request. A password works too, but Jenkins then demands a CSRF crumb tied to
    /// a web session; an API token is exempt (Jenkins 2.96+).
    pub api_token: Secret,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl JenkinsConfig {
    /// A configuration named [`DEFAULT_NAME`] with the [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn new(url: impl Into<String>, username: impl Into<String>, api_token: Secret) -> Self {
        Self {
            name: DEFAULT_NAME.to_owned(),
            url: url.into(),
            username: username.into(),
            api_token,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Checks the configuration and returns the root URL with a path ending in `/`, ready for
    /// [`Url::path_segments_mut`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key (`builders.<name>.url`, `.username`,
    /// `.password`, `.request_timeout`) when the URL does not parse, is not http(s), carries
    /// credentials, a query or a fragment, when only one of username and token is set, or
    /// when the timeout is zero. Messages never contain the token.
    pub(crate) fn base_url(&self) -> Result<Url, Error> {
        let key = |field: &str| format!("builders.{}.{field}", self.name);
        let invalid = |field: &str, message: String| Error::InvalidConfig {
            key: key(field),
            message,
        };
        let mut url =
            Url::parse(self.url.trim()).map_err(|e| invalid("url", format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(
                "url",
                format!("scheme must be http or https, not {}", url.scheme()),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Never echo the URL here: it holds the credentials.
            return Err(invalid(
                "url",
                "must not contain credentials; set username and password instead".to_owned(),
            ));
        }
        if url.cannot_be_a_base() || url.host().is_none() {
            return Err(invalid("url", "has no host".to_owned()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                "url",
                format!("must not have a query or a fragment: {url}"),
            ));
        }
        if self.username.is_empty() != self.api_token.is_empty() {
            let field = if self.username.is_empty() {
                "username"
            } else {
                "password"
            };
            return Err(invalid(
                field,
                "username and password (API token) must be set together".to_owned(),
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout", "must be above zero".to_owned()));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> JenkinsConfig {
        JenkinsConfig::new(url, "greg", Secret::new("t0ken"))
    }

    #[test]
    fn base_url_ends_with_a_slash_and_keeps_the_path_prefix() {
        let cases = [
            ("https://ci.example.com", "https://ci.example.com/"),
            ("https://ci.example.com/", "https://ci.example.com/"),
            (
                "http://127.0.0.1:8080/jenkins",
                "http://127.0.0.1:8080/jenkins/",
            ),
            (
                " http://127.0.0.1:8080/jenkins/ ",
                "http://127.0.0.1:8080/jenkins/",
            ),
        ];
        for (input, want) in cases {
            let got = config(input).base_url().map(|u| u.to_string());
            assert_eq!(got.as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn bad_urls_name_the_key_and_hide_credentials() {
        for input in [
            "ci.example.com",
            "ftp://ci.example.com",
            "https://greg:s3cr3t@ci.example.com",
            "https://ci.example.com/?a=b",
            "https://ci.example.com/#top",
            "mailto:ci@example.com",
        ] {
            let err = config(input).base_url().expect_err(input);
            let Error::InvalidConfig { key, message } = &err else {
                panic!("{input}: {err:?}");
            };
            assert_eq!(key, "builders.jenkins.url", "{input}");
            assert!(!message.contains("s3cr3t"), "{input}: {message}");
        }
    }

    #[test]
    fn username_and_token_go_together() {
        let mut c = config("https://ci.example.com");
        c.api_token = Secret::default();
        let err = c.base_url().expect_err("token missing");
        assert!(
            matches!(err, Error::InvalidConfig { key, .. } if key == "builders.jenkins.password")
        );

        let mut c = config("https://ci.example.com");
        c.username.clear();
        let err = c.base_url().expect_err("username missing");
        assert!(
            matches!(err, Error::InvalidConfig { key, .. } if key == "builders.jenkins.username")
        );

        let mut c = config("https://ci.example.com");
        c.username.clear();
        c.api_token = Secret::default();
        assert!(c.base_url().is_ok(), "anonymous access is allowed");
    }

    #[test]
    fn zero_timeout_is_refused() {
        let mut c = config("https://ci.example.com");
        c.request_timeout = Duration::ZERO;
        let err = c.base_url().expect_err("zero timeout");
        assert!(
            matches!(err, Error::InvalidConfig { key, .. } if key == "builders.jenkins.request_timeout")
        );
    }

    #[test]
    fn debug_never_prints_the_token() {
        let printed = format!("{:?}", config("https://ci.example.com"));
        assert!(!printed.contains("t0ken"), "{printed}");
    }
}
