//! `greg fix-hooks` (SPEC §7): makes every configured repository carry exactly one greg
//! webhook and every configured Jenkins job call greg back, idempotently.
//!
//! Repositories, for each `repos[]` entry:
//! - GitHub: every repository of its organizations whose name matches
//!   ([`greg_config::RepoConfig::matches`]);
//! - Bitbucket Cloud and Server ([`bitbucket`]): each exact name in each workspace (Cloud) or
//!   project (Server); a `/regex/` name is reported as skipped, since greg's Bitbucket client
//!   has no call that lists a workspace's or project's repositories.
//!
//! greg's hooks are those whose URL has the scheme, host and port of greg's URL (Greg's rule,
//! [`greg_github::hooks::same_origin`]), and on GitHub also those on any host whose URL ends
//! in greg's own path for that provider (`…/repo?provider=github…`): a hook greg's old address
//! left behind is updated, not duplicated (SPEC §7, [`is_gregs_hook`]). The first correct one
//! (else the first) is kept and
//! updated when it differs from the provider's `HookSpec` (`differences`), the others are
//! deleted, and a hook is created when there is none ([`Plan`]). The hook URL is
//! `<url>/repo?provider=<github|bitbucket>&token=<incoming_token>` ([`hook_url`]). Jobs:
//! every job named in `jobs.*`, deduplicated, goes through
//! [`greg_jenkins::ensure_greg_job_config`] and is POSTed back only when it changed.
//!
//! `--dry-run` prints a unified diff per change and writes nothing. Every printed text goes
//! through [`greg_jenkins::mask_token`] (diffs through [`unified_diff`], which masks too).

pub(crate) mod bitbucket;

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
    /// Rewrite the secret of every kept hook (neither GitHub nor Bitbucket shows it back, so
    /// greg cannot compare).
    pub rotate_secret: bool,
}

/// The outcome of one repository or job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Created,
    Updated,
    Unchanged,
    /// Not looked at, for the reason in the row's detail; not a failure.
    Skipped,
    Failed,
}

/// One line of the summary table.
#[derive(Debug)]
pub(crate) struct Row {
    pub kind: &'static str,
    pub name: String,
    pub outcome: Outcome,
    /// Masked before it is stored.
    pub detail: String,
}

impl Row {
    fn unchanged(kind: &'static str, name: String) -> Self {
        Row {
            kind,
            name,
            outcome: Outcome::Unchanged,
            detail: String::new(),
        }
    }
}

/// What to do with the greg hooks of one repository: keep one (the first that needs no
/// update, else the first), update it when it differs from the spec, delete the others as
/// duplicates, or create one when there is none.
#[derive(Debug)]
pub(crate) struct Plan<'h, H> {
    /// greg's hooks on the repository, in the provider's order.
    pub ours: Vec<&'h H>,
    /// The hook kept; `None`: one is created.
    pub keep: Option<&'h H>,
    /// How the kept hook differs from the spec, one word each; empty: no update.
    pub differences: Vec<String>,
    /// The other greg hooks, to delete.
    pub duplicates: Vec<&'h H>,
}

impl<'h, H> Plan<'h, H> {
    /// The plan for `ours`, where `differences` says how a hook differs from the spec.
    pub fn new(ours: Vec<&'h H>, differences: impl Fn(&H) -> Vec<String>) -> Self {
        let keep_at = ours
            .iter()
            .position(|h| differences(h).is_empty())
            .or(if ours.is_empty() { None } else { Some(0) });
        let keep = keep_at.map(|i| ours[i]);
        let duplicates = ours
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != keep_at)
            .map(|(_, h)| *h)
            .collect();
        Plan {
            differences: keep.map(&differences).unwrap_or_default(),
            ours,
            keep,
            duplicates,
        }
    }

    /// Created, updated or unchanged.
    pub fn outcome(&self) -> Outcome {
        match self.keep {
            None => Outcome::Created,
            Some(_) if self.differences.is_empty() && self.duplicates.is_empty() => {
                Outcome::Unchanged
            }
            Some(_) => Outcome::Updated,
        }
    }

    /// `set url, secret; deleted 1 duplicate(s)`: what an update changes.
    pub fn detail(&self) -> String {
        let mut detail = Vec::new();
        if self.keep.is_some() && !self.differences.is_empty() {
            detail.push(format!("set {}", self.differences.join(", ")));
        }
        if !self.duplicates.is_empty() {
            detail.push(format!("deleted {} duplicate(s)", self.duplicates.len()));
        }
        detail.join("; ")
    }

    /// Whether the kept hook needs rewriting.
    pub fn update(&self) -> Option<&'h H> {
        self.keep.filter(|_| !self.differences.is_empty())
    }
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

