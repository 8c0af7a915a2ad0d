//! `greg report` (SPEC §8): runs inside a CI job and sends that job's result to greg's server,
//! `POST {url}/api/reports?builder=jenkins&token=<token>`, with the JSON body of
//! [`greg_report::ReportBody`], so CI jobs never hold a provider token.
//!
//! Every flag but `--status` has a default from the environment of a Jenkins job that greg
//! started (`$GREG_URL`, `$GREG_TOKEN`, `$SOURCE`, `$COMMIT`, `$PR`, `$JOB_NAME`,
//! `$BUILD_URL`, `$GREG_RESULTS_PATH`); an empty variable counts as unset. The body is
//! checked with [`greg_report::parse_body`], the server's own rules, before anything is sent.
//!
//! Exit codes (SPEC §7): 0 the server accepted the report (2xx); 2 bad usage, a missing
//! value, an unreadable file or a body the server would refuse (nothing is sent); 1 the
//! server refused it (4xx) or could not be reached (after retrying 5xx, 429 and connection
//! errors 3 times, 0.5 s, 1 s and 2 s apart). The token is never printed: URLs in messages
//! lose their query string.

use greg_report::{JobStatus, JunitFile, MAX_BODY_BYTES, ReportBody};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The builder name in the query: the token is `builders.jenkins.incoming_token`.
const BUILDER: &str = "jenkins";

/// The request timeout, per attempt.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Waits before the retries of a 5xx, 429 or connection error.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// `greg report`'s own flags; `--url` is the global flag of [`crate::cli::Cli`].
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The builder's incoming token (builders.jenkins.incoming_token).
    #[arg(long, value_name = "T", env = "GREG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// The repository, OWNER/NAME [default: the last two path segments of $SOURCE, the git URL
    /// greg passed to the job].
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,

    /// The repository's provider [default: the only one greg has configured].
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,

    /// The commit the job built.
    #[arg(long, value_name = "SHA", env = "COMMIT")]
    pub sha: Option<String>,

    /// The pull request number [default: greg finds the open pull requests whose head is
    /// SHA].
    #[arg(long, value_name = "N", env = "PR")]
    pub pr: Option<String>,

    /// The job's name in the report comment.
    #[arg(long, value_name = "NAME", env = "JOB_NAME")]
    pub job: Option<String>,

    /// The job's result.
    #[arg(long, value_enum)]
    pub status: StatusArg,

    /// Link to the job's build page.
    #[arg(long, value_name = "URL", env = "BUILD_URL")]
    pub build_url: Option<String>,

    /// How long the job took, in seconds (a fraction is allowed: 12.5).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<String>,

    /// A Markdown file shown under the job in the report comment.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,

    /// JUnit XML reports: a file or a glob (`target/nextest/**/junit.xml`); repeatable. A glob
    /// that matches no file is an error.
    #[arg(long, value_name = "GLOB")]
    pub junit: Vec<String>,

    /// A directory whose `*.json` files are kept with the report, by file name [default:
    /// $GREG_RESULTS_PATH, ignored when that directory does not exist].
    #[arg(long, value_name = "DIR")]
    pub metadata_dir: Option<PathBuf>,
}

/// `--provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderArg {
    /// GitHub.
    Github,
    /// Bitbucket (Cloud or Server).
    Bitbucket,
}

/// `--status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    /// The job passed.
    Success,
    /// The job ran and failed (tests, lints).
    Failure,
    /// The job could not run (infrastructure, setup).
    Error,
    /// The job has started and not finished.
    Pending,
}

impl From<StatusArg> for JobStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Success => JobStatus::Success,
            StatusArg::Failure => JobStatus::Failure,
            StatusArg::Error => JobStatus::Error,
            StatusArg::Pending => JobStatus::Pending,
        }
    }
}

/// A report ready to send: where, with which token, and the serialized body.
#[derive(Debug)]
struct Prepared {
    /// `{url}/api/reports`, without a query.
    endpoint: reqwest::Url,
    /// The builder's token, for the query only.
    token: String,
    /// The body as parsed back by [`greg_report::parse_body`].
    body: ReportBody,
    /// The JSON sent.
    bytes: Vec<u8>,
}

