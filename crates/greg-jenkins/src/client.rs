//! [`JenkinsBuilder`]: greg's async Jenkins client on reqwest, and its [`Builder`] impl.
//!
//! Every request carries HTTP basic auth (user + API token) and the configured timeout.
//! Redirects are never followed: Jenkins answers `stop` and `cancelItem` with a 302 that
//! means success, and a redirect anywhere else (a login page, http → https) is reported as
//! an error instead of being followed with the credentials.
//!
//! CSRF crumbs are sent only when the server demands one. Jenkins exempts requests
//! authenticated with an API token from CSRF protection (2.96+), so normally no crumb is
//! ever fetched. When a POST is refused with Jenkins' 403 "No valid crumb was included in
//! the request", the client fetches `/crumbIssuer/api/json`, caches the crumb with the
//! session cookie it came with, and retries the POST once; later POSTs send the cached
//! crumb, and a refusal of a cached crumb triggers one refetch and retry. A refused fresh
//! crumb is `PermissionDenied`. (reqwest's cookie store is not among the workspace
//! features; the crumb's session cookie is carried by hand, which is all Jenkins needs.)

use crate::api::{
    BUILD_TREE, Crumb, JOB_TREE, QUEUE_ITEM_TREE, job_segments, parse_build, parse_crumb,
    parse_job, parse_queue_item, queue_item_from_location,
};
use crate::config::JenkinsConfig;
use crate::error::{is_crumb_refusal, status_error, transport_error};
use async_trait::async_trait;
use greg_core::{
    BuildNumber, BuildParams, BuildState, Builder, Error, Inbound, JobName, QueueItemId, Result,
    Secret, WebhookError,
};
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, RequestBuilder, StatusCode};
use std::fmt;
use tokio::sync::Mutex;
use url::Url;

/// The largest answer body greg reads from Jenkins, in bytes (a job's config.xml is the
/// largest thing it asks for).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A Jenkins controller as a [`Builder`]: triggers parameterized builds, follows queue items
/// to builds, reads and stops builds, and reads and writes job config.xml.
///
/// `Display` prints `jenkins(<url>)`; neither `Display` nor `Debug` print the API token.
pub struct JenkinsBuilder {
    name: String,
    /// The root URL, path ending in `/`.
    base: Url,
    username: String,
    api_token: Secret,
    http: reqwest::Client,
    /// The last crumb Jenkins issued, once it demanded one.
    crumb: Mutex<Option<Crumb>>,
    /// Where each answer is counted for `/metrics` ([`Self::count_requests`]).
    upstream: Option<std::sync::Arc<greg_core::UpstreamCounts>>,
}

/// What Jenkins answered: status, headers and the whole body.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// The body of a POST.
enum Body {
    Empty,
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(&'static str, String)>),
    /// `application/xml`.
    Xml(String),
}

impl JenkinsBuilder {
    /// Checks the configuration and builds the HTTP client.
    ///
    /// When the process has no rustls crypto provider installed yet, this installs ring's
    /// (greg's one provider) as the process default, since reqwest is built without one.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key for a bad URL, credentials given by halves or a
    /// zero timeout (see [`JenkinsConfig`]).
    pub fn new(cfg: JenkinsConfig) -> Result<Self> {
        let base = cfg.base_url()?;
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Fails only when another thread installed one meanwhile, which is as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout)
            .user_agent(concat!("greg/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::InvalidConfig {
                key: format!("builders.{}", cfg.name),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            name: cfg.name,
            base,
            username: cfg.username,
            api_token: cfg.api_token,
            http,
            crumb: Mutex::new(None),
            upstream: None,
        })
    }

    /// Reads a job's `config.xml` (`GET /job/{job}/config.xml`), as Jenkins stores it.
    ///
    /// # Errors
    /// `NotFound` for an unknown job, `PermissionDenied` without Job/ExtendedRead (Jenkins
    /// answers 403), `Protocol` when the answer is not UTF-8, and the usual status mapping.
    pub async fn get_job_config(&self, job: &JobName) -> Result<String> {
        let op = format!("read config.xml of {job}");
        let url = self.url(&job_segments(job)?, &["config.xml"]);
        let reply = self.get(&op, url).await?;
        if reply.status != StatusCode::OK {
            return Err(status_error(&op, reply.status, &reply.headers, &reply.body));
        }
        String::from_utf8(reply.body).map_err(|_| Error::Protocol {
            message: format!("{op}: config.xml is not UTF-8"),
        })
    }

