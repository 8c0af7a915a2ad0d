//! `greg notify` (notify_pr, standalone: no greg server) and `greg notify prune`.
//!
//! `greg notify` reads its settings (INI file under flags), finds the open pull request whose
//! head is `commit` through greg's `Provider` adapter, uploads the detail files to the object
//! store, and posts one comment with the summary and the links. Everything that can be
//! checked locally (settings, summary file, files to upload, the store's settings, the
//! provider's settings) is checked before any request: a bad setting exits 2 with nothing
//! uploaded and nothing posted. Exit 1 when the provider or the store fails, or no open pull
//! request has that head.

use clap::{Args as ClapArgs, Subcommand};
use greg_core::{Provider, RepoName, Secret, Sha};
use greg_notify::{Key, NotifySettings, ProviderKind, PruneRule, PruneSettings, Values};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `greg notify`'s flags: every INI key as a flag of the same name (flags win over the file).
#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
    #[command(flatten)]
    pub flags: Flags,
}

/// `greg notify prune`.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Delete uploads under the store's prefix whose expiry has passed (or, with
    /// --older-than, that were last modified longer ago).
    Prune(PruneArgs),
}

/// `greg notify prune`'s flags.
#[derive(Debug, ClapArgs)]
pub struct PruneArgs {
    /// notify_pr's INI file (only the store_* keys and retention_days are read).
    #[arg(long, value_name = "FILE")]
    pub ini: Option<PathBuf>,
    /// Delete what was last modified longer ago than this (`7d`, `36h`, `90m`), whatever its
    /// expiry.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: Option<Duration>,
    #[command(flatten)]
    pub store: StoreFlags,
}

/// The object store's flags (shared by `greg notify` and `greg notify prune`).
#[derive(Debug, ClapArgs)]
pub struct StoreFlags {
    /// s3, gcs, azure or file.
    #[arg(long, value_name = "API")]
    pub store_api: Option<String>,
    /// The store's URL (s3, gcs, azure), or the folder (file).
    #[arg(long, value_name = "URL")]
    pub store_endpoint: Option<String>,
    /// Access key id (s3), service-account key file (gcs), account name (azure).
    #[arg(long, value_name = "ID")]
    pub store_identity: Option<String>,
    /// Secret access key (s3), service-account JSON (gcs), account key (azure). Prefer the INI
    /// file or GREG_NOTIFY_STORE_SECRET: a flag shows in the process list.
    #[arg(
        long,
        value_name = "SECRET",
        env = "GREG_NOTIFY_STORE_SECRET",
        hide_env_values = true
    )]
    pub store_secret: Option<String>,
    /// Bucket (s3, gcs) or container (azure).
    #[arg(long, value_name = "NAME")]
    pub store_bucket: Option<String>,
    /// S3 region (default us-east-1).
    #[arg(long, value_name = "REGION")]
    pub store_region: Option<String>,
    /// Key prefix: uploads go to <prefix>/<owner>/<repo>/<commit>/.
    #[arg(long, value_name = "PREFIX")]
    pub store_prefix: Option<String>,
    /// Public base URL of the bucket: links are <URL>/<key> instead of presigned URLs.
    #[arg(long, value_name = "URL")]
    pub store_public_url: Option<String>,
    /// Days uploads are kept (default 7).
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<String>,
}

/// `greg notify`'s own flags.
#[derive(Debug, ClapArgs)]
pub struct Flags {
    /// notify_pr's INI file (`key = value` lines); flags win over it.
    #[arg(long, value_name = "FILE")]
    pub ini: Option<PathBuf>,
    /// github (default) or bitbucket.
    #[arg(long, value_name = "PROVIDER")]
    pub provider: Option<String>,
    /// Bitbucket: cloud or server.
    #[arg(long, value_name = "FLAVOR")]
    pub bitbucket_flavor: Option<String>,
    /// The provider's API root (GitHub Enterprise, Bitbucket Server).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// The bot's login (Bitbucket: the basic-auth user).
    #[arg(long, value_name = "LOGIN")]
    pub username: Option<String>,
    /// The provider token. Prefer the INI file or GREG_NOTIFY_TOKEN: a flag shows in the
    /// process list.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GREG_NOTIFY_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Repository owner (Bitbucket: workspace or project key).
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// Repository name.
    #[arg(long, value_name = "REPO")]
    pub repo: Option<String>,
    /// The commit the CI run built (full id).
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Markdown shown at the top of the comment.
    #[arg(long, value_name = "FILE")]
    pub summary_file: Option<String>,
    /// A folder uploaded recursively.
    #[arg(long, value_name = "DIR")]
    pub full_detail_dir: Option<String>,
    /// Comma-separated files uploaded under their file names.
    #[arg(long, value_name = "FILES")]
    pub full_detail_files: Option<String>,
    #[command(flatten)]
    pub store: StoreFlags,
}