/// Bad usage or input: the one-line reason; exit 2, nothing sent.
#[derive(Debug)]
struct UsageError(String);

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// Runs `greg report` with `url` from the global `--url` flag; returns the exit code.
pub async fn run(args: &Args, url: Option<&str>) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let prepared = match prepare(args, url, &env) {
        Ok(p) => p,
        Err(UsageError(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    send(&prepared).await
}

/// `value` unless it is empty (an empty environment variable counts as unset).
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// A required value: `flag` or its environment variable `var`.
fn required(value: Option<&String>, flag: &str, var: &str) -> Result<String, UsageError> {
    match value.filter(|v| !v.trim().is_empty()) {
        Some(v) => Ok(v.trim().to_owned()),
        None => Err(usage(format!("{flag} (or ${var}) is required"))),
    }
}

/// Gathers the flags, the environment (`env`) and the files into a checked body.
fn prepare(
    args: &Args,
    url: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Prepared, UsageError> {
    let url = present(url.map(str::to_owned)).or_else(|| present(env("GREG_URL")));
    let endpoint = endpoint(url.as_ref())?;
    let token = required(args.token.as_ref(), "--token", "GREG_TOKEN")?;
    let repo = match present(args.repo.clone()) {
        Some(repo) => repo.trim().to_owned(),
        None => {
            let source = required(env("SOURCE").as_ref(), "--repo", "SOURCE")?;
            // $SOURCE may carry credentials (https://user:token@host/...): never quoted.
            repo_from_source(&source).ok_or_else(|| {
                usage("cannot tell OWNER/NAME from $SOURCE (its path has fewer than two parts); pass --repo OWNER/NAME")
            })?
        }
    };
    let sha = required(args.sha.as_ref(), "--sha", "COMMIT")?;
    let pr = match present(args.pr.clone()) {
        None => None,
        Some(pr) => Some(pr.trim().parse::<u64>().map_err(|_| {
            usage(format!(
                "--pr (or $PR): `{pr}` is not a pull request number"
            ))
        })?),
    };
    let job = required(args.job.as_ref(), "--job", "JOB_NAME")?;
    let duration_ms = args.duration.as_deref().map(duration_ms).transpose()?;
    let summary_md = args.summary.as_deref().map(read_summary).transpose()?;
    let junit = junit_files(&args.junit)?;
    let metadata = match (&args.metadata_dir, present(env("GREG_RESULTS_PATH"))) {
        (Some(dir), _) => metadata(dir)?,
        (None, Some(dir)) if Path::new(&dir).is_dir() => metadata(Path::new(&dir))?,
        (None, _) => BTreeMap::new(),
    };
    let body = ReportBody {
        repo,
        provider: args.provider.map(|p| match p {
            ProviderArg::Github => "github".to_owned(),
            ProviderArg::Bitbucket => "bitbucket".to_owned(),
        }),
        sha,
        pr,
        job,
        status: args.status.into(),
        build_url: present(args.build_url.clone()).map(|u| u.trim().to_owned()),
        duration_ms,
        summary_md,
        junit,
        metadata,
    };
    let bytes = serde_json::to_vec(&body)
        .map_err(|e| usage(format!("cannot serialize the report: {e}")))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(usage(format!(
            "the report is {} bytes, more than the {MAX_BODY_BYTES} (10 MiB) greg accepts; send \
             fewer or smaller --junit files",
            bytes.len()
        )));
    }
    let body = greg_report::parse_body(&bytes).map_err(|e| usage(e.to_string()))?;
    Ok(Prepared {
        endpoint,
        token,
        body,
        bytes,
    })
}

/// `{url}/api/reports` for greg's base URL `url` (http or https).
fn endpoint(url: Option<&String>) -> Result<reqwest::Url, UsageError> {
    let url = url.ok_or_else(|| usage("--url (or $GREG_URL) is required"))?;
    let base = reqwest::Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| usage("--url (or $GREG_URL): not an absolute http(s) URL"))?;
    let mut endpoint = base;
    endpoint.set_query(None);
    endpoint.set_fragment(None);
    let path = format!("{}/api/reports", endpoint.path().trim_end_matches('/'));
    endpoint.set_path(&path);
    Ok(endpoint)
}

/// OWNER/NAME from a git URL (`$SOURCE`): the last two segments of its path, `.git` removed.
/// `git@github.com:acme/widgets.git`, `https://github.com/acme/widgets.git`,
/// `ssh://git@bitbucket.example:7999/proj/repo.git` and
/// `https://bitbucket.example/scm/PROJ/repo.git` give `acme/widgets`, `proj/repo`,
/// `PROJ/repo`. `None` when the path has fewer than two segments.
pub fn repo_from_source(source: &str) -> Option<String> {
    let source = source.trim();
    let path = match source.split_once("://") {
        // scheme://[user@]host[:port]/path
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
        // [user@]host:path (scp-like), or a local path.
        None => match source.split_once(':') {
            Some((_, path)) => path,
            None => source,
        },
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let mut segments = path.split('/').filter(|s| !s.is_empty()).rev();
    let (Some(name), Some(owner)) = (segments.next(), segments.next()) else {
        return None;
    };
    Some(format!("{owner}/{name}"))
}

/// `--duration SECS` (integer or fraction, not negative) in milliseconds.
fn duration_ms(text: &str) -> Result<u64, UsageError> {
    let secs: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1e12)
        .ok_or_else(|| usage(format!("--duration: `{text}` is not a number of seconds")))?;
    // Bounded above, so the cast cannot saturate.
    Ok((secs * 1000.0).round() as u64)
}

/// Reads `path` as UTF-8 text; errors name `what` and the path.
fn read_text(path: &Path, what: &str) -> Result<String, UsageError> {
    let bytes = std::fs::read(path)
        .map_err(|e| usage(format!("{what} `{}`: cannot read it: {e}", path.display())))?;
    String::from_utf8(bytes)
        .map_err(|_| usage(format!("{what} `{}` is not UTF-8 text", path.display())))
}

/// `--summary FILE`.
fn read_summary(path: &Path) -> Result<String, UsageError> {
    read_text(path, "--summary")
}

/// Every file the `--junit` globs match, in glob order, each once, named by its path as
/// matched.
fn junit_files(patterns: &[String]) -> Result<Vec<JunitFile>, UsageError> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut files = Vec::new();
    for pattern in patterns {
        let paths = glob::glob(pattern)
            .map_err(|e| usage(format!("--junit `{pattern}` is not a valid glob: {e}")))?;
        let mut matched = false;
        for path in paths {
            let path = path.map_err(|e| {
                usage(format!(
                    "--junit `{pattern}`: cannot read `{}`: {}",
                    e.path().display(),
                    e.error()
                ))
            })?;
            if !path.is_file() {
                continue;
            }
            matched = true;
            if seen.contains(&path) {
                continue;
            }
            let xml = read_text(&path, "--junit")?;
            files.push(JunitFile::Named {
                name: path.display().to_string(),
                xml,
            });
            seen.push(path);
        }
        if !matched {
            return Err(usage(format!("--junit `{pattern}` matches no file")));
        }
    }
    Ok(files)
}

