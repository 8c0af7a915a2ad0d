//! Operations on the real `greg` binary (SPEC §7, §11): a configuration greg cannot run exits
//! 2; SIGTERM under load drains the current step, exits 0 and loses nothing (a restart on the
//! same SQLite file processes every accepted delivery exactly once); `greg redeliver` runs a
//! dead letter again through the admin API.

use greg_core::{Permission, PrNumber, RepoName};
use greg_testkit::tester::{
    GITHUB_TOKEN, JENKINS_TOKEN, MERGE_JOB, TEST_JOB, WEBHOOK_SECRET, tester_config_yaml,
};
use greg_testkit::{
    FakeGithub, FakeJenkins, GREG_PARAMETERS, HoldMode, NewPr, Outcome, Server, TesterOptions,
    World, fake_sha,
};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ADMIN_TOKEN: &str = "adm1n-t0ken";

/// A `greg serve` child process.
struct Greg {
    child: Child,
    url: String,
}

impl Greg {
    /// Sends SIGTERM and waits (at most 30 s) for the exit code.
    fn terminate(mut self) -> anyhow::Result<Option<i32>> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid} failed");
        for _ in 0..3000 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        anyhow::bail!("greg did not exit within 30 s of SIGTERM")
    }
}

impl Drop for Greg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fakes, the configuration file and the database greg restarts on.
struct Rig {
    world: World,
    _github: FakeGithub,
    _jenkins: FakeJenkins,
    repo: RepoName,
    dir: PathBuf,
    config: PathBuf,
    database: String,
    log: PathBuf,
    client: reqwest::Client,
    port: u16,
}