/// The webhook URL greg serves: `<url>/repo?provider=<provider>&token=<incoming_token>`.
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

/// True when a webhook whose URL is `candidate` is greg's hook for `provider`, given greg's
/// hook URL `ours` ([`hook_url`]): the same origin (Greg's rule), or an http(s) URL of any
/// host whose path ends in `/repo` (a trailing `/` aside) and whose query has
/// `provider=<provider>`, whatever its token: greg on an old host (SPEC §7). Another tool's
/// hook (another path, another or no `provider`) is not greg's.
pub(crate) fn is_gregs_hook(candidate: &str, ours: &str, provider: &str) -> bool {
    if greg_github::hooks::same_origin(candidate, ours) {
        return true;
    }
    let Ok(url) = reqwest::Url::parse(candidate.trim()) else {
        return false;
    };
    let last_segment = url
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && last_segment == "repo"
        && url
            .query_pairs()
            .any(|(k, v)| k == "provider" && v == provider)
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
    let bitbucket_spec = match bitbucket::hook_spec(config, &url) {
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
    let bb = bitbucket::provider(config);
    let repos = matching_repos(config, provider.as_ref(), &out, &mut rows).await;
    let bb_repos = bitbucket::configured_repos(config, bb.as_ref(), &mut rows);
    let jobs = configured_jobs(config);
    bar.set_length((repos.len() + bb_repos.len() + jobs.len()) as u64);
    if let (Some(Ok(gh)), Some(spec)) = (&provider, &hook_spec) {
        for repo in &repos {
            bar.set_message(format!("hook of {repo}"));
            rows.push(fix_hook(gh, repo, spec, opts, &out).await);
            bar.inc(1);
        }
    }
    if let (Some(Ok(bb)), Some(spec)) = (&bb, &bitbucket_spec) {
        for repo in &bb_repos {
            bar.set_message(format!("hook of {repo}"));
            rows.push(bitbucket::fix_hook(bb, repo, spec, opts, &out).await);
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

/// The configured GitHub repositories: for each `repos[]` entry on GitHub, the repositories of
/// its organizations whose name matches. Entries greg cannot list get a failed row; entries
/// of a provider that is neither GitHub nor Bitbucket too.
async fn matching_repos(
    config: &Config,
    provider: Option<&Result<GithubProvider, greg_core::Error>>,
    out: &Printer<'_>,
    rows: &mut Vec<Row>,
) -> BTreeSet<RepoName> {
    let mut repos = BTreeSet::new();
    for (i, rc) in config.repos.iter().enumerate() {
        if rc.provider == "bitbucket" {
            continue;
        }
        if rc.provider != "github" {
            rows.push(failed(
                "repos",
                format!("repos[{i}] ({})", rc.provider),
                format!(
                    "provider {} is not wired in this version; only github and bitbucket \
                     webhooks are managed",
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
pub(crate) struct Printer<'a> {
    bar: &'a ProgressBar,
}

impl Printer<'_> {
    pub fn say(&self, text: &str) {
        if self.bar.is_hidden() {
            println!("{text}");
        } else {
            self.bar.suspend(|| println!("{text}"));
        }
    }
}

/// A failed row; `reason` is masked.
pub(crate) fn failed(kind: &'static str, name: String, reason: String) -> Row {
    Row {
        kind,
        name,
        outcome: Outcome::Failed,
        detail: mask_token(&reason),
    }
}

/// A JSON array, pretty, with a final newline (diff input).
pub(crate) fn pretty(hooks: &[serde_json::Value]) -> String {
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

/// `Ok` for a success, and for a `NotFound` (what was to be deleted is gone already).
pub(crate) fn gone_is_fine(result: Result<(), greg_core::Error>) -> Result<(), greg_core::Error> {
    match result {
        Err(greg_core::Error::NotFound { .. }) => Ok(()),
        other => other,
    }
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
        .filter(|h| is_gregs_hook(&h.url, &spec.url, "github"))
        .collect();
    let plan = Plan::new(ours, |h| spec.differences(h, opts.rotate_secret));
    let outcome = plan.outcome();
    if outcome == Outcome::Unchanged {
        return Row::unchanged("hook", name);
    }
    if opts.dry_run {
        let before: Vec<_> = plan
            .ours
            .iter()
            .map(|h| with_id(h.display_json(), Some(h.id)))
            .collect();
        let after = vec![with_id(spec.display_json(), plan.keep.map(|k| k.id))];
        out.say(&unified_diff(
            &pretty(&before),
            &pretty(&after),
            &format!("github/{repo}/hooks"),
        ));
    } else {
        let written = match (plan.keep, plan.update()) {
            (None, _) => gh.create_hook(repo, spec).await.map(|_| ()),
            (Some(_), Some(k)) => gh.update_hook(repo, k.id, spec).await.map(|_| ()),
            (Some(_), None) => Ok(()),
        };
        if let Err(e) = written {
            return failed("hook", name, e.to_string());
        }
        for h in &plan.duplicates {
            if let Err(e) = gone_is_fine(gh.delete_hook(repo, h.id).await) {
                return failed("hook", name, format!("deleting duplicate {}: {e}", h.id));
            }
        }
    }
    Row {
        kind: "hook",
        name,
        outcome,
        detail: mask_token(&plan.detail()),
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
        return Row::unchanged("job", name);
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

/// The summary table: one row per repository and job, then the totals (`skipped` only when
/// something was).
fn table(rows: &[Row], dry_run: bool) -> String {
    let label = |o: &Outcome| match (o, dry_run) {
        (Outcome::Created, false) => "created",
        (Outcome::Created, true) => "would create",
        (Outcome::Updated, false) => "updated",
        (Outcome::Updated, true) => "would update",
        (Outcome::Unchanged, _) => "unchanged",
        (Outcome::Skipped, _) => "skipped",
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
    let skipped = match count(Outcome::Skipped) {
        0 => String::new(),
        n => format!("{n} skipped, "),
    };
    let _ = write!(
        text,
        "{} {}, {} {}, {} unchanged, {skipped}{} failed{}",
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

    #[test]
    fn gregs_hooks_are_on_gregs_origin_or_on_gregs_path_anywhere() {
        let ours = "https://greg.example.com/ci/repo?provider=github&token=t";
        for (candidate, expected) in [
            // Greg's rule: the same origin.
            ("https://greg.example.com/anything", true),
            ("https://GREG.example.com:443/ci/repo?provider=github", true),
            // greg's path and provider on an old host, port, scheme or prefix.
            ("http://old-greg:9000/repo?provider=github&token=old", true),
            (
                "https://ci.example.org/greg/repo/?token=x&provider=github",
                true,
            ),
            // Not greg's.
            (
                "http://old-greg:9000/repo?provider=bitbucket&token=old",
                false,
            ),
            ("http://old-greg:9000/repo?token=old", false),
            ("http://old-greg:9000/repository?provider=github", false),
            ("http://old-greg:9000/repo/x?provider=github", false),
            ("https://ci.example.org/hook", false),
            ("not a url /repo?provider=github", false),
            ("", false),
        ] {
            assert_eq!(
                is_gregs_hook(candidate, ours, "github"),
                expected,
                "{candidate}"
            );
        }
    }

    /// Hooks as (id, whether they match the spec).
    fn plan_of(hooks: &[(u32, bool)]) -> (Option<u32>, Vec<u32>, Outcome, String) {
        let plan = Plan::new(hooks.iter().collect(), |h| {
            if h.1 {
                Vec::new()
            } else {
                vec!["url".to_owned()]
            }
        });
        (
            plan.keep.map(|h| h.0),
            plan.duplicates.iter().map(|h| h.0).collect(),
            plan.outcome(),
            plan.detail(),
        )
    }

    #[test]
    fn a_plan_keeps_the_first_right_hook_else_the_first_and_deletes_the_rest() {
        assert_eq!(
            plan_of(&[]),
            (None, vec![], Outcome::Created, String::new())
        );
        assert_eq!(
            plan_of(&[(1, true)]),
            (Some(1), vec![], Outcome::Unchanged, String::new())
        );
        assert_eq!(
            plan_of(&[(1, false), (2, true), (3, false)]),
            (
                Some(2),
                vec![1, 3],
                Outcome::Updated,
                "deleted 2 duplicate(s)".to_owned()
            )
        );
        assert_eq!(
            plan_of(&[(1, false), (2, false)]),
            (
                Some(1),
                vec![2],
                Outcome::Updated,
                "set url; deleted 1 duplicate(s)".to_owned()
            )
        );
    }
}
