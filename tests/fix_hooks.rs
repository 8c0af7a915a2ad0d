//! `greg fix-hooks` and `greg check-config`, run as the real binary against the fake GitHub and
//! the fake Jenkins: a fresh world gets wired, a second run changes nothing, `--dry-run` shows
//! masked diffs and changes nothing, duplicates and wrong hooks are repaired, and check-config
//! reports each planted fault.

use greg_core::{JobName, RepoName};
use greg_jenkins::{EndpointSpec, inspect};
use greg_testkit::openapi::OpenApi;
use greg_testkit::{FakeGithub, FakeJenkins, World};
use std::path::PathBuf;
use std::process::Command;

const GH_TOKEN: &str = "gh-api-token";
const GH_INCOMING: &str = "gh-incoming-s3cret";
const JK_INCOMING: &str = "jk-incoming-s3cret";
const HOOK_SECRET: &str = "hook-hmac-s3cret";
const GREG_URL: &str = "http://greg.example.com:8080";
const LEGACY_XML: &str = include_str!("data/jenkins/config/notification-endpoint.jjb-001.xml");
const CURRENT_XML: &str = include_str!("data/jenkins/config/notification-endpoint.jjb-002.xml");

struct Setup {
    world: World,
    github: FakeGithub,
    _jenkins: FakeJenkins,
    dir: tempfile::TempDir,
    github_url: String,
    jenkins_url: String,
}

fn widgets() -> RepoName {
    RepoName::new("acme", "widgets")
}

fn gadgets() -> RepoName {
    RepoName::new("acme", "gadgets")
}

/// acme/widgets, acme/gadgets (matched by `/^gad/`), acme/other (not configured); jobs
/// widgets-test (legacy `<url>` endpoint) and widgets-merge (current `<urlInfo>` form).
fn setup() -> anyhow::Result<Setup> {
    let world = World::new("greg-bot");
    world.update(|s| s.github.token = Some(GH_TOKEN.to_owned()));
    let github = FakeGithub::start(world.clone())?;
    let jenkins = FakeJenkins::start(world.clone())?;
    for repo in [widgets(), gadgets(), RepoName::new("acme", "other")] {
        world.create_repo(&repo)?;
    }
    world.create_job_with_config("widgets-test", LEGACY_XML)?;
    world.create_job_with_config("widgets-merge", CURRENT_XML)?;
    Ok(Setup {
        github_url: github.url.clone(),
        jenkins_url: jenkins.url.clone(),
        world,
        github,
        _jenkins: jenkins,
        dir: tempfile::tempdir()?,
    })
}

impl Setup {
    /// Writes a config.yaml; `public_url` and the GitHub token vary per test.
    fn config(&self, public_url: Option<&str>, gh_token: &str) -> anyhow::Result<PathBuf> {
        let public = public_url
            .map(|u| format!("  public_url: {u}\n"))
            .unwrap_or_default();
        let yaml = format!(
            r#"server:
  listen: 127.0.0.1:0
{public}providers:
  github:
    username: greg-bot
    password: {gh_token}
    incoming_token: {GH_INCOMING}
    webhook_secret: "{HOOK_SECRET}"
    source: "git@github.com:"
    api_url: {github}
builders:
  jenkins:
    url: {jenkins}
    username: greg
    password: jenkins-api-token
    incoming_token: {JK_INCOMING}
repos:
  - provider: github
    organizations: [acme]
    names: [widgets, "/^gad/"]
    jobs:
      test: {{name: widgets-test, builder: jenkins}}
      merge: {{name: widgets-merge, builder: jenkins}}
  - provider: github
    organizations: [acme]
    names: [gadgets]
    jobs:
      test: {{name: widgets-test, builder: jenkins}}
"#,
            github = self.github_url,
            jenkins = self.jenkins_url,
        );
        let path = self.dir.path().join("config.yaml");
        std::fs::write(&path, yaml)?;
        Ok(path)
    }

    fn writes(&self) -> usize {
        self.world
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .count()
    }

