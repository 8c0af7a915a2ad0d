//! End to end, a CI matrix (issue 10, "Done when"): several job scripts run the real `greg
//! report` binary at once, each with the environment of a Jenkins job greg started and only
//! `--status` and `--junit`, with real JUnit files written by other projects' tools; the pull
//! request on the fake GitHub ends with one correct comment. With `reports.store`, the JUnit
//! files are kept in the object store (a folder; moto's S3 when `GREG_TEST_S3_URL` is set) and
//! the comment's links fetch them.

use greg_core::{PrNumber, Sha};
use greg_testkit::tester::JENKINS_TOKEN;
use greg_testkit::{GregTester, TesterOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MARKER: &str = "<!-- greg:report -->";

fn junit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/greg-report/tests/data/junit")
}

/// One job of the matrix: its name, its result, and the JUnit file it wrote.
struct Job {
    name: &'static str,
    status: &'static str,
    junit: &'static str,
}

const MATRIX: [Job; 4] = [
    Job {
        name: "java-surefire",
        status: "failure",
        junit: "surefire-TEST-surefire.MyTest.xml",
    },
    Job {
        name: "rust-nextest",
        status: "success",
        junit: "nextest-tests-junit.xml",
    },
    Job {
        name: "python-pytest",
        status: "failure",
        junit: "pytest-report-tb-short.xml",
    },
    Job {
        name: "js-jest",
        status: "success",
        junit: "jest-junit.xml",
    },
];

