//! `greg fix-hooks` (SPEC §7): makes every configured repository carry exactly one greg
//! webhook and every configured Jenkins job call greg back, idempotently.
//!
//! Repositories: for each `repos[]` entry (GitHub only in this version), every repository of
//! its organizations whose name matches ([`greg_config::RepoConfig::matches`]). greg's hooks
//! are those whose URL has the scheme, host and port of greg's URL (Greg's rule,
//! [`greg_github::hooks::same_origin`]); the first correct one (else the first) is kept and
//! updated when its URL, events, content type, TLS check, active flag or secret differ
//! ([`HookSpec::differences`]), the others are deleted, and a hook is created when there is
//! none. Jobs: every job named in `jobs.*`, deduplicated, goes through
//! [`greg_jenkins::ensure_greg_job_config`] and is POSTed back only when it changed.
//!
//! `--dry-run` prints a unified diff per change and writes nothing. Every printed text goes
//! through [`greg_jenkins::mask_token`] (diffs through [`unified_diff`], which masks too).

use greg_config::Config;
use greg_core::{JobName, RepoName, Secret};
use greg_github::{GithubConfig, GithubProvider, Hook, HookSpec};
use greg_jenkins::{
    EndpointSpec, JenkinsBuilder, JenkinsConfig, ensure_greg_job_config, mask_token, unified_diff,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

/// What `greg fix-hooks` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// greg's public base URL; `None` takes `server.public_url`.
    pub url: Option<String>,
    /// Print the diffs, change nothing.
    pub dry_run: bool,
    /// Rewrite the secret of every kept hook (GitHub never shows it, so greg cannot compare).
    pub rotate_secret: bool,
}

/// The outcome of one repository or job.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Created,
    Updated,
    Unchanged,
    Failed,
}

/// One line of the summary table.
#[derive(Debug)]
struct Row {
    kind: &'static str,
    name: String,
    outcome: Outcome,
    detail: String,
}

/// The GitHub provider for `config`, when one is configured.
pub(crate) fn github(config: &Config) -> Option<Result<GithubProvider, greg_core::Error>> {
    let g = config.providers.github.as_ref()?;
    Some(GithubProvider::new(GithubConfig {
        name: "github".to_owned(),
        api_url: g.api_url.clone(),
        username: g.username.clone(),
        password: g.password.clone(),
        app: g.app.as_ref().map(|a| greg_github::GithubAppConfig {
            id: a.id,
            private_key: a.private_key.clone(),
            installation_id: a.installation_id,
        }),
        webhook_secret: g.webhook_secret.clone(),
    }))
}

/// The Jenkins builder for `config`, when one is configured.
pub(crate) fn jenkins(config: &Config) -> Option<Result<JenkinsBuilder, greg_core::Error>> {
    let j = config.builders.jenkins.as_ref()?;
    Some(JenkinsBuilder::new(JenkinsConfig {
        name: "jenkins".to_owned(),
        url: j.url.clone(),
        username: j.username.clone(),
        api_token: j.password.clone(),
        request_timeout: Duration::from_secs(30),
    }))
}

/// greg's public URL: `--url`, else `server.public_url`; `None` when neither is set.
pub(crate) fn public_url(config: &Config, url: Option<&str>) -> Option<String> {
    url.map(str::to_owned)
        .or_else(|| config.server.public_url.clone())
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
}

/// The webhook URL greg serves: `<url>/repo?provider=github&token=<incoming_token>`.
///
/// Errors: a message (token-free) when `url` is not an absolute http(s) URL.
pub(crate) fn hook_url(url: &str, provider: &str, token: &Secret) -> Result<String, String> {
    let mut parsed = reqwest::Url::parse(url).map_err(|e| format!("{}: {e}", mask_token(url)))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("{}: not an http(s) URL", mask_token(url)));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "{}: greg's public URL must not have a query or fragment",
            mask_token(url)
        ));
    }
    let path = format!("{}/repo", parsed.path().trim_end_matches('/'));
    parsed.set_path(&path);
    parsed
        .query_pairs_mut()
        .append_pair("provider", provider)
        .append_pair("token", token.expose());
    Ok(parsed.into())
}