    /// Replaces a job's `config.xml` (`POST /job/{job}/config.xml`,
    /// `Content-Type: application/xml`). Crumb rules apply.
    ///
    /// # Errors
    /// `NotFound` for an unknown job, `PermissionDenied` without Job/Configure, `Protocol`
    /// for a redirect or a 400 (Jenkins refusing the XML), `Transient` for 5xx.
    pub async fn post_job_config(&self, job: &JobName, xml: &str) -> Result<()> {
        let op = format!("write config.xml of {job}");
        let url = self.url(&job_segments(job)?, &["config.xml"]);
        let reply = self.post(&op, url, &Body::Xml(xml.to_owned())).await?;
        if !reply.status.is_success() {
            return Err(status_error(&op, reply.status, &reply.headers, &reply.body));
        }
        Ok(())
    }

    /// Whether a job exists (`GET /job/{job}/api/json?tree=name`: 200 with a job's JSON →
    /// `true`, 404 → `false`).
    ///
    /// # Errors
    /// `Protocol` when a 200 answer is not a job's JSON (a login page), and the usual status
    /// mapping for anything else.
    pub async fn job_exists(&self, job: &JobName) -> Result<bool> {
        let op = format!("look up job {job}");
        let mut url = self.url(&job_segments(job)?, &["api", "json"]);
        url.query_pairs_mut().append_pair("tree", JOB_TREE);
        let reply = self.get(&op, url).await?;
        match reply.status {
            StatusCode::OK => parse_job(&op, &reply.body).map(|()| true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(status_error(&op, status, &reply.headers, &reply.body)),
        }
    }

    /// `{root}/{prefix...}/{suffix...}`, each segment percent-encoded.
    fn url(&self, prefix: &[&str], suffix: &[&str]) -> Url {
        let mut url = self.base.clone();
        // The base URL was checked to be a hierarchical http(s) URL in `new`.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(prefix).extend(suffix);
        }
        url
    }

    /// Sends a GET.
    async fn get(&self, op: &str, url: Url) -> Result<Reply> {
        self.send(op, self.request(Method::GET, url)).await
    }

    /// Sends a POST, with a crumb once Jenkins demanded one (see the module docs).
    async fn post(&self, op: &str, url: Url, body: &Body) -> Result<Reply> {
        let cached = self.crumb.lock().await.clone();
        let reply = self
            .send(op, self.post_request(url.clone(), body, cached.as_ref()))
            .await?;
        if !is_crumb_refusal(reply.status, &reply.body) {
            return Ok(reply);
        }
        tracing::debug!(
            builder = %self.name,
            op,
            had_crumb = cached.is_some(),
            "Jenkins demanded a CSRF crumb; fetching one"
        );
        let crumb = self.fetch_crumb(op).await?;
        *self.crumb.lock().await = Some(crumb.clone());
        let reply = self
            .send(op, self.post_request(url, body, Some(&crumb)))
            .await?;
        if is_crumb_refusal(reply.status, &reply.body) {
            *self.crumb.lock().await = None;
            return Err(Error::PermissionDenied {
                message: format!(
                    "{op}: Jenkins refused a fresh CSRF crumb; use an API token rather than a \
                     password, or check the proxy compatibility of the crumb issuer"
                ),
            });
        }
        Ok(reply)
    }

    /// `GET /crumbIssuer/api/json`.
    async fn fetch_crumb(&self, op: &str) -> Result<Crumb> {
        let op = format!("{op}: fetch CSRF crumb");
        let reply = self
            .get(&op, self.url(&["crumbIssuer", "api", "json"], &[]))
            .await?;
        if reply.status != StatusCode::OK {
            return Err(status_error(&op, reply.status, &reply.headers, &reply.body));
        }
        parse_crumb(&op, &reply.body, reply.headers.get_all(SET_COOKIE))
    }