    fn job_xml(&self, job: &str) -> String {
        self.world.read(|s| {
            s.jenkins
                .jobs
                .get(&JobName::from(job))
                .map(|j| j.config_xml.clone())
                .unwrap_or_default()
        })
    }
}

/// Runs greg with `args`; returns (exit code, stdout + stderr).
fn greg(args: &[&str]) -> anyhow::Result<(i32, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_greg"))
        .args(args)
        .env_remove("GREG_CONFIG")
        .env("RUST_LOG", "warn")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

fn assert_no_secret(output: &str) {
    for secret in [GH_TOKEN, GH_INCOMING, JK_INCOMING, HOOK_SECRET] {
        assert!(!output.contains(secret), "{secret} printed:\n{output}");
    }
}

fn hook_url() -> String {
    format!("{GREG_URL}/repo?provider=github&token={GH_INCOMING}")
}

#[test]
fn a_fresh_world_is_wired_and_a_second_run_changes_nothing() -> anyhow::Result<()> {
    let s = setup()?;
    let config = s.config(Some(GREG_URL), GH_TOKEN)?;
    let path = config.to_string_lossy().into_owned();

    let (code, out) = greg(&["fix-hooks", "--config", &path])?;
    assert_eq!(code, 0, "{out}");
    assert_no_secret(&out);
    assert!(
        out.contains("2 created, 2 updated, 0 unchanged, 0 failed"),
        "{out}"
    );
    for repo in [widgets(), gadgets()] {
        let hooks = s.world.hooks(&repo);
        assert_eq!(hooks.len(), 1, "{repo}: {hooks:?}");
        assert_eq!(hooks[0].url, hook_url());
        assert_eq!(hooks[0].secret.as_deref(), Some(HOOK_SECRET));
        assert_eq!(hooks[0].content_type, "json");
        assert_eq!(
            hooks[0].events,
            [
                "push",
                "pull_request",
                "pull_request_review",
                "issue_comment"
            ]
        );
    }
    assert!(s.world.hooks(&RepoName::new("acme", "other")).is_empty());
    let spec = EndpointSpec::callback(GREG_URL, "jenkins", JK_INCOMING)?;
    for job in ["widgets-test", "widgets-merge"] {
        let summary = inspect(&s.job_xml(job))?;
        assert_eq!(summary.problems(&spec), Vec::<String>::new(), "{job}");
    }
    // The create-webhook bodies validate against GitHub's schema.
    let api = OpenApi::github_subset()?;
    let violations: Vec<_> = s
        .github
        .validate_log(&api)
        .into_iter()
        .filter(|v| v.method == "POST")
        .collect();
    assert!(violations.is_empty(), "{violations:?}");

    let writes = s.writes();
    let (code, out) = greg(&["fix-hooks", "--config", &path])?;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("0 created, 0 updated, 4 unchanged, 0 failed"),
        "{out}"
    );
    assert_eq!(s.writes(), writes, "the second run wrote something");
    Ok(())
}

#[test]
fn legacy_dry_run_shows_masked_diffs_and_changes_nothing() -> anyhow::Result<()> {
    let s = setup()?;
    let config = s.config(None, GH_TOKEN)?;
    let path = config.to_string_lossy().into_owned();
    let before = (s.job_xml("widgets-test"), s.job_xml("widgets-merge"));

    let (code, out) = greg(&[
        "--config",
        &path,
        "--fix-hooks",
        "--url",
        GREG_URL,
        "--dry-run",
    ])?;
    assert_eq!(code, 0, "{out}");
    assert_no_secret(&out);
    assert!(out.contains("--- a/github/acme/widgets/hooks"), "{out}");
    assert!(
        out.contains("+++ b/jenkins/widgets-test/config.xml"),
        "{out}"
    );
    assert!(out.contains("token=***"), "{out}");
    assert!(
        out.contains("+    <urlInfo>") || out.contains("<urlOrId>"),
        "{out}"
    );
    assert!(out.contains("2 would create, 2 would update"), "{out}");
    assert_eq!(s.writes(), 0);
    assert!(s.world.hooks(&widgets()).is_empty());
    assert_eq!(
        (s.job_xml("widgets-test"), s.job_xml("widgets-merge")),
        before
    );

    // --dry-run belongs to fix-hooks.
    let (code, out) = greg(&["check-config", "--dry-run", "--config", &path])?;
    assert_eq!(code, 2, "{out}");

    // Without --url and without server.public_url: bad usage.
    let (code, out) = greg(&["fix-hooks", "--config", &path])?;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--url"), "{out}");
    Ok(())
}

