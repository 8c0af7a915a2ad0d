//! The Jenkins client against a tiny hand-rolled HTTP stub: request shapes (paths, basic
//! auth, form and XML bodies), the CSRF crumb dance, `Location` parsing, the idempotent
//! stop and cancel, and error mapping. The full fake Jenkins lives in greg-testkit.

use greg_core::{
    BuildContext, BuildNumber, BuildOutcome, BuildParams, BuildState, Builder, Error, JobName,
    PrNumber, QueueItemId, Secret, Sha,
};
use greg_jenkins::{JenkinsBuilder, JenkinsConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stub::{Canned, Recorded, Stub};

/// `greg:t0ken`, base64.
const AUTH: &str = "Basic Z3JlZzp0MGtlbg==";
const TOKEN: &str = "t0ken";
const REMOTE_API: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/jenkins/remote-api"
);
const CRUMB_REFUSAL: &str =
    "<html><head><title>Error 403 No valid crumb was included in the request</title></head></html>";

fn fixture(name: &str) -> String {
    let path = format!("{REMOTE_API}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn jenkins(stub: &Stub, prefix: &str) -> JenkinsBuilder {
    let url = format!("http://{}{prefix}", stub.addr);
    JenkinsBuilder::new(JenkinsConfig::new(url, "greg", Secret::new(TOKEN))).expect("valid config")
}

fn params() -> BuildParams {
    BuildParams {
        source: "git@github.com:acme/demo.git".to_owned(),
        commit: Sha::parse("c6d86dc654b12425e706bcf951adfe5a8627a517").expect("sha"),
        context: BuildContext::Merge,
        report: true,
        branch: "feature".to_owned(),
        pr: Some(PrNumber(7)),
        target: Some("main".to_owned()),
    }
}

fn created(id: u64) -> Canned {
    Canned::new(201).header(
        "Location",
        format!("http://jenkins.internal:8080/queue/item/{id}/"),
    )
}

/// Asserts no error text carries the token.
fn no_token(err: &Error) -> &Error {
    assert!(!format!("{err} {err:?}").contains(TOKEN), "{err:?}");
    err
}

#[tokio::test]
async fn trigger_posts_the_parameters_as_a_form_and_reads_the_queue_item() {
    let stub = Stub::start(|_| created(42)).await;
    let item = jenkins(&stub, "")
        .trigger(&JobName::from("demo-merge"), &params())
        .await;
    assert_eq!(item, Ok(QueueItemId(42)));

    let [request] = stub.take().try_into().expect("one request");
    assert_eq!(request.line(), "POST /job/demo-merge/buildWithParameters");
    assert_eq!(request.header("authorization"), Some(AUTH));
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let want: Vec<(String, String)> = params()
        .to_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(form, want);
}

#[tokio::test]
async fn folder_jobs_and_path_prefixes_shape_the_url() {
    let stub = Stub::start(|_| created(5)).await;
    let job = JobName::from("team/my app");
    let jenkins = jenkins(&stub, "/jenkins/");
    assert_eq!(jenkins.trigger(&job, &params()).await, Ok(QueueItemId(5)));
    assert_eq!(
        stub.take()[0].line(),
        "POST /jenkins/job/team/job/my%20app/buildWithParameters"
    );
    let url = jenkins.build_url(&job, BuildNumber(9));
    assert_eq!(
        url,
        format!("http://{}/jenkins/job/team/job/my%20app/9/", stub.addr)
    );
}

#[tokio::test]
async fn trigger_without_a_queue_item_location_is_a_protocol_error() {
    for answer in [
        Canned::new(201),
        Canned::new(201).header("Location", "http://j/job/demo/"),
    ] {
        let stub = Stub::start(move |_| answer.clone()).await;
        let err = jenkins(&stub, "")
            .trigger(&JobName::from("demo"), &params())
            .await;
        let err = err.expect_err("no queue item");
        assert!(matches!(no_token(&err), Error::Protocol { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn redirects_are_reported_not_followed() {
    let stub =
        Stub::start(|_| Canned::new(302).header("Location", "https://sso.example.com/login")).await;
    let err = jenkins(&stub, "")
        .trigger(&JobName::from("demo"), &params())
        .await
        .expect_err("redirect");
    assert!(
        matches!(&err, Error::Protocol { message } if message.contains("https://sso.example.com/login")),
        "{err:?}"
    );
    assert_eq!(stub.take().len(), 1, "the redirect was not followed");
}

/// A Jenkins whose CrumbFilter wants `Jenkins-Crumb: <crumb>` with the session cookie the
/// crumb was issued with, and whose crumb rotates when `crumb` changes.
fn crumb_jenkins(crumb: Arc<Mutex<String>>) -> impl Fn(&Recorded) -> Canned + Send + Sync {
    move |request| {
        let current = crumb.lock().expect("lock").clone();
        if request.line() == "GET /crumbIssuer/api/json" {
            return Canned::new(200)
                .header("Content-Type", "application/json")
                .header("Set-Cookie", format!("JSESSIONID.x=s-{current}; Path=/; HttpOnly"))
                .body(format!(
                    r#"{{"_class":"hudson.security.csrf.DefaultCrumbIssuer","crumb":"{current}","crumbRequestField":"Jenkins-Crumb"}}"#
                ));
        }
        let cookie = format!("JSESSIONID.x=s-{current}");
        if request.header("jenkins-crumb") != Some(current.as_str())
            || request.header("cookie") != Some(cookie.as_str())
        {
            return Canned::new(403)
                .header("Content-Type", "text/html")
                .body(CRUMB_REFUSAL);
        }
        created(11)
    }
}

#[tokio::test]
async fn a_crumb_is_fetched_when_demanded_cached_and_refetched_when_stale() {
    let crumb = Arc::new(Mutex::new("c1".to_owned()));
    let stub = Stub::start(crumb_jenkins(crumb.clone())).await;
    let jenkins = jenkins(&stub, "");
    let job = JobName::from("demo");

    // First POST: refused, crumb fetched, retried once with it.
    assert_eq!(jenkins.trigger(&job, &params()).await, Ok(QueueItemId(11)));
    let requests = stub.take();
    let lines: Vec<String> = requests.iter().map(Recorded::line).collect();
    assert_eq!(
        lines,
        [
            "POST /job/demo/buildWithParameters",
            "GET /crumbIssuer/api/json",
            "POST /job/demo/buildWithParameters"
        ]
    );
    assert_eq!(requests[0].header("jenkins-crumb"), None);
    assert_eq!(requests[1].header("authorization"), Some(AUTH));
    assert_eq!(requests[2].header("jenkins-crumb"), Some("c1"));
    assert_eq!(requests[2].header("authorization"), Some(AUTH));
    assert_eq!(
        requests[0].body, requests[2].body,
        "the retry sends the same form"
    );

    // Later POSTs (stop too) send the cached crumb at once.
    assert_eq!(jenkins.trigger(&job, &params()).await, Ok(QueueItemId(11)));
    assert_eq!(jenkins.stop(&job, BuildNumber(3)).await, Ok(()));
    let requests = stub.take();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| r.header("jenkins-crumb") == Some("c1"))
    );

    // The session expired: the cached crumb is refused, one refetch, one retry.
    *crumb.lock().expect("lock") = "c2".to_owned();
    assert_eq!(jenkins.trigger(&job, &params()).await, Ok(QueueItemId(11)));
    let requests = stub.take();
    let sent: Vec<Option<&str>> = requests.iter().map(|r| r.header("jenkins-crumb")).collect();
    assert_eq!(sent, [Some("c1"), None, Some("c2")]);
}

#[tokio::test]
async fn a_refused_fresh_crumb_is_permission_denied_after_one_retry() {
    let stub = Stub::start(|request: &Recorded| {
        if request.line() == "GET /crumbIssuer/api/json" {
            Canned::new(200).body(r#"{"crumb":"c1","crumbRequestField":"Jenkins-Crumb"}"#)
        } else {
            Canned::new(403).body(CRUMB_REFUSAL)
        }
    })
    .await;
    let jenkins = jenkins(&stub, "");
    let err = jenkins
        .cancel_queued(QueueItemId(7))
        .await
        .expect_err("crumb refused twice");
    assert!(
        matches!(no_token(&err), Error::PermissionDenied { .. }),
        "{err:?}"
    );
    assert_eq!(stub.take().len(), 3, "POST, crumb, one retry");

    // The refused crumb is not kept: the next POST starts without one.
    let _ = jenkins.cancel_queued(QueueItemId(7)).await;
    assert_eq!(stub.take()[0].header("jenkins-crumb"), None);
}

#[tokio::test]
async fn a_plain_403_is_permission_denied_without_a_crumb_fetch() {
    let stub = Stub::start(|_| {
        Canned::new(403).body("<html>greg is missing the Job/Build permission</html>")
    })
    .await;
    let err = jenkins(&stub, "")
        .trigger(&JobName::from("demo"), &params())
        .await
        .expect_err("forbidden");
    assert!(
        matches!(no_token(&err), Error::PermissionDenied { .. }),
        "{err:?}"
    );
    assert_eq!(stub.take().len(), 1);
}

#[tokio::test]
async fn stop_and_cancel_are_idempotent() {
    let status = Arc::new(Mutex::new(302));
    let answer = status.clone();
    let stub = Stub::start(move |_| Canned::new(*answer.lock().expect("lock"))).await;
    let jenkins = jenkins(&stub, "");
    let job = JobName::from("team/demo");
    for code in [200, 204, 302, 404] {
        *status.lock().expect("lock") = code;
        assert_eq!(
            jenkins.stop(&job, BuildNumber(12)).await,
            Ok(()),
            "stop {code}"
        );
        assert_eq!(
            jenkins.cancel_queued(QueueItemId(7)).await,
            Ok(()),
            "cancel {code}"
        );
    }
    let lines: Vec<String> = stub.take().iter().take(2).map(Recorded::line).collect();
    assert_eq!(
        lines,
        [
            "POST /job/team/job/demo/12/stop",
            "POST /queue/cancelItem?id=7"
        ]
    );

    *status.lock().expect("lock") = 500;
    let err = jenkins.stop(&job, BuildNumber(12)).await.expect_err("5xx");
    assert!(err.is_retryable(), "{err:?}");
    let err = jenkins
        .cancel_queued(QueueItemId(7))
        .await
        .expect_err("5xx");
    assert!(matches!(err, Error::Transient { .. }), "{err:?}");
}

#[tokio::test]
async fn queue_items_and_builds_are_read_from_the_remote_api() {
    let stub = Stub::start(|request: &Recorded| {
        let body = match request.path() {
            "/queue/item/143/api/json" => fixture("queue-item.left-running.json"),
            "/queue/item/144/api/json" => fixture("queue-item.blocked.json"),
            "/queue/item/145/api/json" => fixture("queue-item.left-cancelled.json"),
            "/job/fish/10/api/json" => fixture("build.json"),
            _ => return Canned::new(404).body("<html>Not Found</html>"),
        };
        Canned::new(200)
            .header("Content-Type", "application/json")
            .body(body)
    })
    .await;
    let jenkins = jenkins(&stub, "");
    assert_eq!(
        jenkins.queue_item(QueueItemId(143)).await,
        Ok(BuildState::Running {
            number: BuildNumber(14),
            url: "http://localhost:8082/job/test/14/".to_owned()
        })
    );
    assert_eq!(
        jenkins.queue_item(QueueItemId(144)).await,
        Ok(BuildState::Queued {
            why: Some("Build #9 is already in progress (ETA:15 sec)".to_owned())
        })
    );
    assert_eq!(
        jenkins.queue_item(QueueItemId(145)).await,
        Ok(BuildState::Cancelled)
    );
    assert_eq!(
        jenkins.build(&JobName::from("fish"), BuildNumber(10)).await,
        Ok(BuildState::Finished {
            number: BuildNumber(10),
            url: "http://localhost:32769/job/fish/10/".to_owned(),
            outcome: BuildOutcome::Success,
            commit: None
        })
    );
    let err = jenkins
        .queue_item(QueueItemId(1))
        .await
        .expect_err("forgotten item");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    let requests = stub.take();
    assert_eq!(
        requests[0].target,
        "/queue/item/143/api/json?tree=cancelled%2Cexecutable%5Bnumber%2Curl%5D%2Cwhy"
    );
    assert_eq!(
        requests[3].target,
        "/job/fish/10/api/json?tree=number%2Curl%2Cbuilding%2Cresult%2Cactions%5Bparameters%5Bname%2Cvalue%5D%5D"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.header("authorization") == Some(AUTH))
    );
}

#[tokio::test]
async fn job_config_is_read_and_written_as_xml() {
    const XML: &str =
        "<?xml version='1.1' encoding='UTF-8'?>\n<project><description>é</description></project>";
    let stub = Stub::start(|request: &Recorded| match request.line().as_str() {
        "GET /job/team/job/demo/config.xml" => Canned::new(200)
            .header("Content-Type", "application/xml")
            .body(XML),
        "POST /job/team/job/demo/config.xml" => Canned::new(200),
        "GET /job/team/job/demo/api/json?tree=name" => Canned::new(200).body(fixture("job.json")),
        "GET /job/login/api/json?tree=name" => Canned::new(200).body("<html>Sign in</html>"),
        _ => Canned::new(404),
    })
    .await;
    let jenkins = jenkins(&stub, "");
    let job = JobName::from("team/demo");
    assert_eq!(jenkins.get_job_config(&job).await.as_deref(), Ok(XML));
    assert_eq!(jenkins.post_job_config(&job, XML).await, Ok(()));
    assert_eq!(jenkins.job_exists(&job).await, Ok(true));
    assert_eq!(jenkins.job_exists(&JobName::from("gone")).await, Ok(false));
    let err = jenkins
        .job_exists(&JobName::from("login"))
        .await
        .expect_err("HTML");
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    let err = jenkins
        .get_job_config(&JobName::from("gone"))
        .await
        .expect_err("404");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    let requests = stub.take();
    assert_eq!(requests[1].header("content-type"), Some("application/xml"));
    assert_eq!(requests[1].body, XML.as_bytes());
}

#[tokio::test]
async fn statuses_become_the_shared_taxonomy() {
    let stub = Stub::start(|request: &Recorded| match request.path() {
        "/job/a/1/api/json" => Canned::new(401),
        "/job/b/1/api/json" => Canned::new(429).header("Retry-After", "30"),
        "/job/c/1/api/json" => Canned::new(503),
        "/job/d/1/api/json" => Canned::new(200).body("{\"number\": 1"),
        _ => Canned::new(404),
    })
    .await;
    let jenkins = jenkins(&stub, "");
    async fn read(jenkins: &JenkinsBuilder, job: &str) -> greg_core::Result<BuildState> {
        jenkins.build(&JobName::from(job), BuildNumber(1)).await
    }
    let err = read(&jenkins, "a").await.expect_err("401");
    assert!(
        matches!(no_token(&err), Error::Unauthenticated { .. }),
        "{err:?}"
    );
    let err = read(&jenkins, "b").await.expect_err("429");
    assert_eq!(
        err,
        Error::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    let err = read(&jenkins, "c").await.expect_err("503");
    assert!(matches!(no_token(&err), Error::Transient { .. }), "{err:?}");
    let err = read(&jenkins, "d").await.expect_err("truncated JSON");
    assert!(matches!(no_token(&err), Error::Protocol { .. }), "{err:?}");
    let err = jenkins
        .trigger(&JobName::from("a//b"), &params())
        .await
        .expect_err("bad name");
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    assert_eq!(stub.take().len(), 4, "a bad job name sends nothing");
}

#[tokio::test]
async fn a_silent_server_times_out_as_transient() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let mut cfg = JenkinsConfig::new(format!("http://{addr}"), "greg", Secret::new(TOKEN));
    cfg.request_timeout = Duration::from_millis(200);
    let jenkins = JenkinsBuilder::new(cfg).expect("valid");
    let err = jenkins
        .queue_item(QueueItemId(1))
        .await
        .expect_err("timeout");
    assert!(
        matches!(no_token(&err), Error::Transient { message } if message.contains("timed out")),
        "{err:?}"
    );
    hold.abort();
}

#[tokio::test]
async fn anonymous_requests_carry_no_authorization() {
    let stub = Stub::start(|_| created(1)).await;
    let url = format!("http://{}", stub.addr);
    let jenkins =
        JenkinsBuilder::new(JenkinsConfig::new(url, "", Secret::default())).expect("valid");
    assert_eq!(
        jenkins.trigger(&JobName::from("demo"), &params()).await,
        Ok(QueueItemId(1))
    );
    assert_eq!(stub.take()[0].header("authorization"), None);
}

/// A tiny HTTP/1.1 server: one request per connection, answered by a function of the
/// recorded request, every request kept for the test to inspect.
mod stub {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// One request as the stub received it; header names lower-cased.
    #[derive(Debug, Clone)]
    pub struct Recorded {
        pub method: String,
        /// Path and query, as sent.
        pub target: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Recorded {
        /// `METHOD target`.
        pub fn line(&self) -> String {
            format!("{} {}", self.method, self.target)
        }

        /// The target without its query.
        pub fn path(&self) -> &str {
            self.target.split('?').next().unwrap_or_default()
        }

        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// A canned answer.
    #[derive(Debug, Clone)]
    pub struct Canned {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Canned {
        pub fn new(status: u16) -> Self {
            Self {
                status,
                headers: Vec::new(),
                body: String::new(),
            }
        }

        pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
            self.headers.push((name.to_owned(), value.into()));
            self
        }

        pub fn body(mut self, body: impl Into<String>) -> Self {
            self.body = body.into();
            self
        }
    }

    pub struct Stub {
        pub addr: SocketAddr,
        requests: Arc<Mutex<Vec<Recorded>>>,
    }

    impl Stub {
        pub async fn start(answer: impl Fn(&Recorded) -> Canned + Send + Sync + 'static) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let requests = Arc::new(Mutex::new(Vec::new()));
            let answer = Arc::new(answer);
            let seen = requests.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let (seen, answer) = (seen.clone(), answer.clone());
                    tokio::spawn(async move {
                        let _ = answer_one(socket, &seen, &*answer).await;
                    });
                }
            });
            Self { addr, requests }
        }

        /// The requests received since the last call, in order.
        pub fn take(&self) -> Vec<Recorded> {
            std::mem::take(&mut *self.requests.lock().expect("lock"))
        }
    }

    /// Reads one request, records it, writes the canned answer and closes.
    async fn answer_one(
        mut socket: TcpStream,
        seen: &Mutex<Vec<Recorded>>,
        answer: &(dyn Fn(&Recorded) -> Canned + Send + Sync),
    ) -> Option<()> {
        let mut buf = Vec::new();
        let head_end = loop {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut start = lines.next()?.split(' ');
        let (method, target) = (start.next()?.to_owned(), start.next()?.to_owned());
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let request = Recorded {
            method,
            target,
            headers,
            body,
        };
        let canned = answer(&request);
        seen.lock().expect("lock").push(request);
        let mut out = format!("HTTP/1.1 {} Stub\r\n", canned.status);
        for (k, v) in &canned.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            canned.body.len(),
            canned.body
        ));
        socket.write_all(out.as_bytes()).await.ok()?;
        socket.shutdown().await.ok()
    }
}
