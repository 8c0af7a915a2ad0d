//! `greg check-config` (SPEC §7): validates config.yaml, then probes what greg depends on,
//! one line per check (`OK   what`, `FAIL what: reason`, or `SKIP what: reason` for what
//! greg cannot check):
//!
//! - GitHub accepts the token (`GET /user`);
//! - every configured GitHub repository is visible: each exact name
//!   (`GET /repos/{owner}/{name}`), and for each `/regex/` at least one repository of the
//!   organization matches;
//! - Bitbucket accepts the credentials: Cloud by [`BitbucketProvider::identify`]
//!   (`GET /2.0/user`); Server has no "who am I" resource, so the first repository's probe
//!   below is the authenticated read, and a 401 there is reported as the credentials' failure;
//! - every exact Bitbucket repository is visible, probed by listing its webhooks
//!   ([`BitbucketProvider::list_hooks`]: the read `greg fix-hooks` needs, which takes
//!   repository admin rights); `/regex/` names are skipped, since greg's Bitbucket client
//!   cannot list a workspace's or project's repositories;
//! - every job named in `jobs.*` exists on Jenkins and its config.xml has greg's notification
//!   endpoint and parameters ([`greg_jenkins::inspect`], [`JobConfigSummary::problems`]);
//! - greg's public URL answers `GET /` with "I am Greg" (greg itself must be running).
//!
//! Exit code: 0 when every check passed, 1 when one failed, 2 for a bad configuration.
//! Reasons are masked with [`mask_token`].
//!
//! [`JobConfigSummary::problems`]: greg_jenkins::JobConfigSummary::problems

use crate::fix_hooks::bitbucket::{self, SKIPPED_REGEX};
use crate::fix_hooks::{configured_jobs, github, jenkins, public_url};
use greg_bitbucket::{BitbucketProvider, Flavor};
use greg_config::{Config, NamePattern};
use greg_core::{Error, RepoName};
use greg_jenkins::{EndpointSpec, inspect, mask_token};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Time allowed for greg's own `GET <public_url>/`.
const SELF_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts and prints check results.
#[derive(Debug, Default)]
struct Report {
    failed: usize,
}

impl Report {
    fn ok(&mut self, what: &str) {
        println!("OK   {}", mask_token(what));
    }

    fn skip(&mut self, what: &str, reason: &str) {
        println!("SKIP {}: {}", mask_token(what), mask_token(reason));
    }

    fn fail(&mut self, what: &str, reason: &str) {
        self.fail_masked(what, &mask_token(reason));
    }

    /// `reason` is already masked (masking twice would swallow a `;` after `token=***`).
    fn fail_masked(&mut self, what: &str, reason: &str) {
        self.failed += 1;
        println!("FAIL {}: {reason}", mask_token(what));
    }

    fn check(&mut self, what: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.ok(what),
            Err(reason) => self.fail(what, &reason),
        }
    }
}