#[test]
fn duplicates_are_deleted_and_a_wrong_hook_is_updated() -> anyhow::Result<()> {
    let s = setup()?;
    let config = s.config(Some(GREG_URL), GH_TOKEN)?;
    let path = config.to_string_lossy().into_owned();
    let wrong = s.world.add_hook(
        &widgets(),
        &format!("{GREG_URL}/old-path?token=stale"),
        &["push"],
        None,
    )?;
    s.world.add_hook(
        &widgets(),
        &format!("{GREG_URL}/repo?provider=github&token=x"),
        &["push"],
        None,
    )?;
    let foreign = s
        .world
        .add_hook(&widgets(), "https://ci.example.org/hook", &["push"], None)?;

    let (code, out) = greg(&["fix-hooks", "--config", &path])?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deleted 1 duplicate(s)"), "{out}");
    let hooks = s.world.hooks(&widgets());
    let ids: Vec<u64> = hooks.iter().map(|h| h.id).collect();
    assert_eq!(ids, [wrong, foreign], "{hooks:?}");
    assert_eq!(hooks[0].url, hook_url());
    assert_eq!(hooks[0].secret.as_deref(), Some(HOOK_SECRET));
    assert_eq!(hooks[1].url, "https://ci.example.org/hook");
    Ok(())
}

#[test]
fn check_config_reports_each_planted_fault() -> anyhow::Result<()> {
    let s = setup()?;
    // A job without greg's endpoint, and a missing job.
    s.world.set_config_xml(
        &JobName::from("widgets-test"),
        "<?xml version='1.1' encoding='UTF-8'?>\n<project>\n  <properties/>\n</project>\n",
    )?;
    s.world
        .update(|st| st.jenkins.jobs.remove(&JobName::from("widgets-merge")));
    // Nothing listens on port 9 of loopback: greg is not reachable.
    let config = s.config(Some("http://127.0.0.1:9"), GH_TOKEN)?;
    let path = config.to_string_lossy().into_owned();
    let (code, out) = greg(&["check-config", "--config", &path])?;
    assert_eq!(code, 1, "{out}");
    assert_no_secret(&out);
    assert!(out.contains("OK   github: credentials accepted"), "{out}");
    assert!(
        out.contains("OK   github: repository acme/widgets"),
        "{out}"
    );
    assert!(
        out.contains("FAIL jenkins: job widgets-merge: no such job"),
        "{out}"
    );
    assert!(
        out.contains(
            "FAIL jenkins: job widgets-test: no notification endpoint points at \
             http://127.0.0.1:9/build?builder=jenkins&token=***; missing parameters: SOURCE"
        ),
        "{out}"
    );
    assert!(
        out.contains("FAIL greg reachable at http://127.0.0.1:9"),
        "{out}"
    );

    // Bad credentials: GitHub answers 401.
    let config = s.config(Some("http://127.0.0.1:9"), "wrong-token")?;
    let path = config.to_string_lossy().into_owned();
    let (code, out) = greg(&["check-config", "--config", &path])?;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL github: credentials"), "{out}");
    assert!(out.contains("401"), "{out}");
    assert_no_secret(&out);

    // A configuration that does not parse: exit 2.
    std::fs::write(&config, "repos: [\n")?;
    let (code, _) = greg(&["check-config", "--config", &path])?;
    assert_eq!(code, 2);
    Ok(())
}

/// Answers every connection with `200 I am Greg`, like `GET /` of a running greg.
fn fake_greg() -> anyhow::Result<String> {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let body = "I am Greg (greg test)\n";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(url)
}