/// Every `*.json` file directly in `dir` (not hidden ones), parsed, by file name.
fn metadata(dir: &Path) -> Result<BTreeMap<String, serde_json::Value>, UsageError> {
    let shown = dir.display();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| usage(format!("--metadata-dir `{shown}`: cannot read it: {e}")))?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| usage(format!("--metadata-dir `{shown}`: cannot read it: {e}")))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !name.ends_with(".json") || name.starts_with('.') || !path.is_file() {
            continue;
        }
        let text = read_text(&path, "--metadata-dir file")?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            usage(format!(
                "--metadata-dir: `{}` is not JSON: {e}",
                path.display()
            ))
        })?;
        out.insert(name, value);
    }
    Ok(out)
}

/// What one attempt came to.
enum Attempt {
    /// 2xx.
    Accepted,
    /// 4xx other than 429: the status and the first line of the answer.
    Refused(String),
    /// 5xx, 429 or a connection error: worth another try.
    Retry(String),
}

/// Posts the report, retrying per [`BACKOFF`]; prints the outcome and returns the exit code.
async fn send(p: &Prepared) -> ExitCode {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot start an HTTP client: {}", e.without_url());
            return ExitCode::from(1);
        }
    };
    let mut waits = BACKOFF.iter();
    loop {
        match attempt(&client, p).await {
            Attempt::Accepted => {
                let b = &p.body;
                let short: String = b.sha.chars().take(7).collect();
                println!(
                    "greg report: {} ({}) sent for {}@{short}",
                    b.job, b.status, b.repo
                );
                return ExitCode::SUCCESS;
            }
            Attempt::Refused(reason) => {
                eprintln!("greg refused the report: {reason}");
                return ExitCode::from(1);
            }
            Attempt::Retry(reason) => match waits.next() {
                Some(wait) => {
                    eprintln!("greg report: {reason}; retrying in {} ms", wait.as_millis());
                    tokio::time::sleep(*wait).await;
                }
                None => {
                    eprintln!("error: the report was not sent: {reason}");
                    return ExitCode::from(1);
                }
            },
        }
    }
}