/// The distinct `(builder, job)` pairs named in `jobs.*`, in configuration order.
pub(crate) fn configured_jobs(config: &Config) -> Vec<(String, JobName)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for rc in &config.repos {
        for job in [&rc.jobs.test, &rc.jobs.merge].into_iter().flatten() {
            let key = (job.builder.clone(), job.name.as_str().to_owned());
            if seen.insert(key) {
                out.push((job.builder.clone(), job.name.clone()));
            }
        }
    }
    out
}

/// Runs `greg fix-hooks`; returns 0 when everything is (or, with `--dry-run`, would be) in
/// place, 1 when anything failed, 2 when greg's URL is missing or invalid.
pub async fn run(config: &Config, opts: &Options) -> ExitCode {
    let Some(url) = public_url(config, opts.url.as_deref()) else {
        eprintln!("error: no greg URL: pass --url or set server.public_url");
        return ExitCode::from(2);
    };
    let source = if opts.url.is_some() {
        "--url"
    } else {
        "server.public_url"
    };
    let endpoint = match config
        .builders
        .jenkins
        .as_ref()
        .map(|j| EndpointSpec::callback(&url, "jenkins", j.incoming_token.expose()))
    {
        Some(Err(e)) => {
            eprintln!("error: {source}: {e}");
            return ExitCode::from(2);
        }
        Some(Ok(spec)) => Some(spec),
        None => None,
    };
    let hook_spec = match config.providers.github.as_ref().map(|g| {
        hook_url(&url, "github", &g.incoming_token)
            .map(|u| HookSpec::greg(u, g.webhook_secret.clone()))
    }) {
        Some(Err(e)) => {
            eprintln!("error: {source}: {e}");
            return ExitCode::from(2);
        }
        Some(Ok(spec)) => Some(spec),
        None => None,
    };

    let bar = if std::io::stdout().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stdout());
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let out = Printer { bar: &bar };
    if opts.dry_run {
        out.say("dry run: nothing will be changed");
    }
    let mut rows = Vec::new();

    // Repositories and their webhooks.
    let provider = github(config);
    let repos = matching_repos(config, provider.as_ref(), &out, &mut rows).await;
    let jobs = configured_jobs(config);
    bar.set_length((repos.len() + jobs.len()) as u64);
    if let (Some(Ok(gh)), Some(spec)) = (&provider, &hook_spec) {
        for repo in &repos {
            bar.set_message(format!("hook of {repo}"));
            rows.push(fix_hook(gh, repo, spec, opts, &out).await);
            bar.inc(1);
        }
    }

    // Jenkins jobs.
    let builder = jenkins(config);
    for (name, job) in &jobs {
        bar.set_message(format!("job {job}"));
        let row = match (name.as_str(), &builder, &endpoint) {
            ("jenkins", Some(Ok(jenkins)), Some(spec)) => {
                fix_job(jenkins, job, spec, opts, &out).await
            }
            ("jenkins", Some(Err(e)), _) => failed("job", job.to_string(), e.to_string()),
            _ => failed(
                "job",
                job.to_string(),
                format!("builder {name} is not configured under builders"),
            ),
        };
        rows.push(row);
        bar.inc(1);
    }
    bar.finish_and_clear();

    println!("{}", table(&rows, opts.dry_run));
    if rows.iter().any(|r| r.outcome == Outcome::Failed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The configured repositories: for each `repos[]` entry, the repositories of its
/// organizations whose name matches. Entries greg cannot list get a failed row.
async fn matching_repos(
    config: &Config,
    provider: Option<&Result<GithubProvider, greg_core::Error>>,
    out: &Printer<'_>,
    rows: &mut Vec<Row>,
) -> BTreeSet<RepoName> {
    let mut repos = BTreeSet::new();
    for (i, rc) in config.repos.iter().enumerate() {
        if rc.provider != "github" {
            rows.push(failed(
                "repos",
                format!("repos[{i}] ({})", rc.provider),
                format!(
                    "provider {} is not wired in this version; only github webhooks are managed",
                    rc.provider
                ),
            ));
            continue;
        }
        let gh = match provider {
            Some(Ok(gh)) => gh,
            Some(Err(e)) => {
                rows.push(failed("repos", format!("repos[{i}]"), e.to_string()));
                continue;
            }
            None => {
                rows.push(failed(
                    "repos",
                    format!("repos[{i}]"),
                    "providers.github is not configured".to_owned(),
                ));
                continue;
            }
        };
        for org in &rc.organizations {
            out.bar.set_message(format!("listing {org}"));
            match gh.list_org_repos(org).await {
                Ok(list) => {
                    let matching: Vec<RepoName> = list
                        .into_iter()
                        .filter(|r| rc.matches("github", r))
                        .collect();
                    if matching.is_empty() {
                        out.say(&format!("note: no repository of {org} matches repos[{i}]"));
                    }
                    repos.extend(matching);
                }
                Err(e) => rows.push(failed("repos", org.clone(), mask_token(&e.to_string()))),
            }
        }
    }
    repos
}

/// Prints around the progress bar (which owns stdout while it draws).
struct Printer<'a> {
    bar: &'a ProgressBar,
}