    /// A request with basic auth.
    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.http.request(method, url);
        if self.username.is_empty() {
            request
        } else {
            request.basic_auth(&self.username, Some(self.api_token.expose()))
        }
    }

    /// A POST with its body and, when given, the crumb header and session cookie.
    fn post_request(&self, url: Url, body: &Body, crumb: Option<&Crumb>) -> RequestBuilder {
        let mut request = self.request(Method::POST, url);
        if let Some(crumb) = crumb {
            request = request.header(crumb.field.clone(), crumb.value.clone());
            if let Some(cookie) = &crumb.cookie {
                request = request.header(COOKIE, cookie.clone());
            }
        }
        match body {
            Body::Empty => request,
            Body::Form(pairs) => request.form(pairs),
            Body::Xml(xml) => request
                .header(CONTENT_TYPE, "application/xml")
                .body(xml.clone()),
        }
    }

    /// Counts every answer's status in `counts`, for `/metrics`.
    #[must_use]
    pub fn count_requests(mut self, counts: std::sync::Arc<greg_core::UpstreamCounts>) -> Self {
        self.upstream = Some(counts);
        self
    }

    /// Sends a request and reads the whole answer (at most [`MAX_BODY`] bytes).
    async fn send(&self, op: &str, request: RequestBuilder) -> Result<Reply> {
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(u) = &self.upstream {
                    u.record(&self.name, None, None);
                }
                return Err(transport_error(op, &e));
            }
        };
        let status = response.status();
        if let Some(u) = &self.upstream {
            u.record(&self.name, Some(status.as_u16()), None);
        }
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(op, &e))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Error::Protocol {
                    message: format!("{op}: Jenkins answered more than {MAX_BODY} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(builder = %self.name, op, status = status.as_u16(), "Jenkins answered");
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

impl fmt::Display for JenkinsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "jenkins({})", self.base.as_str().trim_end_matches('/'))
    }
}