impl Rig {
    fn new(name: &str) -> anyhow::Result<Self> {
        greg_testkit::install_crypto_provider();
        let world = World::new("greg-bot");
        let github = FakeGithub::start(world.clone())?;
        let jenkins = FakeJenkins::start(world.clone())?;
        let opts = TesterOptions::default();
        let repo = opts.repo.clone();
        world.create_repo(&repo)?;
        world.create_job(TEST_JOB, GREG_PARAMETERS)?;
        world.create_job(MERGE_JOB, GREG_PARAMETERS)?;
        world.set_jenkins_credentials(Some(("greg", "jenkins-api-token")));
        world.script_outcome(TEST_JOB, None, Outcome::Manual);
        world.script_outcome(MERGE_JOB, None, Outcome::Manual);
        world.set_permission(&repo, "alice", Permission::Write)?;
        let dir = std::env::temp_dir().join(format!(
            "greg-ops-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let database = format!("sqlite://{}", dir.join("greg.db").display());
        let yaml = tester_config_yaml(&github.url, &jenkins.url, &database, &opts)
            .replace("listen: 127.0.0.1:0", &format!("listen: 127.0.0.1:{port}"))
            .replacen(
                "server:\n",
                &format!(
                    "server:\n  admin_token: {ADMIN_TOKEN}\n  public_url: http://127.0.0.1:{port}\n  shutdown_grace_secs: 20\n"
                ),
                1,
            );
        let config = dir.join("config.yaml");
        std::fs::write(&config, yaml)?;
        world.set_notification_url(Some(&format!(
            "http://127.0.0.1:{port}/build?builder=jenkins&token={JENKINS_TOKEN}"
        )));
        Ok(Self {
            world,
            _github: github,
            _jenkins: jenkins,
            repo,
            log: dir.join("greg.log"),
            dir,
            config,
            database,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            port,
        })
    }

    /// Starts `greg serve` and waits until `/healthz` answers.
    async fn start_greg(&self) -> anyhow::Result<Greg> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_greg"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env_remove("GREG_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let greg = Greg {
            child,
            url: format!("http://127.0.0.1:{}", self.port),
        };
        for _ in 0..500 {
            if let Ok(r) = self
                .client
                .get(format!("{}/healthz", greg.url))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(greg);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("greg did not start; log: {}", self.log_text())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Posts a comment as `author` and delivers its webhook; checks the 202.
    async fn comment(
        &self,
        greg: &Greg,
        pr: PrNumber,
        author: &str,
        body: &str,
    ) -> anyhow::Result<()> {
        let c = self.world.comment(&self.repo, pr, author, body)?;
        let d = self.world.comment_webhook(&self.repo, &c)?;
        let url = format!("{}/repo?provider=github&token={GITHUB_TOKEN}", greg.url);
        let resp = d.send(&self.client, &url, Some(WEBHOOK_SECRET)).await?;
        anyhow::ensure!(
            resp.status().as_u16() == 202,
            "greg answered {}",
            resp.status()
        );
        Ok(())
    }

    fn open_pr(&self) -> anyhow::Result<PrNumber> {
        Ok(self
            .world
            .open_pr(
                &self.repo,
                NewPr::new("carol", "feature", fake_sha("feature-1")),
            )?
            .number)
    }

    fn bot_comments(&self, pr: PrNumber) -> Vec<String> {
        self.world
            .bot_comments(&self.repo, pr)
            .into_iter()
            .map(|c| c.body)
            .collect()
    }

    /// Waits until greg has posted `n` comments on `pr`.
    async fn wait_comments(&self, pr: PrNumber, n: usize) -> anyhow::Result<()> {
        for _ in 0..1500 {
            if self.bot_comments(pr).len() >= n {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!(
            "greg posted {} comments, not {n}; log: {}",
            self.bot_comments(pr).len(),
            self.log_text()
        )
    }

    /// Runs `greg` with `args` and this rig's configuration; returns (exit code, stdout, stderr).
    fn greg(&self, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
        let out = Command::new(env!("CARGO_BIN_EXE_greg"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("GREG_CONFIG")
            .env("RUST_LOG", "warn")
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn serve_exits_2_on_a_configuration_greg_cannot_run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config.yaml");
    // Valid YAML and keys, but test_merged needs staging refs, which Bitbucket lacks: found
    // when the adapters start, before any network access.
    std::fs::write(
        &config,
        r#"server:
  listen: 127.0.0.1:0
  database: "sqlite::memory:"
providers:
  bitbucket:
    flavor: server
    username: greg-bot
    password: bb-secret-password
    incoming_token: bb-incoming
    source: "ssh://git@bitbucket.example.com/"
    api_url: http://127.0.0.1:9
builders:
  jenkins:
    url: http://127.0.0.1:9
    username: greg
    password: jenkins-secret
    incoming_token: jk-incoming
repos:
  - provider: bitbucket
    organizations: [ACME]
    names: [demo]
    jobs:
      test: {name: demo-test, builder: jenkins}
    test_merged: true
"#,
    )?;
    let out = Command::new(env!("CARGO_BIN_EXE_greg"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("GREG_CONFIG")
        .env("RUST_LOG", "warn")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("test_merged"), "{text}");
    for secret in ["bb-secret-password", "bb-incoming", "jenkins-secret"] {
        assert!(!text.contains(secret), "{text}");
    }
    Ok(())
}

#[test]
fn serve_exits_2_when_one_repository_is_configured_on_two_providers() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config.yaml");
    // greg keys a repository by owner/name: acme/demo on GitHub and ACME/demo on Bitbucket
    // would share builds, approvals and queue entries.
    std::fs::write(
        &config,
        r#"server:
  listen: 127.0.0.1:0
  database: "sqlite::memory:"
providers:
  github:
    username: greg-bot
    password: gh-secret-token
    incoming_token: gh-incoming
    source: "git@github.com:"
    api_url: http://127.0.0.1:9
  bitbucket:
    flavor: server
    username: greg-bot
    password: bb-secret-password
    incoming_token: bb-incoming
    source: "ssh://git@bitbucket.example.com/"
    api_url: http://127.0.0.1:9
repos:
  - provider: github
    organizations: [acme]
    names: [demo]
  - provider: bitbucket
    organizations: [ACME]
    names: [demo]
"#,
    )?;
    let out = Command::new(env!("CARGO_BIN_EXE_greg"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("GREG_CONFIG")
        .env("RUST_LOG", "warn")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("repos[1].names"), "{text}");
    assert!(
        text.contains("also configured for provider github"),
        "{text}"
    );
    for secret in [
        "gh-secret-token",
        "bb-secret-password",
        "bb-incoming",
        "gh-incoming",
    ] {
        assert!(!text.contains(secret), "{text}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_0_and_a_restart_processes_every_delivery_once()
-> anyhow::Result<()> {
    const N: usize = 30;
    let rig = Rig::new("sigterm")?;
    let pr = rig.open_pr()?;
    let greg = rig.start_greg().await?;
    // The first answer greg posts is held: its lane is busy when SIGTERM arrives, with every
    // later delivery accepted and waiting.
    let hold = rig.world.hold_next(
        Server::Github,
        "POST",
        r"/issues/\d+/comments$",
        HoldMode::Apply,
    )?;
    for i in 0..N {
        rig.comment(&greg, pr, "carol", &format!("@greg help\n\n(#{i})"))
            .await?;
    }
    rig.world.wait_held(hold, Duration::from_secs(30)).await?;
    let pid = greg.child.id();
    let release = {
        let world = rig.world.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            world.release(hold);
        })
    };
    let code = tokio::task::spawn_blocking(move || greg.terminate()).await??;
    release.await?;
    assert_eq!(code, Some(0), "log: {}", rig.log_text());
    let log = rig.log_text();
    assert!(log.contains("Shutting down"), "{log}");
    assert!(log.contains("Engine drained"), "{log}");
    let before = rig.bot_comments(pr).len();
    assert!(
        before < N,
        "SIGTERM came while deliveries were waiting ({before} done)"
    );

    // Nothing accepted was lost: the restart runs the rest, each delivery once.
    let greg = rig.start_greg().await?;
    rig.wait_comments(pr, N).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let comments = rig.bot_comments(pr);
    assert_eq!(comments.len(), N, "pid {pid}: {comments:#?}");
    assert_eq!(greg.terminate()?, Some(0));

    let store = greg_store::Store::connect(&rig.database).await?;
    assert_eq!(store.pending_deliveries(100).await?, []);
    assert_eq!(store.failed_deliveries(100).await?, []);
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greg_redeliver_runs_a_dead_letter_again() -> anyhow::Result<()> {
    let rig = Rig::new("redeliver")?;
    let pr = rig.open_pr()?;
    let greg = rig.start_greg().await?;
    // GitHub refuses greg's credentials once (401: not retryable): "@greg ok" is
    // dead-lettered, and alice is told.
    rig.world.fail_next(
        Server::Github,
        "/collaborators/alice/permission$",
        401,
        None,
    )?;
    rig.comment(&greg, pr, "alice", "@greg ok").await?;
    rig.wait_comments(pr, 1).await?;
    assert!(rig.bot_comments(pr)[0].contains("could not carry out"));

    let failed: serde_json::Value = rig
        .client
        .get(format!("{}/api/deliveries?state=failed", greg.url))
        .send()
        .await?
        .json()
        .await?;
    let seq = failed["deliveries"][0]["seq"].as_i64().unwrap_or_default();
    assert!(seq > 0, "{failed}");

    let url = format!("{}/api/deliveries/{seq}/redeliver", greg.url);
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(rig.client.post(&url).send().await?), 401);
    assert_eq!(
        status(rig.client.post(&url).bearer_auth("wrong").send().await?),
        401
    );
    let unknown = format!("{}/api/deliveries/999999/redeliver", greg.url);
    assert_eq!(
        status(
            rig.client
                .post(&unknown)
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await?
        ),
        404
    );

    if std::env::var_os("GREG_PRINT_API").is_some() {
        let r = rig
            .client
            .post(&url)
            .bearer_auth("wrong")
            .send()
            .await?
            .text()
            .await?;
        println!("POST {url} (wrong token)\n{r}");
    }
    let seq_arg = seq.to_string();
    let (code, out, err) = rig.greg(&["redeliver", &seq_arg])?;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), format!("{seq}: redelivered"));
    rig.wait_comments(pr, 2).await?;
    assert!(rig.bot_comments(pr)[1].contains("Not ready to merge"));

    // Not failed any more: 409, exit 1. Bad usage: exit 2.
    let (code, out, err) = rig.greg(&["redeliver", &seq_arg])?;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("409"), "{out}");
    let (code, _, err) = rig.greg(&["redeliver", "abc"])?;
    assert_eq!(code, 2, "{err}");
    for text in [&out, &err, &rig.log_text()] {
        assert!(!text.contains(ADMIN_TOKEN), "{text}");
    }
    assert_eq!(greg.terminate()?, Some(0));
    Ok(())
}