impl Printer<'_> {
    fn say(&self, text: &str) {
        if self.bar.is_hidden() {
            println!("{text}");
        } else {
            self.bar.suspend(|| println!("{text}"));
        }
    }
}

fn failed(kind: &'static str, name: String, reason: String) -> Row {
    Row {
        kind,
        name,
        outcome: Outcome::Failed,
        detail: mask_token(&reason),
    }
}

fn pretty(hooks: &[serde_json::Value]) -> String {
    let mut text = serde_json::to_string_pretty(hooks).unwrap_or_default();
    text.push('\n');
    text
}

fn with_id(mut v: serde_json::Value, id: Option<u64>) -> serde_json::Value {
    if let (Some(id), Some(map)) = (id, v.as_object_mut()) {
        map.insert("id".to_owned(), id.into());
    }
    v
}

async fn fix_hook(
    gh: &GithubProvider,
    repo: &RepoName,
    spec: &HookSpec,
    opts: &Options,
    out: &Printer<'_>,
) -> Row {
    let name = repo.to_string();
    let hooks = match gh.list_hooks(repo).await {
        Ok(h) => h,
        Err(e) => return failed("hook", name, e.to_string()),
    };
    let ours: Vec<&Hook> = hooks
        .iter()
        .filter(|h| greg_github::hooks::same_origin(&h.url, &spec.url))
        .collect();
    let keep = ours
        .iter()
        .find(|h| spec.differences(h, opts.rotate_secret).is_empty())
        .or(ours.first())
        .copied();
    let duplicates: Vec<u64> = ours
        .iter()
        .filter(|h| keep.is_none_or(|k| k.id != h.id))
        .map(|h| h.id)
        .collect();
    let differences = keep.map(|k| spec.differences(k, opts.rotate_secret));
    let mut detail = Vec::new();
    let outcome = match &differences {
        None => Outcome::Created,
        Some(d) if d.is_empty() && duplicates.is_empty() => Outcome::Unchanged,
        Some(d) => {
            if !d.is_empty() {
                detail.push(format!("set {}", d.join(", ")));
            }
            if !duplicates.is_empty() {
                detail.push(format!("deleted {} duplicate(s)", duplicates.len()));
            }
            Outcome::Updated
        }
    };
    if outcome == Outcome::Unchanged {
        return Row {
            kind: "hook",
            name,
            outcome,
            detail: String::new(),
        };
    }
    if opts.dry_run {
        let before: Vec<_> = ours
            .iter()
            .map(|h| with_id(h.display_json(), Some(h.id)))
            .collect();
        let after = vec![with_id(spec.display_json(), keep.map(|k| k.id))];
        out.say(&unified_diff(
            &pretty(&before),
            &pretty(&after),
            &format!("github/{repo}/hooks"),
        ));
    } else {
        let written = match keep {
            None => gh.create_hook(repo, spec).await.map(|_| ()),
            Some(k) if differences.as_ref().is_some_and(|d| !d.is_empty()) => {
                gh.update_hook(repo, k.id, spec).await.map(|_| ())
            }
            Some(_) => Ok(()),
        };
        if let Err(e) = written {
            return failed("hook", name, e.to_string());
        }
        for id in &duplicates {
            if let Err(e) = gh.delete_hook(repo, *id).await {
                return failed("hook", name, format!("deleting duplicate {id}: {e}"));
            }
        }
    }
    Row {
        kind: "hook",
        name,
        outcome,
        detail: mask_token(&detail.join("; ")),
    }
}

