//! The user side of sign-in (SPEC §9): GitHub's OAuth web flow for greg's pages, as GitHub
//! documents it (<https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#web-application-flow>).
//!
//! 1. [`OauthClient::authorize_url`]: where `/login` sends the browser
//!    (`<web_url>/login/oauth/authorize?client_id=…&redirect_uri=…&state=…`).
//! 2. [`OauthClient::exchange`]: `POST <web_url>/login/oauth/access_token` with the `code`
//!    GitHub sent back, `Accept: application/json`; GitHub answers 200 even for a bad code,
//!    with `{"error": …}` instead of `{"access_token": …}`.
//! 3. [`OauthClient::user`]: `GET <api_url>/user` with that token, for the login.
//!
//! The user's token is only used for step 3: what the user may read or administer is asked
//! with greg's own credentials (the collaborator-permission API, see
//! [`GithubProvider::admins`](crate::GithubProvider::admins)), so greg keeps no user token.
//! The exchange is on the web host, not the REST API, so this module uses reqwest rather
//! than octocrab. No error message carries the client secret, the code or a token.

use greg_core::{Error, Login, Result, Secret};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// Time allowed for one request of the flow, connection included.
const TIMEOUT: Duration = Duration::from_secs(15);

/// An OAuth app's web flow against one GitHub (github.com or an Enterprise host).
#[derive(Clone)]
pub struct OauthClient {
    web_url: String,
    api_url: String,
    client_id: String,
    client_secret: Secret,
    http: reqwest::Client,
}

impl fmt::Debug for OauthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OauthClient")
            .field("web_url", &self.web_url)
            .field("api_url", &self.api_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// `POST /login/oauth/access_token`'s JSON answer: a token, or an error (both with 200).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
}

/// `GET /user`'s answer, the part greg reads.
#[derive(Deserialize)]
struct UserAnswer {
    login: String,
}

impl OauthClient {
    /// The flow of OAuth app `client_id` / `client_secret` on the GitHub whose web host is
    /// `web_url` (`https://github.com`) and REST API `api_url` (`https://api.github.com`),
    /// both without a trailing `/`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the HTTP client cannot be built (no TLS provider
    /// installed in the process).
    pub fn new(
        web_url: &str,
        api_url: &str,
        client_id: &str,
        client_secret: Secret,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("greg/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::InvalidConfig {
                key: "providers.github.oauth".to_owned(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            web_url: web_url.trim_end_matches('/').to_owned(),
            api_url: api_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            http,
        })
    }

    /// Where to send the browser to sign in: `<web_url>/login/oauth/authorize` with the
    /// client id, `redirect_uri` (greg's `/oauth/callback`) and `state` (echoed back).
    /// No scope is asked: greg reads only the user's public login.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        authorize_url(&self.web_url, &self.client_id, redirect_uri, state)
    }

    /// Exchanges the callback's `code` for the user's token.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a code GitHub refuses (wrong, used or expired) or
    /// refused app credentials; [`Error::Transient`] when GitHub cannot be reached or
    /// answers 5xx; [`Error::Protocol`] for an answer greg cannot read.
    pub async fn exchange(&self, code: &str, redirect_uri: &str) -> Result<Secret> {
        let what = "the OAuth code exchange";
        let response = self
            .http
            .post(format!("{}/login/oauth/access_token", self.web_url))
            .header("accept", "application/json")
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose()),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ])
            .send()
            .await
            .map_err(|e| transport(what, &e))?;
        let answer: TokenAnswer = read_json(what, response).await?;
        match (answer.access_token, answer.error) {
            (Some(token), None) if !token.is_empty() => Ok(Secret::new(token)),
            (_, Some(error)) => Err(Error::Unauthenticated {
                message: format!("{what}: GitHub refused it ({})", printable(&error)),
            }),
            _ => Err(Error::Protocol {
                message: format!("{what}: neither access_token nor error in the answer"),
            }),
        }
    }

    /// The login of the user whose token this is (`GET <api_url>/user`).
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a refused token; [`Error::Transient`] and
    /// [`Error::Protocol`] as for [`exchange`](Self::exchange).
    pub async fn user(&self, token: &Secret) -> Result<Login> {
        let what = "the signed-in user (GET /user)";
        let response = self
            .http
            .get(format!("{}/user", self.api_url))
            .header("accept", "application/vnd.github+json")
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| transport(what, &e))?;
        let user: UserAnswer = read_json(what, response).await?;
        if user.login.is_empty() {
            return Err(Error::Protocol {
                message: format!("{what}: empty login"),
            });
        }
        Ok(Login(user.login))
    }
}

/// `<web_url>/login/oauth/authorize?client_id=…&redirect_uri=…&state=…&allow_signup=false`.
fn authorize_url(web_url: &str, client_id: &str, redirect_uri: &str, state: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        .append_pair("allow_signup", "false")
        .finish();
    format!("{web_url}/login/oauth/authorize?{query}")
}

/// A failed connection: retryable. reqwest's message names the URL, which holds no secret
/// (the client secret and the code travel in the body, the token in a header).
fn transport(what: &str, e: &reqwest::Error) -> Error {
    Error::Transient {
        message: format!("{what}: {e}"),
    }
}

/// The JSON body of a successful answer, or the error its status means.
async fn read_json<T: for<'de> Deserialize<'de>>(
    what: &str,
    response: reqwest::Response,
) -> Result<T> {
    let status = response.status();
    if !status.is_success() {
        let message = format!("{what}: GitHub answered {status}");
        return Err(match status.as_u16() {
            401 | 403 => Error::Unauthenticated { message },
            404 => Error::NotFound {
                what: what.to_owned(),
            },
            s if s >= 500 => Error::Transient { message },
            _ => Error::Protocol { message },
        });
    }
    let body = response.bytes().await.map_err(|e| transport(what, &e))?;
    serde_json::from_slice(&body).map_err(|e| Error::Protocol {
        message: format!("{what}: {e}"),
    })
}

/// At most 100 printable characters of text GitHub sent.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_carries_client_redirect_and_state_encoded() {
        let url = authorize_url(
            "https://github.example.com",
            "Iv1.abc",
            "https://greg.example.com/oauth/callback",
            "s t&x",
        );
        assert_eq!(
            url,
            "https://github.example.com/login/oauth/authorize?client_id=Iv1.abc&redirect_uri=\
             https%3A%2F%2Fgreg.example.com%2Foauth%2Fcallback&state=s+t%26x&allow_signup=false"
        );
    }
}
