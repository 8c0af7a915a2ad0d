//! End to end, sign-in and access (SPEC §9, issue 13 items 4, 5 and 9): the GitHub OAuth web
//! flow against the fake GitHub, the sealed session cookie, logout, CSRF, the `/project`
//! page where admins edit the required reviewers (and the next "@greg ok" needs them), and
//! who sees a private repository's pages and `/api`. Each test drives greg as a browser
//! would (redirects followed by hand, cookies kept by hand), then checks that no secret or
//! token appeared in any answer or log line.

use greg_core::{BuildOutcome, Permission, PrNumber};
use greg_engine::ManualClock;
use greg_testkit::tester::{OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, SESSION_SECRET, TEST_JOB};
use greg_testkit::{GregTester, TesterOptions};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Every log line of this test binary (all tests share it).
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,greg_server=debug,greg_engine=debug,greg_github=debug",
            ))
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .try_init();
        buffer
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A browser: no automatic redirects, cookies kept by name, every answer recorded.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    /// Every `Set-Cookie` received, whole.
    set_cookies: Vec<String>,
    /// Every answer's status line, headers and body.
    seen: String,
}

/// One answer: status, `Location`, body.
struct Page {
    status: u16,
    location: String,
    body: String,
}

impl Browser {
    fn new(t: &GregTester) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: t.url.clone(),
            cookies: BTreeMap::new(),
            set_cookies: Vec::new(),
            seen: String::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> anyhow::Result<Page> {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = if cookie.is_empty() {
            req
        } else {
            req.header("cookie", cookie.join("; "))
        };
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        self.seen.push_str(&format!("{status}\n"));
        for (k, v) in resp.headers() {
            self.seen
                .push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
        }
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str()?.to_owned();
            let pair = v.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                let removal = v.contains("Max-Age=0") || value.is_empty();
                if removal {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
            self.set_cookies.push(v);
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = resp.text().await?;
        self.seen.push_str(&body);
        self.seen.push('\n');
        Ok(Page {
            status,
            location,
            body,
        })
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<Page> {
        let req = self.client.get(self.url(path));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<Page> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.post_raw(path, body).await
    }

    async fn post_raw(&mut self, path: &str, body: String) -> anyhow::Result<Page> {
        let req = self
            .client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// The whole sign-in as `login`, starting from `/login?next=<next>`; returns where greg
    /// sent the browser at the end.
    async fn sign_in(&mut self, t: &GregTester, login: &str, next: &str) -> anyhow::Result<Page> {
        t.world.sign_in_as(Some(login));
        let start = self.get(&format!("/login?next={}", encode(next))).await?;
        assert_eq!(start.status, 302, "{}", start.body);
        assert!(
            start
                .location
                .starts_with(&format!("{}/login/oauth/authorize?", t.github.url)),
            "{}",
            start.location
        );
        assert!(
            start
                .location
                .contains(&format!("client_id={OAUTH_CLIENT_ID}"))
        );
        let github = self.get(&start.location.clone()).await?;
        assert_eq!(github.status, 302, "{}", github.body);
        assert!(
            github
                .location
                .starts_with(&format!("{}/oauth/callback?", t.url))
        );
        let done = self.get(&github.location.clone()).await?;
        assert_eq!(done.status, 303, "{}", done.body);
        Ok(done)
    }

    /// The CSRF token in a page's forms.
    fn csrf(page: &Page) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        page.body
            .split(marker)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("")
            .to_owned()
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// No secret, no code and no token in anything `browsers` saw nor in the log.
fn assert_nothing_leaked(t: &GregTester, browsers: &[&Browser]) {
    let log = String::from_utf8_lossy(
        &log()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned();
    let mut secrets = vec![OAUTH_CLIENT_SECRET.to_owned(), SESSION_SECRET.to_owned()];
    secrets.extend(t.world.oauth_tokens());
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "{secret} in the log");
        for b in browsers {
            assert!(!b.seen.contains(secret.as_str()), "{secret} in an answer");
        }
    }
}

async fn start(opts: TesterOptions) -> anyhow::Result<GregTester> {
    log();
    GregTester::start_with(TesterOptions {
        sign_in: true,
        ..opts
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_sets_a_sealed_session_cookie_and_signing_out_ends_it() -> anyhow::Result<()> {
    let t = start(TesterOptions::default()).await?;
    let mut b = Browser::new(&t);

    let anonymous = b.get("/project/acme/demo").await?;
    assert_eq!(anonymous.status, 200);
    assert!(
        anonymous.body.contains("Sign in with GitHub"),
        "{}",
        anonymous.body
    );

    let done = b.sign_in(&t, "alice", "/project/acme/demo").await?;
    assert_eq!(done.location, "/project/acme/demo");
    let session = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("greg_session=") && !c.contains("Max-Age=0"))
        .expect("a session cookie")
        .clone();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(flag), "{flag} missing: {session}");
    }
    assert!(!session.contains("alice"), "the login is sealed: {session}");
    assert!(
        !b.cookies.contains_key("greg_oauth_state"),
        "the state cookie is removed after the callback"
    );

    let page = b.get("/project/acme/demo").await?;
    assert!(
        page.body.contains("<span class=\"who\">alice</span>"),
        "{}",
        page.body
    );
    let csrf = Browser::csrf(&page);
    assert_eq!(csrf.len(), 43, "{}", page.body);

    // GET /logout only shows a confirmation form; a POST without the token is refused.
    let confirm = b.get("/logout").await?;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Sign out of greg"));
    assert_eq!(b.post("/logout", &[]).await?.status, 403);
    assert_eq!(
        b.post("/logout", &[("csrf_token", "not-the-token")])
            .await?
            .status,
        403
    );
    assert!(b.cookies.contains_key("greg_session"));

    let out = b.post("/logout", &[("csrf_token", &csrf)]).await?;
    assert_eq!(out.status, 303);
    assert_eq!(out.location, "/");
    assert!(!b.cookies.contains_key("greg_session"));
    let page = b.get("/project/acme/demo").await?;
    assert!(page.body.contains("Sign in with GitHub"), "{}", page.body);

    assert_nothing_leaked(&t, &[&b]);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_whose_state_does_not_match_is_400() -> anyhow::Result<()> {
    let t = start(TesterOptions::default()).await?;
    let mut b = Browser::new(&t);
    t.world.sign_in_as(Some("alice"));
    let start = b.get("/login").await?;
    let github = b.get(&start.location.clone()).await?;
    let code_only = github
        .location
        .split('&')
        .find(|p| p.contains("code="))
        .unwrap_or("")
        .to_owned();
    let wrong = format!("{code_only}&state=forged");
    let refused = b.get(&wrong).await?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(!b.cookies.contains_key("greg_session"));

    // Without the state cookie (another browser), the right state is refused too.
    let mut other = Browser::new(&t);
    let refused = other.get(&github.location.clone()).await?;
    assert_eq!(refused.status, 400);
    assert!(!other.cookies.contains_key("greg_session"));

    // An open redirect is not followed: `next` must be a path on greg.
    let mut c = Browser::new(&t);
    let done = c.sign_in(&t, "alice", "//evil.example.com/x").await?;
    assert_eq!(done.location, "/");

    assert_nothing_leaked(&t, &[&b, &other, &c]);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_expired_session_is_signed_out() -> anyhow::Result<()> {
    let clock = ManualClock::new(1_704_067_200_000);
    let t = start(TesterOptions {
        clock: Some(clock),
        ..TesterOptions::default()
    })
    .await?;
    t.world.make_private(&t.repo)?;
    t.set_permission("alice", Permission::Read)?;
    let mut b = Browser::new(&t);
    b.sign_in(&t, "alice", "/").await?;
    assert_eq!(b.get("/api/project/acme/demo").await?.status, 200);

    // One character of the sealed value changed: no session.
    let sealed = b.cookies.get("greg_session").cloned().unwrap_or_default();
    let mut tampered = sealed.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    b.cookies.insert(
        "greg_session".to_owned(),
        String::from_utf8(tampered).unwrap_or_default(),
    );
    assert_eq!(b.get("/api/project/acme/demo").await?.status, 401);
    let page = b.get("/login").await?;
    assert_eq!(page.status, 302, "an anonymous browser may sign in again");

    // The real cookie again, 11 hours on: still signed in; 13 hours on: expired.
    b.cookies.insert("greg_session".to_owned(), sealed);
    t.advance(11 * 3600 * 1000)?;
    assert_eq!(b.get("/api/project/acme/demo").await?.status, 200);
    t.advance(2 * 3600 * 1000)?;
    let expired = b.get("/api/project/acme/demo").await?;
    assert_eq!(expired.status, 401, "{}", expired.body);
    assert!(expired.body.contains("error"), "{}", expired.body);

    assert_nothing_leaked(&t, &[&b]);
    t.finish().await
}

/// alice is an admin, bob may write; carol's pull request is green and approved by bob.
async fn admin_world(t: &GregTester) -> anyhow::Result<PrNumber> {
    t.set_permission("alice", Permission::Admin)?;
    t.set_permission("bob", Permission::Write)?;
    let (pr, _) = t.open_pr("carol", "feature").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.approve(pr, "bob").await?;
    Ok(pr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_edit_the_reviewers_and_the_next_ok_needs_them() -> anyhow::Result<()> {
    let mut t = start(TesterOptions {
        repo_yaml: "    reviewers: [erin]\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    let pr = admin_world(&t).await?;
    t.approve(pr, "erin").await?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    let before = t.expect_comment(pr)?;
    assert!(before.contains("Ready to merge"), "{before}");

    let mut b = Browser::new(&t);
    b.sign_in(&t, "alice", "/project/acme/demo").await?;
    let page = b.get("/project/acme/demo").await?;
    assert!(page.body.contains("<textarea"), "{}", page.body);
    let csrf = Browser::csrf(&page);
    insta::assert_snapshot!(
        "project_page_for_an_admin",
        page.body.replace(&csrf, "[csrf]")
    );

    let saved = b
        .post(
            "/project/acme/demo",
            &[
                ("reviewers", "@dave\r\nDave\r\n\r\nfrank"),
                ("csrf_token", &csrf),
            ],
        )
        .await?;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location, "/project/acme/demo");
    let api = b.get("/api/project/acme/demo").await?;
    assert_eq!(api.status, 200);
    let json: serde_json::Value = serde_json::from_str(&api.body)?;
    assert_eq!(
        json,
        serde_json::json!({"admins": ["alice"], "reviewers": ["erin", "dave", "frank"]})
    );

    // The rules read them at once.
    t.post_comment(pr, "alice", "@greg ok").await?;
    let after = t.expect_comment(pr)?;
    assert!(after.contains("Not ready to merge"), "{after}");
    assert!(after.contains("@dave has not approved"), "{after}");
    assert!(after.contains("@frank has not approved"), "{after}");

    // A reviewer from /project may approve without write permission, as a configured one.
    t.post_comment(pr, "dave", "@greg lgtm").await?;
    t.post_comment(pr, "frank", "@greg lgtm").await?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    let ready = t.expect_comment(pr)?;
    assert!(ready.contains("Ready to merge"), "{ready}");

    // A bad login is refused, naming it, and nothing changes.
    let bad = b
        .post(
            "/project/acme/demo",
            &[
                ("reviewers", "dave\n<script>x</script>"),
                ("csrf_token", &csrf),
            ],
        )
        .await?;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("&#60;script&#62;") || bad.body.contains("&lt;script&gt;"));
    assert!(!bad.body.contains("<script>"));

    assert_nothing_leaked(&t, &[&b]);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewer_edits_need_an_admin_a_csrf_token_and_a_small_form() -> anyhow::Result<()> {
    let t = start(TesterOptions::default()).await?;
    t.set_permission("alice", Permission::Admin)?;
    t.set_permission("bob", Permission::Write)?;

    let mut anonymous = Browser::new(&t);
    let refused = anonymous
        .post("/project/acme/demo", &[("reviewers", "dave")])
        .await?;
    assert_eq!(refused.status, 403);

    let mut bob = Browser::new(&t);
    bob.sign_in(&t, "bob", "/").await?;
    let page = bob.get("/project/acme/demo").await?;
    assert!(!page.body.contains("<textarea"), "no form for a non-admin");
    assert!(page.body.contains("Only admins"), "{}", page.body);
    let csrf = Browser::csrf(&page);
    let refused = bob
        .post(
            "/project/acme/demo",
            &[("reviewers", "dave"), ("csrf_token", &csrf)],
        )
        .await?;
    assert_eq!(refused.status, 403, "{}", refused.body);

    let mut alice = Browser::new(&t);
    alice.sign_in(&t, "alice", "/").await?;
    let csrf = Browser::csrf(&alice.get("/project/acme/demo").await?);
    for form in [
        vec![("reviewers", "dave")],
        vec![("reviewers", "dave"), ("csrf_token", "")],
        vec![("reviewers", "dave"), ("csrf_token", "forged")],
    ] {
        let refused = alice.post("/project/acme/demo", &form).await?;
        assert_eq!(refused.status, 403, "{form:?}");
    }
    // bob's token is not alice's.
    let bobs = Browser::csrf(&bob.get("/project/acme/demo").await?);
    let refused = alice
        .post(
            "/project/acme/demo",
            &[("reviewers", "dave"), ("csrf_token", &bobs)],
        )
        .await?;
    assert_eq!(refused.status, 403);

    let huge = format!("csrf_token={csrf}&reviewers={}", "a%0A".repeat(20_000));
    assert_eq!(
        alice.post_raw("/project/acme/demo", huge).await?.status,
        413
    );

    let api = alice.get("/api/project/acme/demo").await?;
    let json: serde_json::Value = serde_json::from_str(&api.body)?;
    assert_eq!(
        json["reviewers"],
        serde_json::json!([]),
        "nothing was stored"
    );

    assert_nothing_leaked(&t, &[&anonymous, &bob, &alice]);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_repositories_are_shown_only_to_their_readers() -> anyhow::Result<()> {
    let t = start(TesterOptions::default()).await?;
    t.world.make_private(&t.repo)?;
    t.set_permission("carol", Permission::Read)?;

    let mut anonymous = Browser::new(&t);
    let page = anonymous.get("/project/acme/demo").await?;
    assert_eq!(page.status, 302);
    assert_eq!(page.location, "/login?next=%2Fproject%2Facme%2Fdemo");
    for api in [
        "/api/queue/acme/demo",
        "/api/project/acme/demo",
        "/api/reports/github/acme/demo/1",
    ] {
        let answer = anonymous.get(api).await?;
        assert_eq!(answer.status, 401, "{api}: {}", answer.body);
        assert!(
            answer.body.starts_with("{\"error\":"),
            "{api}: {}",
            answer.body
        );
    }
    assert_eq!(
        anonymous.get("/report/github/acme/demo/1").await?.status,
        302
    );
    let status = anonymous.get("/api/status").await?;
    assert_eq!(status.status, 200);

    // mallory is signed in but cannot read it: as if it did not exist.
    let mut mallory = Browser::new(&t);
    mallory.sign_in(&t, "mallory", "/").await?;
    let page = mallory.get("/project/acme/demo").await?;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("repository acme/demo is not configured"));
    assert_eq!(mallory.get("/api/queue/acme/demo").await?.status, 404);
    assert_eq!(mallory.get("/api/project/acme/demo").await?.status, 404);
    let unknown = mallory.get("/api/queue/acme/nothing").await?;
    assert_eq!(unknown.status, 404);

    let mut carol = Browser::new(&t);
    carol.sign_in(&t, "carol", "/").await?;
    assert_eq!(carol.get("/project/acme/demo").await?.status, 200);
    assert_eq!(carol.get("/api/queue/acme/demo").await?.status, 200);

    assert_nothing_leaked(&t, &[&anonymous, &mallory, &carol]);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_pages_show_private_repositories_to_anyone() -> anyhow::Result<()> {
    let t = start(TesterOptions {
        public_pages: true,
        ..TesterOptions::default()
    })
    .await?;
    t.world.make_private(&t.repo)?;
    let mut anonymous = Browser::new(&t);
    assert_eq!(anonymous.get("/api/queue/acme/demo").await?.status, 200);
    assert_eq!(anonymous.get("/project/acme/demo").await?.status, 200);
    assert_nothing_leaked(&t, &[&anonymous]);
    t.finish().await
}
