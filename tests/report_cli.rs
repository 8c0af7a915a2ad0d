//! `greg report` (SPEC §8), run as the real binary against a tiny recording HTTP server: the
//! defaults come from a Jenkins job's environment, the body carries the JUnit files (name and
//! XML) and the metadata directory, bad usage exits 2 naming the flag and its variable with
//! nothing sent, a refusal exits 1 with the server's reason and never the token, and a 503 is
//! retried.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOKEN: &str = "jenkins-incoming-s3cret";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// One request the server received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    /// Path and query, as on the request line.
    target: String,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// A server on loopback answering each request with the next of `answers` (the last one
/// repeats), recording what it receives.
struct Recorder {
    url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    fn start(answers: &[(u16, &str)]) -> std::io::Result<Recorder> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answers: Vec<(u16, String)> =
            answers.iter().map(|(s, b)| (*s, (*b).to_owned())).collect();
        let seen = requests.clone();
        std::thread::spawn(move || {
            for (i, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let answer = answers
                    .get(i)
                    .or(answers.last())
                    .cloned()
                    .unwrap_or((202, String::new()));
                if let Ok(request) = serve_one(stream, &answer)
                    && let Ok(mut all) = seen.lock()
                {
                    all.push(request);
                }
            }
        });
        Ok(Recorder { url, requests })
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Reads one HTTP/1.1 request (Content-Length body) and answers it, closing the connection.
fn serve_one(stream: TcpStream, (status, body): &(u16, String)) -> std::io::Result<Recorded> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut request_body = vec![0; length];
    reader.read_exact(&mut request_body)?;
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()?;
    Ok(Recorded {
        method,
        target,
        headers,
        body: request_body,
    })
}

/// A JUnit file of greg-report's test data.
fn junit_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/greg-report/tests/data/junit")
        .join(name)
}

/// A job's working directory with `reports/TEST-surefire.xml` in it.
fn workspace() -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("reports"))?;
    std::fs::copy(
        junit_data("surefire-TEST-surefire.MyTest.xml"),
        dir.path().join("reports/TEST-surefire.xml"),
    )?;
    Ok(dir)
}

/// The environment of a Jenkins job that greg started, pointing at `url`.
fn job_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SOURCE", "git@github.com:acme/widgets.git".to_owned()),
        ("COMMIT", SHA.to_owned()),
        ("PR", "12".to_owned()),
        ("JOB_NAME", "unit".to_owned()),
        ("BUILD_URL", "https://ci.example.com/job/unit/7/".to_owned()),
        ("GREG_URL", url.to_owned()),
        ("GREG_TOKEN", TOKEN.to_owned()),
    ]
}

/// Runs `greg report ARGS` in `dir` with exactly `env`.
fn greg_report(dir: &Path, env: &[(&str, String)], args: &[&str]) -> std::io::Result<Output> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_greg"));
    command
        .env_clear()
        .current_dir(dir)
        .arg("report")
        .args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn defaults_come_from_the_job_environment() -> TestResult {
    let server = Recorder::start(&[(202, "accepted")])?;
    let dir = workspace()?;
    let mut env = job_env(&server.url);
    // A results directory that does not exist, from the environment: ignored.
    env.push(("GREG_RESULTS_PATH", "/nonexistent/greg-results".to_owned()));
    let out = greg_report(
        dir.path(),
        &env,
        &["--status", "failure", "--junit", "reports/*.xml"],
    )?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.trim(),
        "greg report: unit (failure) sent for acme/widgets@0123456"
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.target,
        format!("/api/reports?builder=jenkins&token={TOKEN}")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json()?;
    let xml = std::fs::read_to_string(junit_data("surefire-TEST-surefire.MyTest.xml"))?;
    assert_eq!(
        body,
        serde_json::json!({
            "repo": "acme/widgets",
            "provider": null,
            "sha": SHA,
            "pr": 12,
            "job": "unit",
            "status": "failure",
            "build_url": "https://ci.example.com/job/unit/7/",
            "duration_ms": null,
            "summary_md": null,
            "junit": [{"name": "reports/TEST-surefire.xml", "xml": xml}],
            "metadata": {},
        })
    );
    // The server's own rules accept it.
    greg_report::parse_body(&r.body)?;
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
    Ok(())
}