async fn fix_job(
    jenkins: &JenkinsBuilder,
    job: &JobName,
    spec: &EndpointSpec,
    opts: &Options,
    out: &Printer<'_>,
) -> Row {
    let name = job.to_string();
    let xml = match jenkins.get_job_config(job).await {
        Ok(x) => x,
        Err(e) => return failed("job", name, e.to_string()),
    };
    let change = match ensure_greg_job_config(&xml, spec) {
        Ok(c) => c,
        Err(e) => return failed("job", name, e.to_string()),
    };
    if !change.changed {
        return Row {
            kind: "job",
            name,
            outcome: Outcome::Unchanged,
            detail: String::new(),
        };
    }
    if opts.dry_run {
        out.say(&unified_diff(
            &xml,
            &change.xml,
            &format!("jenkins/{job}/config.xml"),
        ));
    } else if let Err(e) = jenkins.post_job_config(job, &change.xml).await {
        return failed("job", name, e.to_string());
    }
    Row {
        kind: "job",
        name,
        outcome: Outcome::Updated,
        detail: mask_token(&change.actions.join("; ")),
    }
}

/// The summary table: one row per repository and job, then the totals.
fn table(rows: &[Row], dry_run: bool) -> String {
    let label = |o: &Outcome| match (o, dry_run) {
        (Outcome::Created, false) => "created",
        (Outcome::Created, true) => "would create",
        (Outcome::Updated, false) => "updated",
        (Outcome::Updated, true) => "would update",
        (Outcome::Unchanged, _) => "unchanged",
        (Outcome::Failed, _) => "FAILED",
    };
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<5} {:<width$} {:<12} DETAIL",
        "KIND", "NAME", "RESULT"
    );
    for r in rows {
        let _ = writeln!(
            text,
            "{:<5} {:<width$} {:<12} {}",
            r.kind,
            r.name,
            label(&r.outcome),
            r.detail
        );
    }
    let count = |o: Outcome| rows.iter().filter(|r| r.outcome == o).count();
    let _ = write!(
        text,
        "{} {}, {} {}, {} unchanged, {} failed{}",
        count(Outcome::Created),
        label(&Outcome::Created),
        count(Outcome::Updated),
        label(&Outcome::Updated),
        count(Outcome::Unchanged),
        count(Outcome::Failed),
        if dry_run {
            " (dry run: nothing was changed)"
        } else {
            ""
        }
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_url_appends_repo_and_encodes_the_token() {
        let url = hook_url(
            "https://greg.example.com/ci/",
            "github",
            &Secret::new("a&b"),
        )
        .unwrap_or_default();
        assert_eq!(
            url,
            "https://greg.example.com/ci/repo?provider=github&token=a%26b"
        );
        assert!(hook_url("greg.example.com", "github", &Secret::new("t")).is_err());
        assert!(hook_url("ftp://greg.example.com", "github", &Secret::new("t")).is_err());
        assert!(hook_url("https://greg.example.com/?x=1", "github", &Secret::new("t")).is_err());
    }
}