/// One POST.
async fn attempt(client: &reqwest::Client, p: &Prepared) -> Attempt {
    let response = client
        .post(p.endpoint.clone())
        .query(&[("builder", BUILDER), ("token", p.token.as_str())])
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(p.bytes.clone())
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Retry(format!(
                "cannot reach greg at {}: {}",
                shown(&p.endpoint),
                error_chain(&e.without_url())
            ));
        }
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Accepted;
    }
    let text = response.text().await.unwrap_or_default();
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    let mut reason = match first {
        Some(line) => format!("{status} {}", line.chars().take(300).collect::<String>()),
        None => status.to_string(),
    };
    if !p.token.is_empty() {
        reason = reason.replace(&p.token, "***");
    }
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Attempt::Retry(format!("greg answered {reason}"))
    } else {
        Attempt::Refused(reason)
    }
}

/// `url` for messages: without credentials, query or fragment.
fn shown(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// An error and its sources on one line (`error sending request: connection refused`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_comes_from_the_last_two_segments_of_source() {
        for (source, want) in [
            ("git@github.com:acme/widgets.git", Some("acme/widgets")),
            ("https://github.com/acme/widgets.git", Some("acme/widgets")),
            ("https://github.com/acme/widgets", Some("acme/widgets")),
            (
                "ssh://git@bitbucket.example:7999/proj/repo.git",
                Some("proj/repo"),
            ),
            (
                "https://bitbucket.example/scm/PROJ/repo.git",
                Some("PROJ/repo"),
            ),
            ("https://github.com/acme/widgets.git/", Some("acme/widgets")),
            ("git@github.com:widgets.git", None),
            ("https://github.com/", None),
            ("", None),
        ] {
            assert_eq!(repo_from_source(source).as_deref(), want, "{source}");
        }
    }

    #[test]
    fn durations_are_seconds_to_milliseconds() {
        assert_eq!(duration_ms("12").ok(), Some(12_000));
        assert_eq!(duration_ms("1.5").ok(), Some(1_500));
        assert_eq!(duration_ms(" 0.0004 ").ok(), Some(0));
        for bad in ["-1", "NaN", "inf", "12s", ""] {
            let err = duration_ms(bad).err().map(|e| e.0);
            assert_eq!(
                err,
                Some(format!("--duration: `{bad}` is not a number of seconds"))
            );
        }
    }

    #[test]
    fn the_endpoint_drops_query_and_trailing_slash() {
        let url = |u: &str| endpoint(Some(&u.to_owned())).map(|e| e.to_string());
        assert_eq!(
            url("https://greg.example.com/").ok().as_deref(),
            Some("https://greg.example.com/api/reports")
        );
        assert_eq!(
            url("http://127.0.0.1:8080/greg?token=x").ok().as_deref(),
            Some("http://127.0.0.1:8080/greg/api/reports")
        );
        assert!(url("ftp://greg.example.com").is_err());
        let with_credentials = endpoint(Some(&"https://ci:pw@greg.example.com".to_owned()));
        assert_eq!(
            with_credentials.ok().map(|u| shown(&u)).as_deref(),
            Some("https://greg.example.com/api/reports")
        );
        assert!(url("greg.example.com").is_err());
        assert_eq!(
            endpoint(None).err().map(|e| e.0).as_deref(),
            Some("--url (or $GREG_URL) is required")
        );
    }
}