#[test]
fn flags_win_and_the_metadata_directory_is_sent() -> TestResult {
    let server = Recorder::start(&[(202, "accepted")])?;
    let dir = workspace()?;
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results)?;
    std::fs::write(results.join("coverage.json"), r#"{"lines": 0.83}"#)?;
    std::fs::write(results.join("timings.json"), "[1, 2, 3]")?;
    std::fs::write(results.join("notes.txt"), "not json, not sent")?;
    std::fs::write(results.join(".hidden.json"), "not sent")?;
    std::fs::create_dir_all(results.join("nested"))?;
    std::fs::write(results.join("nested/deep.json"), "{}")?;
    std::fs::write(dir.path().join("summary.md"), "**2 failed**\n")?;
    std::fs::copy(
        junit_data("nextest-tests-junit.xml"),
        dir.path().join("reports/nextest.xml"),
    )?;
    let mut env = job_env(&server.url);
    env.push(("GREG_RESULTS_PATH", results.display().to_string()));
    // An empty variable counts as unset.
    env.retain(|(name, _)| *name != "PR");
    env.push(("PR", String::new()));
    let out = greg_report(
        dir.path(),
        &env,
        &[
            "--status",
            "success",
            "--sha",
            "abcdef1",
            "--job",
            "integration tests",
            "--repo",
            "Other/Thing",
            "--provider",
            "bitbucket",
            "--duration",
            "12.5",
            "--summary",
            "summary.md",
            "--junit",
            "reports/nextest.xml",
            "--junit",
            "reports/*.xml",
        ],
    )?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "greg report: integration tests (success) sent for Other/Thing@abcdef1"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let body = requests[0].json()?;
    assert_eq!(body["repo"], "Other/Thing");
    assert_eq!(body["provider"], "bitbucket");
    assert_eq!(body["sha"], "abcdef1");
    assert_eq!(body["pr"], serde_json::Value::Null);
    assert_eq!(body["duration_ms"], 12_500);
    assert_eq!(body["summary_md"], "**2 failed**\n");
    // Each file once, in the order the globs found them.
    let names: Vec<&str> = body["junit"]
        .as_array()
        .map(|a| a.iter().filter_map(|j| j["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["reports/nextest.xml", "reports/TEST-surefire.xml"]);
    assert_eq!(
        body["metadata"],
        serde_json::json!({"coverage.json": {"lines": 0.83}, "timings.json": [1, 2, 3]})
    );
    Ok(())
}

/// Runs a report that must exit 2 before sending anything; returns its stderr.
fn refused_locally(
    env: &[(&str, String)],
    args: &[&str],
) -> Result<String, Box<dyn std::error::Error>> {
    let server = Recorder::start(&[(202, "accepted")])?;
    let dir = workspace()?;
    let mut env = env.to_vec();
    for (name, value) in &mut env {
        if *name == "GREG_URL" {
            *value = server.url.clone();
        }
    }
    let out = greg_report(dir.path(), &env, args)?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(server.requests().is_empty(), "sent anyway: {stderr}");
    assert!(!stderr.contains(TOKEN));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    Ok(stderr)
}

#[test]
fn a_missing_sha_names_the_flag_and_its_variable() -> TestResult {
    let mut env = job_env("");
    env.retain(|(name, _)| *name != "COMMIT");
    let stderr = refused_locally(&env, &["--status", "success"])?;
    assert!(
        stderr.contains("--sha (or $COMMIT) is required"),
        "{stderr}"
    );
    let mut env = job_env("");
    env.retain(|(name, _)| *name != "GREG_TOKEN");
    let stderr = refused_locally(&env, &["--status", "success"])?;
    assert!(
        stderr.contains("--token (or $GREG_TOKEN) is required"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn a_glob_that_matches_nothing_is_an_error() -> TestResult {
    let stderr = refused_locally(
        &job_env(""),
        &["--status", "success", "--junit", "target/nextest/*.xml"],
    )?;
    assert!(
        stderr.contains("--junit `target/nextest/*.xml` matches no file"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn bad_files_and_values_are_refused_before_sending() -> TestResult {
    let env = job_env("");
    // Not UTF-8.
    let dir = workspace()?;
    let latin1 = dir.path().join("latin1.xml");
    std::fs::write(&latin1, b"<testsuite name=\"caf\xe9\"/>")?;
    let latin1 = latin1.display().to_string();
    let stderr = refused_locally(&env, &["--status", "success", "--junit", &latin1])?;
    assert!(
        stderr.contains(&format!("`{latin1}` is not UTF-8 text")),
        "{stderr}"
    );
    // A metadata file that is not JSON.
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results)?;
    std::fs::write(results.join("broken.json"), "{nope")?;
    let results = results.display().to_string();
    let stderr = refused_locally(&env, &["--status", "success", "--metadata-dir", &results])?;
    assert!(stderr.contains("broken.json` is not JSON"), "{stderr}");
    // A metadata directory given explicitly must exist.
    let stderr = refused_locally(
        &env,
        &["--status", "success", "--metadata-dir", "/nonexistent/greg"],
    )?;
    assert!(
        stderr.contains("--metadata-dir `/nonexistent/greg`"),
        "{stderr}"
    );
    // The server's rules, checked here: a sha that is not hex.
    let stderr = refused_locally(&env, &["--status", "success", "--sha", "not-a-sha"])?;
    assert!(
        stderr.contains("sha: \"not-a-sha\" is not 7 to 64 hex digits"),
        "{stderr}"
    );
    let stderr = refused_locally(&env, &["--status", "success", "--duration", "soon"])?;
    assert!(stderr.contains("--duration: `soon`"), "{stderr}");
    // Over 10 MiB in all.
    let big = dir.path().join("big.xml");
    std::fs::write(&big, "x".repeat(greg_report::MAX_BODY_BYTES))?;
    let big = big.display().to_string();
    let stderr = refused_locally(&env, &["--status", "success", "--junit", &big])?;
    assert!(stderr.contains("the report is 104"), "{stderr}");
    assert!(
        stderr.contains("more than the 10485760 (10 MiB)"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn a_refusal_exits_1_with_the_reason_and_without_the_token() -> TestResult {
    let server = Recorder::start(&[(401, &format!("wrong token {TOKEN}\nsecond line"))])?;
    let dir = workspace()?;
    let out = greg_report(dir.path(), &job_env(&server.url), &["--status", "error"])?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "greg refused the report: 401 Unauthorized wrong token ***"
    );
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
    // A refusal is not retried.
    assert_eq!(server.requests().len(), 1);
    Ok(())
}

#[test]
fn a_503_is_retried_until_accepted() -> TestResult {
    let server = Recorder::start(&[(503, "store unavailable"), (202, "accepted")])?;
    let dir = workspace()?;
    let out = greg_report(dir.path(), &job_env(&server.url), &["--status", "pending"])?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("unit (pending) sent for acme/widgets@0123456"));
    assert!(
        stderr.contains("503 Service Unavailable store unavailable"),
        "{stderr}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
    assert!(!stderr.contains(TOKEN));
    Ok(())
}

#[test]
fn an_unreachable_server_is_retried_then_exits_1_without_the_token() -> TestResult {
    // A port nobody listens on: bind one, then free it.
    let url = {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        format!("http://{}", listener.local_addr()?)
    };
    let dir = workspace()?;
    let out = greg_report(dir.path(), &job_env(&url), &["--status", "success"])?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("retrying").count(), 3, "{stderr}");
    assert!(stderr.contains("cannot reach greg at"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
    Ok(())
}

#[test]
fn help_documents_every_flag_and_its_variable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = greg_report(dir.path(), &[], &["--help"])?;
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for needle in [
        "--url",
        "$GREG_URL",
        "--token",
        "GREG_TOKEN",
        "--repo",
        "$SOURCE",
        "--provider",
        "--sha",
        "COMMIT",
        "--pr",
        "env: PR",
        "--job",
        "JOB_NAME",
        "--status",
        "--build-url",
        "BUILD_URL",
        "--duration",
        "--summary",
        "--junit",
        "--metadata-dir",
        "$GREG_RESULTS_PATH",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
    // `--url` still belongs to fix-hooks and report only.
    let out = Command::new(env!("CARGO_BIN_EXE_greg"))
        .env_clear()
        .current_dir(dir.path())
        .args(["check-config", "--url", "https://greg.example.com"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--url belongs to fix-hooks and report"));
    Ok(())
}