/// Runs the matrix's jobs at once, each as a Jenkins job greg started would: its workspace
/// holds its JUnit file under `reports/`, and it calls `greg report` with Greg's parameters and
/// Jenkins' variables in its environment.
fn run_matrix(t: &GregTester, head: &Sha, work: &Path) -> anyhow::Result<Vec<Output>> {
    let mut children = Vec::new();
    for (n, job) in MATRIX.iter().enumerate() {
        let workspace = work.join(format!("ws-{n}"));
        std::fs::create_dir_all(workspace.join("reports"))?;
        std::fs::copy(
            junit_dir().join(job.junit),
            workspace.join("reports").join(job.junit),
        )?;
        let child = Command::new(env!("CARGO_BIN_EXE_greg"))
            .current_dir(&workspace)
            .args(["report", "--status", job.status, "--junit", "reports/*.xml"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GREG_URL", &t.url)
            .env("GREG_TOKEN", JENKINS_TOKEN)
            .env("SOURCE", "git@github.com:acme/demo.git")
            .env("COMMIT", head.as_str())
            .env("CONTEXT", "test")
            .env("BRANCH", "feature")
            .env("JOB_NAME", job.name)
            .env("BUILD_URL", format!("https://ci.example/job/{n}/1/"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        children.push(child);
    }
    let mut outputs = Vec::new();
    for child in children {
        outputs.push(child.wait_with_output()?);
    }
    Ok(outputs)
}

fn the_comment(t: &GregTester, pr: PrNumber) -> anyhow::Result<String> {
    let comments: Vec<String> = t
        .world
        .bot_comments(&t.repo, pr)
        .into_iter()
        .map(|c| c.body)
        .filter(|b| b.starts_with(MARKER))
        .collect();
    anyhow::ensure!(comments.len() == 1, "report comments: {comments:#?}");
    Ok(comments.into_iter().next().unwrap_or_default())
}

/// The `(text, url)` of every Markdown link `[text](<url>)` or `[text](url)` in `md`.
fn links(md: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = md;
    while let Some(start) = rest.find('[') {
        rest = &rest[start + 1..];
        let Some(close) = rest.find("](") else { break };
        let text = rest[..close].to_owned();
        rest = &rest[close + 2..];
        let (url, after) = if let Some(r) = rest.strip_prefix('<') {
            match r.find(">)") {
                Some(end) => (r[..end].to_owned(), &r[end + 2..]),
                None => break,
            }
        } else {
            match rest.find(')') {
                Some(end) => (rest[..end].to_owned(), &rest[end + 1..]),
                None => break,
            }
        };
        out.push((text, url));
        rest = after;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ci_matrix_calling_greg_report_ends_in_one_correct_comment() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let files = work.path().join("store");
    std::fs::create_dir_all(&files)?;
    // The repository entry is the last of config.yaml: the `reports:` section follows it.
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: format!(
            "reports:\n  store:\n    api: file\n    endpoint: {}\n",
            files.display()
        ),
        ..TesterOptions::default()
    })
    .await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    let outputs = tokio::task::block_in_place(|| run_matrix(&t, &head, work.path()))?;
    for (job, out) in MATRIX.iter().zip(&outputs) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}: {stderr}", job.name);
    }
    t.settle().await?;
    t.engine.wait_idle().await;

    let body = the_comment(&t, pr)?;
    assert!(
        body.contains(&format!("### ❌ CI failed · `{}`", head.short())),
        "{body}"
    );
    assert!(
        body.contains("**4 of 4 expected jobs reported.**"),
        "{body}"
    );
    for job in &MATRIX {
        let emoji = if job.status == "failure" {
            "❌"
        } else {
            "✅"
        };
        assert!(
            body.contains(&format!("| {} | {emoji} {} |", job.name, job.status)),
            "{}: {body}",
            job.name
        );
    }
    // Failed tests from both failing jobs, by name, with the job that ran them.
    assert!(body.contains("#### Failed tests"), "{body}");
    assert!(
        body.contains("java-surefire") && body.contains("python-pytest"),
        "{body}"
    );
    // Each job's JUnit file is linked from its row and reads back as the job wrote it.
    for job in &MATRIX {
        let (_, url) = links(&body)
            .into_iter()
            .find(|(text, _)| text == job.junit)
            .ok_or_else(|| anyhow::anyhow!("no link to {}: {body}", job.junit))?;
        let path = url::Url::parse(&url)?
            .to_file_path()
            .map_err(|()| anyhow::anyhow!("not a file link: {url}"))?;
        let kept = std::fs::read(path)?;
        assert_eq!(
            kept,
            std::fs::read(junit_dir().join(job.junit))?,
            "{}",
            job.name
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_files_on_s3_are_linked_with_presigned_urls_that_fetch_them() -> anyhow::Result<()> {
    let Ok(s3) = std::env::var("GREG_TEST_S3_URL") else {
        println!("skipped: GREG_TEST_S3_URL not set");
        return Ok(());
    };
    greg_testkit::install_crypto_provider();
    let http = reqwest::Client::new();
    let bucket = "greg-report-files";
    let status = http.put(format!("{s3}/{bucket}")).send().await?.status();
    assert!(status.is_success() || status == 409, "{status}");
    let work = tempfile::tempdir()?;
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: format!(
            "reports:\n  store:\n    api: s3\n    endpoint: {s3}\n    bucket: {bucket}\n    \
             prefix: e2e-{}\n    identity: testing\n    secret: testing\n    retention_days: 7\n",
            std::process::id()
        ),
        ..TesterOptions::default()
    })
    .await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    let outputs = tokio::task::block_in_place(|| run_matrix(&t, &head, work.path()))?;
    for out in &outputs {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    t.settle().await?;
    t.engine.wait_idle().await;
    let body = the_comment(&t, pr)?;
    for job in &MATRIX {
        let (_, url) = links(&body)
            .into_iter()
            .find(|(text, _)| text == job.junit)
            .ok_or_else(|| anyhow::anyhow!("no link to {}: {body}", job.junit))?;
        assert!(url.contains("X-Amz-Signature="), "presigned: {url}");
        let kept = http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        assert_eq!(
            kept.to_vec(),
            std::fs::read(junit_dir().join(job.junit))?,
            "{}",
            job.name
        );
    }
    Ok(())
}