/// Runs every probe against `config` (already parsed from `path`) and prints one line each.
pub async fn run(path: &Path, config: &Config) -> ExitCode {
    if let Err(e) = greg_server::wiring::adapters(config) {
        eprintln!("error: {}: {e}", path.display());
        return ExitCode::from(2);
    }
    let mut report = Report::default();
    report.ok(&format!(
        "{}: {} provider(s), {} builder(s), {} repository rule(s)",
        path.display(),
        usize::from(config.providers.github.is_some())
            + usize::from(config.providers.bitbucket.is_some()),
        usize::from(config.builders.jenkins.is_some()),
        config.repos.len()
    ));
    check_github(config, &mut report).await;
    check_bitbucket(config, &mut report).await;
    check_jobs(config, &mut report).await;
    check_public_url(config, &mut report).await;
    if report.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn check_github(config: &Config, report: &mut Report) {
    for (i, rc) in config.repos.iter().enumerate() {
        if rc.provider != "github" && rc.provider != "bitbucket" {
            report.fail(
                &format!("repos[{i}]"),
                &format!("provider {} is not wired in this version", rc.provider),
            );
        }
    }
    let gh = match github(config) {
        None => return,
        Some(Err(e)) => return report.fail("github", &e.to_string()),
        Some(Ok(gh)) => gh,
    };
    match gh.current_user().await {
        Ok(login) => report.ok(&format!("github: credentials accepted (user {login})")),
        Err(e) => {
            // Every further call would fail the same way.
            return report.fail("github: credentials", &e.to_string());
        }
    }
    for (i, rc) in config.repos.iter().enumerate() {
        if rc.provider != "github" {
            continue;
        }
        for org in &rc.organizations {
            for pattern in &rc.names {
                match pattern {
                    NamePattern::Exact(name) => {
                        let repo = RepoName::new(org.as_str(), name.as_str());
                        let what = format!("github: repository {repo}");
                        let result = match gh.repository_visible(&repo).await {
                            Ok(true) => Ok(()),
                            Ok(false) => Err("not found, or the token cannot see it".to_owned()),
                            Err(e) => Err(e.to_string()),
                        };
                        report.check(&what, result);
                    }
                    NamePattern::Regex(re) => {
                        let what = format!("github: repos[{i}] /{}/ in {org}", re.as_str());
                        let result = match gh.list_org_repos(org).await {
                            Ok(list) => {
                                let n = list.iter().filter(|r| re.is_match(&r.name)).count();
                                if n == 0 {
                                    Err("no repository matches".to_owned())
                                } else {
                                    report.ok(&format!("{what}: {n} repositories"));
                                    continue;
                                }
                            }
                            Err(e) => Err(e.to_string()),
                        };
                        report.check(&what, result);
                    }
                }
            }
        }
    }
}

async fn check_bitbucket(config: &Config, report: &mut Report) {
    let entries: Vec<_> = config
        .repos
        .iter()
        .enumerate()
        .filter(|(_, rc)| rc.provider == "bitbucket")
        .collect();
    let bb = match bitbucket::provider(config) {
        None => {
            for (i, _) in &entries {
                report.fail(
                    &format!("repos[{i}]"),
                    "providers.bitbucket is not configured",
                );
            }
            return;
        }
        Some(Err(e)) => return report.fail("bitbucket", &e.to_string()),
        Some(Ok(bb)) => bb,
    };
    let name = bb.implementer();
    // Cloud: `GET /2.0/user`. Server: the configured username, no request; the first
    // repository probe below doubles as the credentials check.
    let login = match bb.identify().await {
        Ok(login) => login,
        // Every further call would fail the same way.
        Err(e) => return report.fail(&format!("{name}: credentials"), &e.to_string()),
    };
    let mut credentials_checked = bb.flavor() == Flavor::Cloud;
    if credentials_checked {
        report.ok(&format!("{name}: credentials accepted (account {login})"));
    }
    for (i, rc) in entries {
        for org in &rc.organizations {
            for pattern in &rc.names {
                match pattern {
                    NamePattern::Exact(repo) => {
                        let repo = RepoName::new(org.as_str(), repo.as_str());
                        let result = probe_repository(&bb, &repo).await;
                        if !credentials_checked {
                            if let Err(e @ Error::Unauthenticated { .. }) = &result {
                                return report
                                    .fail(&format!("{name}: credentials"), &e.to_string());
                            }
                            report.ok(&format!("{name}: credentials accepted (user {login})"));
                            credentials_checked = true;
                        }
                        report.check(
                            &format!("{name}: repository {repo}"),
                            result.map_err(|e| explain(&e)),
                        );
                    }
                    NamePattern::Regex(re) => report.skip(
                        &format!("{name}: repos[{i}] /{}/ in {org}", re.as_str()),
                        SKIPPED_REGEX,
                    ),
                }
            }
        }
    }
    if !credentials_checked {
        report.skip(
            &format!("{name}: credentials"),
            "not probed: Bitbucket Server has no \"who am I\" resource and no exact repository \
             name is configured to read instead",
        );
    }
}

/// Whether `repo` is visible, by listing its webhooks (one request unless it has more than a
/// page of them).
async fn probe_repository(bb: &BitbucketProvider, repo: &RepoName) -> Result<(), Error> {
    bb.list_hooks(repo).await.map(|_| ())
}

/// The reason a Bitbucket repository probe failed, in an operator's words.
fn explain(e: &Error) -> String {
    match e {
        Error::NotFound { .. } => "not found, or the credentials cannot see it".to_owned(),
        Error::PermissionDenied { .. } => format!(
            "the credentials cannot read its webhooks ({e}); greg fix-hooks needs repository \
             admin rights"
        ),
        _ => e.to_string(),
    }
}

async fn check_jobs(config: &Config, report: &mut Report) {
    let jobs = configured_jobs(config);
    if jobs.is_empty() {
        return;
    }
    let builder = match jenkins(config) {
        None => {
            return report.fail(
                "jobs",
                "jobs are named but builders.jenkins is not configured",
            );
        }
        Some(Err(e)) => return report.fail("jenkins", &e.to_string()),
        Some(Ok(b)) => b,
    };
    let spec = match (public_url(config, None), &config.builders.jenkins) {
        (Some(url), Some(j)) => EndpointSpec::callback(&url, "jenkins", j.incoming_token.expose())
            .map_err(|e| e.to_string()),
        _ => Err("server.public_url is not set, so greg cannot tell its endpoint".to_owned()),
    };
    for (name, job) in jobs {
        let what = format!("jenkins: job {job}");
        if name != "jenkins" {
            report.fail(&what, &format!("builder {name} is not configured"));
            continue;
        }
        let xml = match builder.get_job_config(&job).await {
            Ok(xml) => xml,
            Err(Error::NotFound { .. }) => {
                report.fail(&what, "no such job");
                continue;
            }
            Err(e) => {
                report.fail(&what, &e.to_string());
                continue;
            }
        };
        match (&spec, inspect(&xml)) {
            (Err(reason), _) => report.fail(&what, reason),
            (_, Err(e)) => report.fail(&what, &e.to_string()),
            (Ok(spec), Ok(summary)) => {
                let problems: Vec<String> = summary
                    .problems(spec)
                    .iter()
                    .map(|p| mask_token(p))
                    .collect();
                if problems.is_empty() {
                    report.ok(&what);
                } else {
                    let reason = format!("{} (run greg fix-hooks)", problems.join("; "));
                    report.fail_masked(&what, &reason);
                }
            }
        }
    }
}

async fn check_public_url(config: &Config, report: &mut Report) {
    let Some(url) = public_url(config, None) else {
        return report.fail(
            "server.public_url",
            "not set: providers and Jenkins cannot reach greg",
        );
    };
    let what = format!("greg reachable at {url}");
    let target = format!("{}/", url.trim_end_matches('/'));
    let result = async {
        let client = reqwest::Client::builder()
            .timeout(SELF_PROBE_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let response = client
            .get(&target)
            .send()
            .await
            .map_err(|e| format!("{} (is greg serve running there?)", chain(&e)))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if status.is_success() && body.contains("I am Greg") {
            Ok(())
        } else {
            let first: String = body.lines().next().unwrap_or("").chars().take(80).collect();
            Err(format!(
                "HTTP {status}, answered {first:?} instead of \"I am Greg\""
            ))
        }
    }
    .await;
    report.check(&what, result);
}

/// `error: cause: cause…`, so "connection refused" is not hidden behind "error sending request".
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