impl StoreFlags {
    fn values(&self, v: &mut Values) {
        v.set_opt(Key::StoreApi, self.store_api.clone());
        v.set_opt(Key::StoreEndpoint, self.store_endpoint.clone());
        v.set_opt(Key::StoreIdentity, self.store_identity.clone());
        v.set_opt(Key::StoreSecret, self.store_secret.clone());
        v.set_opt(Key::StoreBucket, self.store_bucket.clone());
        v.set_opt(Key::StoreRegion, self.store_region.clone());
        v.set_opt(Key::StorePrefix, self.store_prefix.clone());
        v.set_opt(Key::StorePublicUrl, self.store_public_url.clone());
        v.set_opt(Key::RetentionDays, self.retention_days.clone());
    }
}

impl Flags {
    fn values(&self) -> Values {
        let mut v = Values::new();
        v.set_opt(Key::Provider, self.provider.clone());
        v.set_opt(Key::BitbucketFlavor, self.bitbucket_flavor.clone());
        v.set_opt(Key::ApiUrl, self.api_url.clone());
        v.set_opt(Key::Username, self.username.clone());
        v.set_opt(Key::Token, self.token.clone());
        v.set_opt(Key::Owner, self.owner.clone());
        v.set_opt(Key::Repo, self.repo.clone());
        v.set_opt(Key::Commit, self.commit.clone());
        v.set_opt(Key::SummaryFile, self.summary_file.clone());
        v.set_opt(Key::FullDetailDir, self.full_detail_dir.clone());
        v.set_opt(Key::FullDetailFiles, self.full_detail_files.clone());
        self.store.values(&mut v);
        v
    }
}