#[test]
fn check_config_passes_once_fix_hooks_ran_and_greg_answers() -> anyhow::Result<()> {
    let s = setup()?;
    // 120 repositories matching /^gad/: the organization listing takes two pages.
    for i in 0..119 {
        s.world
            .create_repo(&RepoName::new("acme", format!("gadget-{i:03}")))?;
    }
    let greg_url = fake_greg()?;
    let config = s.config(Some(&greg_url), GH_TOKEN)?;
    let path = config.to_string_lossy().into_owned();

    let (code, out) = greg(&["check-config", "--config", &path])?;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("OK   github: repos[0] /^gad/ in acme: 120 repositories"),
        "{out}"
    );
    assert!(out.contains("FAIL jenkins: job widgets-test: "), "{out}");
    assert!(
        out.contains(&format!("OK   greg reachable at {greg_url}")),
        "{out}"
    );

    let (code, out) = greg(&["fix-hooks", "--config", &path])?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("121 created, 2 updated"), "{out}");
    let (code, out) = greg(&["check-config", "--config", &path])?;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("OK   jenkins: job widgets-merge"), "{out}");
    Ok(())
}

#[test]
fn a_masked_secret_counts_as_set_until_rotate_secret() -> anyhow::Result<()> {
    let s = setup()?;
    let config = s.config(Some(GREG_URL), GH_TOKEN)?;
    let path = config.to_string_lossy().into_owned();
    let events = [
        "push",
        "pull_request",
        "pull_request_review",
        "issue_comment",
    ];
    let id = s
        .world
        .add_hook(&widgets(), &hook_url(), &events, Some("an-old-secret"))?;

    let (code, out) = greg(&["fix-hooks", "--config", &path])?;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        s.world.hooks(&widgets())[0].secret.as_deref(),
        Some("an-old-secret")
    );

    let (code, out) = greg(&["fix-hooks", "--rotate-secret", "--config", &path])?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("set secret"), "{out}");
    assert_no_secret(&out);
    let hooks = s.world.hooks(&widgets());
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].id, id);
    assert_eq!(hooks[0].secret.as_deref(), Some(HOOK_SECRET));
    Ok(())
}

#[test]
fn a_missing_job_fails_the_run_but_the_rest_is_fixed() -> anyhow::Result<()> {
    let s = setup()?;
    s.world
        .update(|st| st.jenkins.jobs.remove(&JobName::from("widgets-merge")));
    let config = s.config(Some(GREG_URL), GH_TOKEN)?;
    let path = config.to_string_lossy().into_owned();
    let (code, out) = greg(&["fix-hooks", "--config", &path])?;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("widgets-merge FAILED"), "{out}");
    assert!(!out.contains("note:"), "{out}");
    assert!(
        out.contains("2 created, 1 updated, 0 unchanged, 1 failed"),
        "{out}"
    );
    assert_eq!(s.world.hooks(&widgets()).len(), 1);
    Ok(())
}

/// A job greg wired when it lived on another host, with a token since rotated: greg's
/// endpoint (current `<urlInfo>` form) beside a chat tool's.
fn stale_job_xml() -> String {
    let endpoint = |url: &str, event: &str| {
        format!(
            "        <com.tikal.hudson.plugins.notification.Endpoint>\n          <protocol>HTTP</protocol>\n          <format>JSON</format>\n          <urlInfo>\n            <urlOrId>{url}</urlOrId>\n            <urlType>PUBLIC</urlType>\n          </urlInfo>\n          <event>{event}</event>\n          <timeout>30000</timeout>\n          <loglines>0</loglines>\n          <retries>0</retries>\n          <branch>.*</branch>\n        </com.tikal.hudson.plugins.notification.Endpoint>\n"
        )
    };
    format!(
        "<?xml version='1.1' encoding='UTF-8'?>\n<project>\n  <properties>\n    <com.tikal.hudson.plugins.notification.HudsonNotificationProperty>\n      <endpoints>\n{}{}      </endpoints>\n    </com.tikal.hudson.plugins.notification.HudsonNotificationProperty>\n  </properties>\n</project>\n",
        endpoint("https://chat.example.com/hooks/jenkins", "all"),
        endpoint(
            &format!(
                "http://old-greg.example.net:9000/build?builder=jenkins&amp;token={OLD_TOKEN}"
            ),
            "all"
        ),
    )
}

