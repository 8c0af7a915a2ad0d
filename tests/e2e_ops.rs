//! Operations on the real `greg` binary (SPEC §7, §11): a configuration greg cannot run exits
//! 2; SIGTERM under load drains the current step, exits 0 and loses nothing (a restart on the
//! same SQLite file processes every accepted delivery exactly once); `greg redeliver` runs a
//! dead letter again through the admin API.

#[path = "common/greg_rig.rs"]
mod greg_rig;

use greg_rig::Rig;
use greg_testkit::{HoldMode, Server, TesterOptions};
use std::process::Command;
use std::time::Duration;

const ADMIN_TOKEN: &str = "adm1n-t0ken";

/// A rig for greg in builder mode with an admin token and a 20-second shutdown grace.
fn ops_rig(name: &str) -> anyhow::Result<Rig> {
    Rig::with_server_yaml(
        name,
        TesterOptions::default(),
        &format!("  admin_token: {ADMIN_TOKEN}\n  shutdown_grace_secs: 20\n"),
    )
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
    let rig = ops_rig("sigterm")?;
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
    let rig = ops_rig("redeliver")?;
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