/// Parses an age: a number with `d`, `h`, `m` or `s` (`7d`).
fn parse_age(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not an age like 7d, 36h or 90m"))?;
    let secs = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" | "" => 1,
        _ => return Err(format!("{s:?} is not an age like 7d, 36h or 90m")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

/// Prints `error: …` and returns `code`.
fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

/// Reads the INI file (when given) and lays `flags` over it.
fn layered(ini: Option<&PathBuf>, flags: &Values) -> Result<Values, greg_notify::SettingsError> {
    let file = match ini {
        Some(path) => Values::from_ini_file(path)?,
        None => Values::new(),
    };
    Ok(file.overlay(flags))
}

/// Runs `greg notify` or `greg notify prune`; returns the exit code.
pub async fn run(args: &Args) -> ExitCode {
    match &args.action {
        Some(Action::Prune(p)) => prune(p).await,
        None => notify(&args.flags).await,
    }
}

async fn prune(args: &PruneArgs) -> ExitCode {
    let mut flags = Values::new();
    args.store.values(&mut flags);
    let settings = match layered(args.ini.as_ref(), &flags).and_then(|v| PruneSettings::resolve(&v))
    {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    let store = match greg_notify::open(&settings.store) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    let rule = match args.older_than {
        Some(age) => PruneRule::OlderThan(age),
        None => PruneRule::Expired {
            retention: Duration::from_secs(u64::from(settings.retention_days) * 86_400),
        },
    };
    match store.prune(rule, chrono::Utc::now()).await {
        Ok(r) => {
            println!(
                "greg notify prune: {store}: {} objects examined, {} deleted, {} kept",
                r.examined, r.deleted, r.kept
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}

/// The provider adapter of the settings (no request made).
fn provider(s: &NotifySettings) -> Result<Box<dyn Provider>, greg_core::Error> {
    match s.provider {
        ProviderKind::Github => {
            let mut cfg = greg_github::GithubConfig::new(s.username.clone(), s.token.clone());
            if let Some(u) = &s.api_url {
                cfg.api_url = u.clone();
            }
            Ok(Box::new(greg_github::GithubProvider::new(cfg)?))
        }
        ProviderKind::BitbucketCloud | ProviderKind::BitbucketServer => {
            let flavor = if s.provider == ProviderKind::BitbucketCloud {
                greg_bitbucket::Flavor::Cloud
            } else {
                greg_bitbucket::Flavor::Server
            };
            let cfg = greg_bitbucket::BitbucketConfig {
                name: greg_bitbucket::BitbucketConfig::DEFAULT_NAME.to_owned(),
                flavor,
                api_url: s
                    .api_url
                    .clone()
                    .unwrap_or_else(|| greg_bitbucket::BitbucketConfig::CLOUD_API_URL.to_owned()),
                username: s.username.clone(),
                password: s.token.clone(),
                webhook_secret: None::<Secret>,
            };
            Ok(Box::new(greg_bitbucket::BitbucketProvider::new(cfg)?))
        }
    }
}

async fn notify(flags: &Flags) -> ExitCode {
    let settings = match layered(flags.ini.as_ref(), &flags.values())
        .and_then(|v| NotifySettings::resolve(&v))
    {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    // Everything local first: a bad path or setting uploads and posts nothing.
    let summary = match &settings.summary_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(s) => Some(s),
            Err(e) => return fail(2, format!("summary_file {}: {e}", path.display())),
        },
        None => None,
    };
    let uploads = match greg_notify::upload::collect(
        settings.full_detail_dir.as_deref(),
        &settings.full_detail_files,
    ) {
        Ok(u) => u,
        Err(e) => return fail(2, e),
    };
    let store = match greg_notify::open(&settings.store) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    let provider = match provider(&settings) {
        Ok(p) => p,
        Err(e) => return fail(2, format!("provider settings: {e}")),
    };
    let repo = RepoName::new(settings.owner.clone(), settings.repo.clone());
    let Ok(sha) = Sha::parse(&settings.commit) else {
        return fail(
            2,
            format!("commit {:?} is not a full commit id", settings.commit),
        );
    };
    // GitHub: the commit's pulls in one call; Bitbucket: the open pull requests whose head is
    // the commit, as notify_pr scanned them (`Provider::pull_requests_for_commit`).
    let pulls = match provider.pull_requests_for_commit(&repo, &sha).await {
        Ok(p) => p,
        Err(e) => {
            return fail(
                1,
                format!("finding the pull request of {}: {e}", sha.short()),
            );
        }
    };
    let pulls: Vec<_> = pulls
        .into_iter()
        .filter(|p| p.state == greg_core::PullRequestState::Open && p.head_sha == sha)
        .collect();
    if pulls.is_empty() {
        return fail(
            1,
            format!(
                "no open pull request of {repo} has head {}: nothing uploaded, nothing posted",
                sha.short()
            ),
        );
    }
    tracing::info!(%repo, commit = %sha.short(), files = uploads.len(), %store, "Uploading");
    let bar = if std::io::stderr().is_terminal() && !uploads.is_empty() {
        let bar =
            ProgressBar::with_draw_target(Some(uploads.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let done = |link: &greg_notify::Link| {
        bar.set_message(link.key.clone());
        bar.inc(1);
    };
    let published =
        match greg_notify::publish(&settings, &store, &uploads, chrono::Utc::now(), &done).await {
            Ok(p) => p,
            Err(e) => {
                bar.abandon();
                return fail(1, e);
            }
        };
    bar.finish_and_clear();
    println!(
        "greg notify: uploaded {} files to {store}{}",
        published.links.len(),
        published
            .index
            .as_ref()
            .map(|i| format!(" (index: {})", i.key))
            .unwrap_or_default()
    );
    let body = greg_notify::comment::comment(summary.as_deref(), &settings.commit, &published);
    let mut code = ExitCode::SUCCESS;
    for pr in &pulls {
        match provider.post_comment(&repo, pr.number, &body).await {
            Ok(_) => println!("greg notify: commented on {repo}#{}", pr.number),
            Err(e) => code = fail(1, format!("commenting on {repo}#{}: {e}", pr.number)),
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("36h"), Ok(Duration::from_secs(36 * 3_600)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_secs(5_400)));
        assert!(parse_age("a week").is_err());
    }
}