const OLD_TOKEN: &str = "old-jk-s3cret";

#[test]
fn a_stale_greg_endpoint_is_updated_not_duplicated() -> anyhow::Result<()> {
    let s = setup()?;
    s.world
        .set_config_xml(&JobName::from("widgets-merge"), &stale_job_xml())?;
    let config = s.config(Some(GREG_URL), GH_TOKEN)?;
    let path = config.to_string_lossy().into_owned();
    let spec = EndpointSpec::callback(GREG_URL, "jenkins", JK_INCOMING)?;

    // --dry-run: the diff moves the URL, with both tokens masked (numbered, as they differ).
    let (code, out) = greg(&["fix-hooks", "--dry-run", "--config", &path])?;
    assert_eq!(code, 0, "{out}");
    assert_no_secret(&out);
    assert!(!out.contains(OLD_TOKEN), "old token printed:\n{out}");
    assert!(
        out.contains(
            "-            <urlOrId>http://old-greg.example.net:9000/build?builder=jenkins&amp;token=***"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "+            <urlOrId>{GREG_URL}/build?builder=jenkins&amp;token=***"
        )),
        "{out}"
    );
    assert_eq!(s.job_xml("widgets-merge"), stale_job_xml());

    let (code, out) = greg(&["fix-hooks", "--config", &path])?;
    assert_eq!(code, 0, "{out}");
    assert_no_secret(&out);
    assert!(!out.contains(OLD_TOKEN), "old token printed:\n{out}");
    let summary = inspect(&s.job_xml("widgets-merge"))?;
    let urls: Vec<&str> = summary.endpoints.iter().map(|e| e.url.as_str()).collect();
    assert_eq!(
        urls,
        ["https://chat.example.com/hooks/jenkins", spec.url.as_str()],
        "exactly one greg endpoint, the chat tool's untouched"
    );
    assert_eq!(summary.problems(&spec), Vec::<String>::new());

    let (code, out) = greg(&["fix-hooks", "--config", &path])?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("4 unchanged"), "{out}");
    Ok(())
}

#[test]
fn a_stale_greg_webhook_on_an_old_host_is_updated_not_duplicated() -> anyhow::Result<()> {
    let s = setup()?;
    let config = s.config(Some(GREG_URL), GH_TOKEN)?;
    let path = config.to_string_lossy().into_owned();
    let stale = s.world.add_hook(
        &widgets(),
        "http://old-greg.example.net:9000/repo?provider=github&token=old-gh-s3cret",
        &["push"],
        None,
    )?;
    let twin = s.world.add_hook(
        &widgets(),
        "https://older-greg.example.org/ci/repo/?token=older&provider=github",
        &["push"],
        None,
    )?;
    let foreign = s.world.add_hook(
        &widgets(),
        "https://ci.example.org/repo?provider=gitlab",
        &["push"],
        None,
    )?;

    let (code, out) = greg(&["fix-hooks", "--config", &path])?;
    assert_eq!(code, 0, "{out}");
    assert_no_secret(&out);
    assert!(!out.contains("old-gh-s3cret"), "{out}");
    assert!(out.contains("deleted 1 duplicate(s)"), "{out}");
    let hooks = s.world.hooks(&widgets());
    let ids: Vec<u64> = hooks.iter().map(|h| h.id).collect();
    assert_eq!(ids, [stale, foreign], "{hooks:?}");
    assert!(!ids.contains(&twin));
    assert_eq!(hooks[0].url, hook_url());
    assert_eq!(hooks[0].secret.as_deref(), Some(HOOK_SECRET));
    assert_eq!(hooks[1].url, "https://ci.example.org/repo?provider=gitlab");
    Ok(())
}