impl fmt::Debug for JenkinsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JenkinsBuilder")
            .field("name", &self.name)
            .field("base", &self.base.as_str())
            .field("username", &self.username)
            .field("api_token", &self.api_token)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Builder for JenkinsBuilder {
    fn name(&self) -> &str {
        &self.name
    }

    /// See [`crate::parse_notification`].
    fn parse_notification(&self, body: &[u8]) -> std::result::Result<Inbound, WebhookError> {
        crate::notification::parse_notification(body)
    }

    /// `POST /job/{job}/buildWithParameters` with the SPEC §6 parameters as form fields;
    /// Jenkins answers 201 with `Location: {root}/queue/item/{id}/`.
    async fn trigger(&self, job: &JobName, params: &BuildParams) -> Result<QueueItemId> {
        let op = format!("trigger {job}");
        let url = self.url(&job_segments(job)?, &["buildWithParameters"]);
        let reply = self.post(&op, url, &Body::Form(params.to_pairs())).await?;
        if !reply.status.is_success() {
            return Err(status_error(&op, reply.status, &reply.headers, &reply.body));
        }
        let location = reply
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        queue_item_from_location(location).ok_or_else(|| Error::Protocol {
            message: format!(
                "{op}: Jenkins answered {} without a queue item Location ({:?})",
                reply.status,
                location.chars().take(200).collect::<String>()
            ),
        })
    }

    /// `GET /queue/item/{id}/api/json`. Jenkins forgets items about five minutes after they
    /// left the queue: then `NotFound`, and the caller reads the build instead.
    async fn queue_item(&self, item: QueueItemId) -> Result<BuildState> {
        let op = format!("read queue item {item}");
        let mut url = self.url(&["queue", "item", &item.to_string(), "api", "json"], &[]);
        url.query_pairs_mut().append_pair("tree", QUEUE_ITEM_TREE);
        let reply = self.get(&op, url).await?;
        if reply.status != StatusCode::OK {
            return Err(status_error(&op, reply.status, &reply.headers, &reply.body));
        }
        parse_queue_item(&op, &reply.body)
    }

    /// `GET /job/{job}/{number}/api/json`.
    async fn build(&self, job: &JobName, number: BuildNumber) -> Result<BuildState> {
        let op = format!("read build {job} #{number}");
        let mut url = self.url(&job_segments(job)?, &[&number.to_string(), "api", "json"]);
        url.query_pairs_mut().append_pair("tree", BUILD_TREE);
        let reply = self.get(&op, url).await?;
        if reply.status != StatusCode::OK {
            return Err(status_error(&op, reply.status, &reply.headers, &reply.body));
        }
        parse_build(&op, &reply.body)
    }

    /// `POST /job/{job}/{number}/stop`: any 2xx or 3xx (Jenkins redirects to the build
    /// page) is success, and so is 404 (the build is gone).
    async fn stop(&self, job: &JobName, number: BuildNumber) -> Result<()> {
        let op = format!("stop build {job} #{number}");
        let url = self.url(&job_segments(job)?, &[&number.to_string(), "stop"]);
        let reply = self.post(&op, url, &Body::Empty).await?;
        accept_idempotent(&op, &reply)
    }

    /// `POST /queue/cancelItem?id={id}`: 2xx (204 on recent Jenkins), 3xx (302 on older
    /// ones) and 404 (the item already left the queue) are success.
    async fn cancel_queued(&self, item: QueueItemId) -> Result<()> {
        let op = format!("cancel queue item {item}");
        let mut url = self.url(&["queue", "cancelItem"], &[]);
        url.query_pairs_mut().append_pair("id", &item.to_string());
        let reply = self.post(&op, url, &Body::Empty).await?;
        accept_idempotent(&op, &reply)
    }

    /// `{root}/job/{job}/{number}/` (folders as nested `job/` segments).
    fn build_url(&self, job: &JobName, number: BuildNumber) -> String {
        let mut prefix = Vec::new();
        for segment in job.as_str().split('/') {
            prefix.push("job");
            prefix.push(segment);
        }
        self.url(&prefix, &[&number.to_string(), ""]).into()
    }
}

/// Success for idempotent actions: 2xx, 3xx and 404.
fn accept_idempotent(op: &str, reply: &Reply) -> Result<()> {
    if reply.status.is_success()
        || reply.status.is_redirection()
        || reply.status == StatusCode::NOT_FOUND
    {
        Ok(())
    } else {
        Err(status_error(op, reply.status, &reply.headers, &reply.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn builder(url: &str) -> JenkinsBuilder {
        JenkinsBuilder::new(JenkinsConfig::new(url, "greg", Secret::new("t0ken"))).expect("valid")
    }

    #[test]
    fn display_and_debug_show_the_url_and_never_the_token() {
        let b = builder("https://ci.example.com/jenkins/");
        assert_eq!(b.to_string(), "jenkins(https://ci.example.com/jenkins)");
        let debug = format!("{b:?}");
        assert!(debug.contains("Secret(***)"), "{debug}");
        assert!(!debug.contains("t0ken"), "{debug}");
    }

    #[test]
    fn build_urls_nest_folders_and_encode_segments() {
        let b = builder("https://ci.example.com/jenkins");
        assert_eq!(
            b.build_url(&JobName::from("demo-test"), BuildNumber(12)),
            "https://ci.example.com/jenkins/job/demo-test/12/"
        );
        assert_eq!(
            b.build_url(&JobName::from("team/my app"), BuildNumber(3)),
            "https://ci.example.com/jenkins/job/team/job/my%20app/3/"
        );
    }

    #[test]
    fn new_refuses_a_bad_configuration() {
        let mut cfg = JenkinsConfig::new("not a url", "greg", Secret::new("t0ken"));
        cfg.request_timeout = Duration::from_secs(5);
        let err = JenkinsBuilder::new(cfg).expect_err("bad url");
        assert!(matches!(err, Error::InvalidConfig { key, .. } if key == "builders.jenkins.url"));
    }
}
