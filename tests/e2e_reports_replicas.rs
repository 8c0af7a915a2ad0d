//! The report comment with two greg processes on one PostgreSQL database (SPEC §8, issue 10
//! item 7): three jobs report at the same instant, spread over both processes, and the pull
//! request ends with exactly one comment showing the three; the same reports sent again, to
//! either process, edit nothing.
//!
//! Runs when `GREG_TEST_POSTGRES_URL` is set (.ci/run sets it when the machine's PostgreSQL
//! answers); each test works in a fresh schema, dropped at the end.

#[path = "common/pg_schema.rs"]
mod pg_schema;

use greg_core::{PrNumber, Sha};
use greg_testkit::tester::{JENKINS_TOKEN, tester_config_yaml};
use greg_testkit::{
    FakeGithub, FakeJenkins, GREG_PARAMETERS, NewPr, Outcome, Server, TesterOptions, World,
    fake_sha,
};
use pg_schema::Schema;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MARKER: &str = "<!-- greg:report -->";

/// A `greg serve` child, killed when dropped.
struct Greg {
    child: Child,
    url: String,
}

impl Drop for Greg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `greg serve` on `config`, logging to `log`, and waits for `/healthz`.
async fn start(
    config: &Path,
    log: &Path,
    port: u16,
    client: &reqwest::Client,
) -> anyhow::Result<Greg> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let child = Command::new(env!("CARGO_BIN_EXE_greg"))
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("GREG_CONFIG")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()?;
    let greg = Greg {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..1000 {
        if let Ok(r) = client.get(format!("{}/healthz", greg.url)).send().await
            && r.status().is_success()
        {
            return Ok(greg);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!(
        "greg did not start: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    )
}

fn junit(name: &str) -> anyhow::Result<Value> {
    let path = format!(
        "{}/crates/greg-report/tests/data/junit/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    Ok(json!({ "name": name, "xml": std::fs::read_to_string(path)? }))
}

fn report(sha: &Sha, pr: PrNumber, job: &str, status: &str, junit: Vec<Value>) -> Value {
    json!({
        "repo": "acme/demo", "sha": sha.as_str(), "pr": pr.0, "job": job, "status": status,
        "build_url": format!("https://ci.example/job/{job}/1/"), "junit": junit,
    })
}

async fn post(
    client: &reqwest::Client,
    greg: &Greg,
    body: &Value,
) -> anyhow::Result<(u16, String)> {
    let resp = client
        .post(format!(
            "{}/api/reports?builder=jenkins&token={JENKINS_TOKEN}",
            greg.url
        ))
        .json(body)
        .send()
        .await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

fn report_comments(world: &World, repo: &greg_core::RepoName, pr: PrNumber) -> Vec<String> {
    world
        .bot_comments(repo, pr)
        .into_iter()
        .filter(|c| c.body.starts_with(MARKER))
        .map(|c| c.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_jobs_reporting_at_once_to_two_replicas_give_one_comment() -> anyhow::Result<()> {
    let Ok(base) = std::env::var("GREG_TEST_POSTGRES_URL") else {
        println!("skipped: GREG_TEST_POSTGRES_URL not set");
        return Ok(());
    };
    greg_testkit::install_crypto_provider();
    let (schema, database) = Schema::create(&base).await?;
    let result = run(&database).await;
    schema.drop_now().await?;
    result
}

async fn run(database: &str) -> anyhow::Result<()> {
    let world = World::new("greg-bot");
    let github = FakeGithub::start(world.clone())?;
    let jenkins = FakeJenkins::start(world.clone())?;
    let opts = TesterOptions::default();
    let repo = opts.repo.clone();
    world.create_repo(&repo)?;
    world.create_job(greg_testkit::tester::TEST_JOB, GREG_PARAMETERS)?;
    world.create_job(greg_testkit::tester::MERGE_JOB, GREG_PARAMETERS)?;
    world.script_outcome(greg_testkit::tester::TEST_JOB, None, Outcome::Manual);
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "greg-replicas-{}-{}",
        std::process::id(),
        fake_sha("dir").short()
    ));
    std::fs::create_dir_all(&dir)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut gregs = Vec::new();
    for n in 0..2 {
        let port = free_port()?;
        let yaml = tester_config_yaml(&github.url, &jenkins.url, database, &opts)
            .replace("listen: 127.0.0.1:0", &format!("listen: 127.0.0.1:{port}"));
        let config = dir.join(format!("config-{n}.yaml"));
        std::fs::write(&config, yaml)?;
        let log = dir.join(format!("greg-{n}.log"));
        gregs.push((start(&config, &log, port, &client).await?, log));
    }
    let logs = || {
        gregs
            .iter()
            .map(|(_, log)| std::fs::read_to_string(log).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let (a, b) = (&gregs[0].0, &gregs[1].0);

    // Three pull requests, three jobs each, reports spread over both replicas at once.
    let mut prs = Vec::new();
    for n in 0..3 {
        let head = fake_sha(&format!("head-{n}"));
        let pr = world.open_pr(&repo, NewPr::new("carol", &format!("f{n}"), head.clone()))?;
        prs.push((pr.number, head));
    }
    let mut bodies = Vec::new();
    for (pr, head) in &prs {
        bodies.push(report(
            head,
            *pr,
            "unit",
            "failure",
            vec![junit("surefire-TEST-surefire.MyTest.xml")?],
        ));
        bodies.push(report(head, *pr, "lint", "success", vec![]));
        bodies.push(report(
            head,
            *pr,
            "python",
            "success",
            vec![junit("pytest-report-tb-short.xml")?],
        ));
    }
    let sends = bodies.iter().enumerate().map(|(i, body)| {
        let greg = if i % 2 == 0 { a } else { b };
        post(&client, greg, body)
    });
    for answer in futures::future::join_all(sends).await {
        let answer = answer?;
        assert_eq!(answer.0, 202, "{answer:?}");
    }

    // Each pull request's comment shows the three jobs.
    for (pr, _) in &prs {
        let mut waited = 0;
        loop {
            let comments = report_comments(&world, &repo, *pr);
            let done = comments.iter().any(|c| {
                c.contains("| unit |") && c.contains("| lint |") && c.contains("| python |")
            });
            if done {
                break;
            }
            anyhow::ensure!(waited < 600, "#{pr}: comments {comments:#?}\n{}", logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
    }
    // Longer than a lease and a sweep: nothing more happens (no second comment, no edit).
    let edits = || {
        world
            .requests_matching(Server::Github, "PATCH", r"/issues/comments/\d+$")
            .len()
    };
    let settled_edits = edits();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (pr, _) in &prs {
        let comments = report_comments(&world, &repo, *pr);
        assert_eq!(comments.len(), 1, "#{pr}: {comments:#?}\n{}", logs());
        assert!(
            comments[0].contains("**3 of 3 expected jobs reported.**"),
            "{}",
            comments[0]
        );
    }
    assert_eq!(edits(), settled_edits);
    // Both replicas accepted reports (the inbox of each took its share); the replica holding
    // the repository's lease processed them all.
    for (_, log) in &gregs {
        let text = std::fs::read_to_string(log)?;
        assert!(text.contains("Report answered"), "{}", logs());
    }

    // The same reports again, each to the other replica: duplicates, no edit.
    for (i, body) in bodies.iter().enumerate() {
        let greg = if i % 2 == 0 { b } else { a };
        let (status, answer) = post(&client, greg, body).await?;
        assert_eq!(
            (status, answer.trim()),
            (202, "duplicate: this delivery was already accepted")
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(edits(), settled_edits);
    for (pr, _) in &prs {
        assert_eq!(report_comments(&world, &repo, *pr).len(), 1);
    }
    drop(gregs);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
