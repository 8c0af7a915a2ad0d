//! The loaded configuration: what the engine, the server and the adapters read. Every value
//! here is already expanded (`${ENV}`), validated and defaulted; see the crate docs and
//! `config.yaml.example` for the file format.

use greg_core::{JobName, Login, RepoName, Secret};
use std::fmt;
use std::time::Duration;

/// `server.listen` when absent.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// `server.database` when absent: a SQLite file in the working directory.
pub const DEFAULT_DATABASE: &str = "sqlite://greg.db";
/// `server.bot_name` when absent.
pub const DEFAULT_BOT_NAME: &str = "greg";
/// `server.build_poll_after_secs` when absent: 5 minutes.
pub const DEFAULT_BUILD_POLL_AFTER: Duration = Duration::from_secs(300);
/// `server.build_timeout_secs` when absent: 2 hours.
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(7200);
/// `server.reconcile_interval_secs` when absent: 10 minutes.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(600);
/// `server.lease_secs` when absent: 15 s (SPEC §11).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// `server.retry_window_secs` when absent: 1 hour (SPEC §11).
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(3600);
/// `server.shutdown_grace_secs` when absent: 20 s (SPEC §11).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// `server.delivery_retention_days` when absent: 14 days (SPEC §11).
pub const DEFAULT_DELIVERY_RETENTION_DAYS: u64 = 14;
/// `server.report_retention_days` when absent: 90 days.
pub const DEFAULT_REPORT_RETENTION_DAYS: u64 = 90;
/// `reports.store.retention_days` when absent: 90 days.
pub const DEFAULT_REPORT_STORE_RETENTION_DAYS: u64 = 90;
/// The longest `repos[].report.expect` entry, in characters.
pub const MAX_EXPECTED_JOB_CHARS: usize = 200;
/// `server.build_start_timeout_secs` when absent: 10 minutes.
pub const DEFAULT_BUILD_START_TIMEOUT: Duration = Duration::from_secs(600);
/// `repos[].max_test_builds` when absent.
pub const DEFAULT_MAX_TEST_BUILDS: u32 = 4;
/// `repos[].required_approvals` when absent.
pub const DEFAULT_REQUIRED_APPROVALS: u32 = 1;
/// `providers.github.api_url` when absent.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// `providers.github.web_url` when absent.
pub const DEFAULT_GITHUB_WEB_URL: &str = "https://github.com";
/// The shortest `server.session_secret`, in bytes.
pub const MIN_SESSION_SECRET_BYTES: usize = 32;
/// `providers.bitbucket.api_url` when absent and `flavor` is `cloud`. Bitbucket Server has
/// no default: its `api_url` is required.
pub const DEFAULT_BITBUCKET_CLOUD_API_URL: &str = "https://api.bitbucket.org";

/// The whole of config.yaml.
#[derive(Debug, Clone)]
pub struct Config {
    /// `server:` (new in greg; all defaults when absent).
    pub server: ServerConfig,
    /// `providers:` (Greg). At least one provider is configured.
    pub providers: ProvidersConfig,
    /// `builders:` (Greg). May be empty when no repository has jobs.
    pub builders: BuildersConfig,
    /// `repos:` (Greg), in file order; the first matching entry wins.
    pub repos: Vec<RepoConfig>,
    /// `reports:` (new, SPEC §8): where the server keeps the files of `greg report`
    /// (default: no store).
    pub reports: ReportsConfig,
}

impl Config {
    /// The first `repos[]` entry for `provider` (`github`, `bitbucket`) whose
    /// `organizations` hold `repo.owner` (ASCII case-insensitive) and whose `names` match
    /// `repo.name` (see [`NamePattern`]). `None`: greg does not handle this repository.
    pub fn repo(&self, provider: &str, repo: &RepoName) -> Option<&RepoConfig> {
        self.repos.iter().find(|r| r.matches(provider, repo))
    }
}

/// `server:` (new in greg).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `listen`: address to bind, `host:port` (default [`DEFAULT_LISTEN`]).
    pub listen: String,
    /// `public_url`: the base URL providers and Jenkins reach greg at (used by fix-hooks),
    /// an absolute http(s) URL stored without a trailing `/`. `None` when absent.
    pub public_url: Option<String>,
    /// `database`: `sqlite://FILE`, `sqlite:///abs/path`, `sqlite::memory:` or
    /// `postgres://...` (default [`DEFAULT_DATABASE`]). May hold a password: do not log it.
    pub database: String,
    /// `bot_name`: the name commands address (`@greg please`); no spaces, no `@`
    /// (default [`DEFAULT_BOT_NAME`]).
    pub bot_name: String,
    /// `unstable_is_success`: whether a Jenkins UNSTABLE result counts as green
    /// (default false).
    pub unstable_is_success: bool,
    /// `build_poll_after_secs`: poll a build that sent no callback for this long
    /// (default [`DEFAULT_BUILD_POLL_AFTER`]; at least 1 s).
    pub build_poll_after: Duration,
    /// `build_timeout_secs`: give up on a build after this long
    /// (default [`DEFAULT_BUILD_TIMEOUT`]; at least 1 s).
    pub build_timeout: Duration,
    /// `reconcile_interval_secs`: how often greg re-reads open pull requests and repairs drift
    /// (missed webhooks), besides once at start (default [`DEFAULT_RECONCILE_INTERVAL`]; at
    /// least 1 s).
    pub reconcile_interval: Duration,
    /// `lease_secs` (SPEC §11, replicas): how long a replica holds a repository's lane without
    /// renewing its lease; when its holder dies or stalls, another replica takes the
    /// repository over this long after the last renewal (default [`DEFAULT_LEASE`]; at least
    /// 1 s). Holders renew every third of it.
    pub lease: Duration,
    /// `retry_window_secs`: how long work that fails for a retryable reason (5xx, timeouts,
    /// rate limits) is retried, across restarts, before it is dead-lettered or its queue entry
    /// fails (default [`DEFAULT_RETRY_WINDOW`]; at least 1 s). Also the deadline of the
    /// Staging and Landing steps of a queue entry.
    pub retry_window: Duration,
    /// `shutdown_grace_secs`: on SIGTERM or SIGINT, how long the current steps may run before
    /// greg exits anyway (default [`DEFAULT_SHUTDOWN_GRACE`]).
    pub shutdown_grace: Duration,
    /// `delivery_retention_days`: processed deliveries older than this are pruned (failed ones
    /// are kept) (default [`DEFAULT_DELIVERY_RETENTION_DAYS`]; at least 1).
    pub delivery_retention_days: u64,
    /// `report_retention_days`: reports sent by `greg report` (SPEC §8) older than this, in
    /// days, are pruned (default [`DEFAULT_REPORT_RETENTION_DAYS`]; 1 to 3650).
    pub report_retention_days: u64,
    /// `build_start_timeout_secs`: a build Jenkins has not started after this long is reported
    /// on the pull request with Jenkins' reason (default [`DEFAULT_BUILD_START_TIMEOUT`]).
    pub build_start_timeout: Duration,
    /// `admin_token`: the bearer token of the admin API (`POST /api/deliveries/{seq}/redeliver`).
    /// `None`: the admin API answers 403.
    pub admin_token: Option<Secret>,
    /// `session_secret` (SPEC §9): the key of the sign-in session cookie (encrypted and
    /// authenticated), at least [`MIN_SESSION_SECRET_BYTES`] bytes. Required when
    /// `providers.github.oauth` is set; `None` otherwise. Changing it signs everyone out.
    pub session_secret: Option<Secret>,
    /// `public_pages` (SPEC §9): true shows every configured repository's pages and `/api`
    /// to anyone, private ones too, even with sign-in configured (default false).
    pub public_pages: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            public_url: None,
            database: DEFAULT_DATABASE.to_owned(),
            bot_name: DEFAULT_BOT_NAME.to_owned(),
            unstable_is_success: false,
            build_poll_after: DEFAULT_BUILD_POLL_AFTER,
            build_timeout: DEFAULT_BUILD_TIMEOUT,
            reconcile_interval: DEFAULT_RECONCILE_INTERVAL,
            lease: DEFAULT_LEASE,
            retry_window: DEFAULT_RETRY_WINDOW,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            delivery_retention_days: DEFAULT_DELIVERY_RETENTION_DAYS,
            report_retention_days: DEFAULT_REPORT_RETENTION_DAYS,
            build_start_timeout: DEFAULT_BUILD_START_TIMEOUT,
            admin_token: None,
            session_secret: None,
            public_pages: false,
        }
    }
}

/// `providers:` (Greg): at most one of each kind, at least one in all.
#[derive(Debug, Clone, Default)]
pub struct ProvidersConfig {
    /// `providers.github`.
    pub github: Option<GithubProviderConfig>,
    /// `providers.bitbucket` (Greg's meant Bitbucket Cloud; `flavor` selects Server).
    pub bitbucket: Option<BitbucketProviderConfig>,
}

impl ProvidersConfig {
    /// The `incoming_token` of the provider named `provider` (`github`, `bitbucket`): the
    /// value `?token=` must carry on `POST /repo`. `None` when that provider is not
    /// configured.
    pub fn incoming_token(&self, provider: &str) -> Option<&Secret> {
        match provider {
            "github" => self.github.as_ref().map(|g| &g.incoming_token),
            "bitbucket" => self.bitbucket.as_ref().map(|b| &b.incoming_token),
            _ => None,
        }
    }

    /// The `source` prefix of the provider named `provider`: SOURCE is this prefix +
    /// `owner/name.git` (SPEC §6). `None` when that provider is not configured.
    pub fn source(&self, provider: &str) -> Option<&str> {
        match provider {
            "github" => self.github.as_ref().map(|g| g.source.as_str()),
            "bitbucket" => self.bitbucket.as_ref().map(|b| b.source.as_str()),
            _ => None,
        }
    }
}

/// `providers.github`.
#[derive(Debug, Clone)]
pub struct GithubProviderConfig {
    /// `username` (Greg): the bot account's login; commands may address it as `@login`.
    pub username: String,
    /// `password` (Greg): a personal access token (or password); non-empty, except that it
    /// is empty when [`app`](Self::app) is set (exactly one of the two is given).
    pub password: Secret,
    /// `app` (new): GitHub App credentials, instead of `password`.
    pub app: Option<GithubApp>,
    /// `incoming_token` (Greg): must equal `?token=` on `POST /repo`; non-empty.
    pub incoming_token: Secret,
    /// `source` (Greg): SOURCE prefix for builds, e.g. `git@github.com:`.
    pub source: String,
    /// `webhook_secret` (new): when set, deliveries must carry a valid
    /// `X-Hub-Signature-256` HMAC-SHA256 of the body. Non-empty when present.
    pub webhook_secret: Option<Secret>,
    /// `api_url` (new): REST base URL without a trailing `/`
    /// (default [`DEFAULT_GITHUB_API_URL`]; GitHub Enterprise: `https://HOST/api/v3`).
    pub api_url: String,
    /// `web_url` (new, SPEC §9): the web host people sign in at, without a trailing `/`
    /// (default [`DEFAULT_GITHUB_WEB_URL`]; GitHub Enterprise: `https://HOST`).
    pub web_url: String,
    /// `oauth` (new, SPEC §9): the OAuth app people sign in to greg's pages with; `None`:
    /// no sign-in, every configured repository's pages are shown to anyone.
    pub oauth: Option<GithubOauth>,
}

/// `providers.github.oauth`: an OAuth app (GitHub: Settings, Developer settings, OAuth
/// Apps), its callback URL `<server.public_url>/oauth/callback`.
#[derive(Debug, Clone)]
pub struct GithubOauth {
    /// `client_id`: the app's client id (not secret; sent in the sign-in redirect).
    pub client_id: String,
    /// `client_secret`: the app's client secret. Never printed.
    pub client_secret: Secret,
}

/// `providers.github.app`: a GitHub App greg authenticates as.
#[derive(Debug, Clone)]
pub struct GithubApp {
    /// `id`: the app's id ("App ID" on its settings page), 1 or more.
    pub id: u64,
    /// The app's private key (PEM text), from `private_key` or read from the file
    /// `private_key_path` names (exactly one of the two is given). Not checked here.
    pub private_key: Secret,
    /// `installation_id`: the installation to act as; absent: looked up per repository.
    pub installation_id: Option<u64>,
}

/// Which Bitbucket product `providers.bitbucket` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BitbucketFlavor {
    /// `cloud`: bitbucket.org, REST 2.0 (Greg's meaning of "bitbucket"; the default).
    #[default]
    Cloud,
    /// `server`: Bitbucket Server / Data Center, REST 1.0.
    Server,
}

impl BitbucketFlavor {
    /// `cloud` or `server`, as written in config.yaml.
    pub fn as_str(&self) -> &'static str {
        match self {
            BitbucketFlavor::Cloud => "cloud",
            BitbucketFlavor::Server => "server",
        }
    }
}

impl fmt::Display for BitbucketFlavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `providers.bitbucket`.
#[derive(Debug, Clone)]
pub struct BitbucketProviderConfig {
    /// `flavor` (new): `cloud` (default) or `server`.
    pub flavor: BitbucketFlavor,
    /// `username` (Greg): the bot account.
    pub username: String,
    /// `password` (Greg): app password (Cloud) or HTTP access token / password (Server).
    pub password: Secret,
    /// `incoming_token` (Greg): must equal `?token=` on `POST /repo`; non-empty.
    pub incoming_token: Secret,
    /// `webhook_secret` (new): when set, deliveries must carry a valid `X-Hub-Signature`
    /// (`sha256=...`). Non-empty when present.
    pub webhook_secret: Option<Secret>,
    /// `source` (Greg): SOURCE prefix for builds, e.g. `git@bitbucket.org:`.
    pub source: String,
    /// `api_url` (new): base URL without a trailing `/`. Cloud default
    /// [`DEFAULT_BITBUCKET_CLOUD_API_URL`]; required for Server
    /// (e.g. `https://bitbucket.example.com`).
    pub api_url: String,
}

/// `builders:` (Greg).
#[derive(Debug, Clone, Default)]
pub struct BuildersConfig {
    /// `builders.jenkins`.
    pub jenkins: Option<JenkinsBuilderConfig>,
}

impl BuildersConfig {
    /// The `incoming_token` of the builder named `builder` (`jenkins`): the value `?token=`
    /// must carry on `POST /build`. `None` when that builder is not configured.
    pub fn incoming_token(&self, builder: &str) -> Option<&Secret> {
        match builder {
            "jenkins" => self.jenkins.as_ref().map(|j| &j.incoming_token),
            _ => None,
        }
    }
}

/// `builders.jenkins` (Greg).
#[derive(Debug, Clone)]
pub struct JenkinsBuilderConfig {
    /// `url`: Jenkins root URL (may have a path, e.g. `https://ci.example.com/jenkins`),
    /// stored without a trailing `/`.
    pub url: String,
    /// `username`: the Jenkins user greg starts jobs as.
    pub username: String,
    /// `password`: that user's API token (or password); non-empty.
    pub password: Secret,
    /// `incoming_token`: must equal `?token=` on `POST /build`; non-empty.
    pub incoming_token: Secret,
}

/// One `repos[]` entry.
#[derive(Debug, Clone)]
pub struct RepoConfig {
    /// `provider` (Greg): a key configured under `providers`.
    pub provider: String,
    /// `organizations` (Greg): owners (GitHub organization or user, Bitbucket workspace or
    /// project key), matched ASCII case-insensitively. Never empty.
    pub organizations: Vec<String>,
    /// `names` (Greg): repository names or `/regex/` patterns. Never empty.
    pub names: Vec<NamePattern>,
    /// `jobs` (Greg): the builds to run; either may be absent.
    pub jobs: JobsConfig,
    /// `merge_mode` (new): who merges (default [`MergeMode::Builder`], as Greg).
    pub merge_mode: MergeMode,
    /// `target_branches` (new): branches pushes are tested on and pull requests may target;
    /// `None` (the default): every branch. Never `Some(empty)`.
    pub target_branches: Option<Vec<String>>,
    /// `reviewers` (new): logins that must always approve (a leading `@` is dropped).
    pub reviewers: Vec<Login>,
    /// `required_approvals` (new): approvals of the current head needed to merge (default 1).
    pub required_approvals: u32,
    /// `allow_forks` (new): whether a head in another repository may merge (default false).
    pub allow_forks: bool,
    /// `comments` (new): false reports by commit status only (default true).
    pub comments: bool,
    /// `test_merged` (new, hail's rule): test each pull request's head merged with the current
    /// target instead of the bare head, and test again when the target moves (default false).
    pub test_merged: bool,
    /// `max_test_builds` (new): with `test_merged`, at most this many such test builds run at
    /// once per (repository, target); approved pull requests go first (default
    /// [`DEFAULT_MAX_TEST_BUILDS`]).
    pub max_test_builds: u32,
    /// `merge_queue` (new, SPEC §10): how merge_mode staging lands many pull requests per
    /// build (default: serial, one pull request per candidate, one candidate at a time).
    pub merge_queue: MergeQueueConfig,
    /// `report` (new, SPEC §8): what the report comment expects (default: nothing listed).
    pub report: ReportConfig,
    /// `notify` (new, SPEC §9): chat and JSON webhooks told when a pull request lands, fails
    /// or leaves the merge queue, or the tree closes (default: none).
    pub notify: Vec<NotifyTarget>,
    /// `delete_commands` (new, SPEC §9): delete a command's comment once every command in it
    /// was carried out (default false). Refused commands' comments are kept.
    pub delete_commands: bool,
}

/// What a `repos[].notify` target is told about (SPEC §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NotifyEvent {
    /// `landed`: a pull request landed on its target through the merge queue.
    Landed,
    /// `failed`: a pull request failed in the merge queue (conflict, red build, refusal).
    Failed,
    /// `left_queue`: a pull request left the merge queue without landing or failing
    /// (cancelled, new head, closed, no longer mergeable).
    LeftQueue,
    /// `tree_closed`: "@greg treeclosed=N" closed a target below priority N.
    TreeClosed,
}

impl NotifyEvent {
    /// Every event, in the order of the documentation.
    pub const ALL: [NotifyEvent; 4] = [
        NotifyEvent::Landed,
        NotifyEvent::Failed,
        NotifyEvent::LeftQueue,
        NotifyEvent::TreeClosed,
    ];

    /// The name in config.yaml and in the JSON event (`landed`, `failed`, `left_queue`,
    /// `tree_closed`).
    pub fn as_str(&self) -> &'static str {
        match self {
            NotifyEvent::Landed => "landed",
            NotifyEvent::Failed => "failed",
            NotifyEvent::LeftQueue => "left_queue",
            NotifyEvent::TreeClosed => "tree_closed",
        }
    }
}

impl fmt::Display for NotifyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body a `repos[].notify` target receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifyFormat {
    /// `text` (default): `{"text": "..."}`, what Slack, Mattermost and Microsoft Teams'
    /// workflow webhooks accept.
    #[default]
    Text,
    /// `json`: greg's JSON event, signed with `secret` (docs/operations.md, "Notifications").
    Json,
}

/// One `repos[].notify` entry (SPEC §9).
#[derive(Debug, Clone)]
pub struct NotifyTarget {
    /// `url`: where to POST; an absolute http(s) URL, query allowed (Teams' workflow URLs
    /// carry their signature there). The URL of a Slack webhook is its credential, so it is
    /// a [`Secret`]: logs and errors name [`host`](Self::host) only.
    pub url: Secret,
    /// The URL's host (and port when given), for logs.
    pub host: String,
    /// `events`: what this target is told about; non-empty, each listed once, in the
    /// order written.
    pub events: Vec<NotifyEvent>,
    /// `format`: `text` (default) or `json`.
    pub format: NotifyFormat,
    /// `secret`: signs the body (`X-Greg-Signature-256: sha256=<hex HMAC-SHA256>`); required
    /// with `format: json`, optional with `text`.
    pub secret: Option<Secret>,
}

impl NotifyTarget {
    /// True when this target is told about `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.events.contains(&event)
    }
}

/// `repos[].report` (SPEC §8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportConfig {
    /// `expect`: the job names (as `greg report --job` sends them) the report comment waits
    /// for ("N of M expected jobs reported"). Each is non-blank, at most
    /// [`MAX_EXPECTED_JOB_CHARS`] characters, without control characters, listed once.
    /// Empty (the default): the jobs seen on the target branch's last commit.
    pub expect: Vec<String>,
}

/// `reports:` (new, SPEC §8).
#[derive(Debug, Clone, Default)]
pub struct ReportsConfig {
    /// `store`: the object store for the files of `greg report` (the same settings as
    /// `greg notify`'s store); `None` (the default): none.
    pub store: Option<ReportStoreConfig>,
}

/// Which kind of object store `reports.store.api` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportStoreApi {
    /// `s3`: Amazon S3 and S3-compatible servers (MinIO, Ceph, OpenStack Swift's S3 API).
    S3,
    /// `gcs`: Google Cloud Storage.
    Gcs,
    /// `azure`: Azure Blob Storage (and Azurite).
    Azure,
    /// `file`: a local folder.
    File,
}

impl ReportStoreApi {
    /// `s3`, `gcs`, `azure` or `file`, as written in config.yaml.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportStoreApi::S3 => "s3",
            ReportStoreApi::Gcs => "gcs",
            ReportStoreApi::Azure => "azure",
            ReportStoreApi::File => "file",
        }
    }
}

impl fmt::Display for ReportStoreApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `reports.store`: the fields of greg-notify's `StoreSettings` (docs/reporting.md, "Stores"),
/// plus a retention.
#[derive(Debug, Clone)]
pub struct ReportStoreConfig {
    /// `api`: which kind of store.
    pub api: ReportStoreApi,
    /// `endpoint`: `file`: the folder (a path or a `file://` URL), required; otherwise an
    /// http(s) server URL stored without a trailing `/` (MinIO, Azurite, ...), `None` for
    /// the cloud's own.
    pub endpoint: Option<String>,
    /// `identity`: s3: access key id (given together with `secret`); gcs: path of a
    /// service-account key file; azure: the account name (required).
    pub identity: Option<String>,
    /// `secret`: s3: secret access key; gcs: the service-account JSON; azure: the account
    /// key. Never printed.
    pub secret: Option<Secret>,
    /// `bucket`: bucket or container; required unless `api` is `file` (then empty when
    /// absent).
    pub bucket: String,
    /// `region`: the S3 region (`None`: `us-east-1`).
    pub region: Option<String>,
    /// `prefix`: key prefix, without a leading or trailing `/` (default empty: none).
    pub prefix: String,
    /// `public_url`: an http(s) base URL under which the bucket is served publicly, stored
    /// without a trailing `/`; links are then `<public_url>/<prefix>/<key>` instead of
    /// presigned URLs.
    pub public_url: Option<String>,
    /// `retention_days`: how long stored files are kept, in days (default
    /// [`DEFAULT_REPORT_STORE_RETENTION_DAYS`]; 1 to 3650).
    pub retention_days: u64,
}

/// `repos[].merge_queue` (SPEC §10). Every count is from 1 to 100, and
/// `window_min` ≤ `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeQueueConfig {
    /// `batch_size`: pull requests tested together in one candidate (default 1).
    pub batch_size: u32,
    /// `window`: candidates built at once (default 1: serial, as bors); the upper bound of an
    /// adaptive window.
    pub window: u32,
    /// `adaptive`: the window grows by one on each landing and halves on each failure, within
    /// [`window_min`](Self::window_min), [`window`](Self::window) (default false).
    pub adaptive: bool,
    /// `window_min`: the lower bound of an adaptive window (default 1).
    pub window_min: u32,
    /// `optimistic`: a green candidate that contains a failed one's pull requests vindicates
    /// it (its red build was a flake) (default false).
    pub optimistic: bool,
}

impl Default for MergeQueueConfig {
    fn default() -> Self {
        MergeQueueConfig {
            batch_size: 1,
            window: 1,
            adaptive: false,
            window_min: 1,
            optimistic: false,
        }
    }
}

impl MergeQueueConfig {
    /// True when more than one pull request may be in flight at once (a batch or a window
    /// above 1), which needs staging refs.
    pub fn is_parallel(&self) -> bool {
        self.batch_size > 1 || self.window > 1
    }
}

impl Config {
    /// The first repository named exactly (organization and name, compared ignoring ASCII
    /// case) under two providers, as `(key, message)`: `key` is the later entry's
    /// `repos[N].names`. greg keys a repository by its owner/name, so a GitHub and a Bitbucket
    /// repository of the same name would share builds, approvals and queue entries; `greg
    /// serve` refuses such a configuration at start (fix-hooks and check-config accept it).
    /// `/regex/` names cannot be compared and are not checked.
    pub fn repository_on_two_providers(&self) -> Option<(String, String)> {
        let mut seen: std::collections::HashMap<String, (usize, &str)> =
            std::collections::HashMap::new();
        for (i, r) in self.repos.iter().enumerate() {
            for org in &r.organizations {
                for name in &r.names {
                    let NamePattern::Exact(name) = name else {
                        continue;
                    };
                    let key = format!("{org}/{name}").to_ascii_lowercase();
                    match seen.get(&key) {
                        Some((first, provider)) if *provider != r.provider => {
                            return Some((
                                format!("repos[{i}].names"),
                                format!(
                                    "{org}/{name} is also configured for provider {provider} \
                                     (repos[{first}]); greg identifies a repository by its \
                                     owner/name, so one name cannot be served on two providers"
                                ),
                            ));
                        }
                        Some(_) => {}
                        None => {
                            seen.insert(key, (i, r.provider.as_str()));
                        }
                    }
                }
            }
        }
        None
    }
}

impl RepoConfig {
    /// True when this entry is for `provider`, lists `repo.owner` among its organizations
    /// (ASCII case-insensitive) and one of its [`names`](Self::names) matches `repo.name`.
    pub fn matches(&self, provider: &str, repo: &RepoName) -> bool {
        self.provider == provider
            && self
                .organizations
                .iter()
                .any(|org| org.eq_ignore_ascii_case(&repo.owner))
            && self.names.iter().any(|pattern| pattern.matches(&repo.name))
    }

    /// Whether `branch` (a plain branch name, without `refs/heads/`) may be tested on push
    /// and targeted by a merge: always when `target_branches` is absent, else when listed
    /// (exact, case-sensitive, as git compares refs).
    pub fn target_allowed(&self, branch: &str) -> bool {
        match &self.target_branches {
            None => true,
            Some(branches) => branches.iter().any(|b| b == branch),
        }
    }
}

/// `repos[].jobs` (Greg).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobsConfig {
    /// `jobs.test`: run on push and pull-request updates (CONTEXT=test).
    pub test: Option<JobRef>,
    /// `jobs.merge`: run on "@greg please" (CONTEXT=merge).
    pub merge: Option<JobRef>,
}

/// `repos[].jobs.test` / `repos[].jobs.merge`: a job on a configured builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    /// `name`: the builder's job name (Jenkins: full name, folders joined by `/`).
    pub name: JobName,
    /// `builder`: a key configured under `builders` (`jenkins`).
    pub builder: String,
}

/// How "@greg please" lands a pull request (`repos[].merge_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MergeMode {
    /// `builder` (Greg, the default): the merge job merges and pushes.
    #[default]
    Builder,
    /// `staging` (Patronus, bors): greg merges into a staging ref, the merge job tests it,
    /// greg fast-forwards the target to exactly that commit.
    Staging,
}

impl MergeMode {
    /// `builder` or `staging`, as written in config.yaml.
    pub fn as_str(&self) -> &'static str {
        match self {
            MergeMode::Builder => "builder",
            MergeMode::Staging => "staging",
        }
    }
}

impl fmt::Display for MergeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `repos[].names` (Greg's format): a repository name, or a regular
/// expression between slashes (`/^chef-/`).
#[derive(Debug, Clone)]
pub enum NamePattern {
    /// A plain name: matches the **whole** repository name, ASCII case-insensitively (GitHub
    /// and Bitbucket treat `Demo` and `demo` as one repository).
    Exact(String),
    /// `/regex/`: **search** semantics, as Python's `re.search`: it matches when it matches
    /// anywhere in the name, so anchor it (`/^chef-/`, `/^api$/`) to constrain it. Case-
    /// sensitive unless the pattern says `(?i)`. Syntax: the `regex` crate's
    /// (<https://docs.rs/regex/latest/regex/#syntax>).
    Regex(regex::Regex),
}

/// Why a `names` entry is not a [`NamePattern`]. The message holds the entry as written
/// (repository names are not secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidNamePattern(String);

impl NamePattern {
    /// Parses one `names` entry: `/.../` (at least two characters, slash at both ends) is
    /// a regular expression, anything else an exact name, which must not be blank and must
    /// not contain `/` or whitespace.
    pub fn parse(text: &str) -> Result<Self, InvalidNamePattern> {
        if let Some(pattern) = text
            .strip_prefix('/')
            .and_then(|rest| rest.strip_suffix('/'))
        {
            return regex::Regex::new(pattern)
                .map(NamePattern::Regex)
                .map_err(|e| {
                    InvalidNamePattern(format!(
                        "`{text}` is not a valid regular expression: {}",
                        regex_reason(&e)
                    ))
                });
        }
        if text.trim().is_empty() {
            return Err(InvalidNamePattern(
                "a repository name must not be empty".to_owned(),
            ));
        }
        if text.starts_with('/') {
            return Err(InvalidNamePattern(format!(
                "`{text}` starts with `/` but does not end with one: write `/regex/` for a \
                 pattern, or the plain repository name"
            )));
        }
        if text.contains('/') || text.contains(char::is_whitespace) {
            return Err(InvalidNamePattern(format!(
                "`{text}` is not a repository name (no `/` or spaces; owners go under \
                 `organizations`)"
            )));
        }
        Ok(NamePattern::Exact(text.to_owned()))
    }

    /// Whether `name` (a repository name without its owner) matches; see the variants.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Exact(exact) => exact.eq_ignore_ascii_case(name),
            NamePattern::Regex(re) => re.is_match(name),
        }
    }
}

/// The last line of a regex error (`regex parse error: ... error: unclosed group` becomes
/// `unclosed group`), so the message stays on one line.
fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    let reason = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .or_else(|| text.lines().last())
        .unwrap_or("invalid pattern");
    reason.trim().to_owned()
}

impl fmt::Display for NamePattern {
    /// As written in config.yaml: the name, or `/regex/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamePattern::Exact(name) => f.write_str(name),
            NamePattern::Regex(re) => write!(f, "/{}/", re.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(owner: &str, name: &str) -> RepoName {
        RepoName::new(owner, name)
    }

    fn entry(provider: &str, orgs: &[&str], names: &[&str]) -> RepoConfig {
        RepoConfig {
            provider: provider.to_owned(),
            organizations: orgs.iter().map(|s| (*s).to_owned()).collect(),
            names: names
                .iter()
                .map(|n| NamePattern::parse(n).expect("valid pattern"))
                .collect(),
            jobs: JobsConfig::default(),
            merge_mode: MergeMode::Builder,
            target_branches: None,
            reviewers: vec![],
            required_approvals: 1,
            allow_forks: false,
            comments: true,
            test_merged: false,
            max_test_builds: DEFAULT_MAX_TEST_BUILDS,
            merge_queue: MergeQueueConfig::default(),
            report: ReportConfig::default(),
            notify: Vec::new(),
            delete_commands: false,
        }
    }

    #[test]
    fn exact_names_match_the_whole_name_case_insensitively() {
        let p = NamePattern::parse("demo").expect("valid");
        assert!(p.matches("demo"));
        assert!(p.matches("Demo"));
        assert!(!p.matches("demo2"));
        assert!(!p.matches("my-demo"));
    }

    #[test]
    fn regex_names_search_anywhere_unless_anchored() {
        let anchored = NamePattern::parse("/^chef-/").expect("valid");
        assert!(anchored.matches("chef-nginx"));
        assert!(!anchored.matches("my-chef-nginx"));
        let loose = NamePattern::parse("/chef/").expect("valid");
        assert!(loose.matches("my-chef-nginx"));
        assert!(!loose.matches("Chef"));
        assert_eq!(anchored.to_string(), "/^chef-/");
    }

    #[test]
    fn bad_names_are_rejected_with_a_reason() {
        let err = |t: &str| NamePattern::parse(t).expect_err("invalid").to_string();
        assert_eq!(
            err("/^chef-(/"),
            "`/^chef-(/` is not a valid regular expression: unclosed group"
        );
        assert!(err("/^chef-").contains("does not end with one"));
        assert!(err("acme/demo").contains("owners go under `organizations`"));
        assert!(err(" ").contains("must not be empty"));
    }

    #[test]
    fn repo_matches_provider_owner_and_name() {
        let e = entry("github", &["Acme"], &["demo", "/^chef-/"]);
        assert!(e.matches("github", &repo("acme", "demo")));
        assert!(e.matches("github", &repo("ACME", "chef-apache")));
        assert!(!e.matches("bitbucket", &repo("acme", "demo")));
        assert!(!e.matches("github", &repo("other", "demo")));
        assert!(!e.matches("github", &repo("acme", "website")));
    }

    #[test]
    fn first_matching_entry_wins() {
        let mut first = entry("github", &["acme"], &["/.*/"]);
        first.required_approvals = 2;
        let config = Config {
            server: ServerConfig::default(),
            providers: ProvidersConfig::default(),
            builders: BuildersConfig::default(),
            repos: vec![entry("github", &["acme"], &["demo"]), first],
            reports: ReportsConfig::default(),
        };
        let demo = config.repo("github", &repo("acme", "demo")).expect("demo");
        assert_eq!(demo.required_approvals, 1);
        let other = config.repo("github", &repo("acme", "x")).expect("x");
        assert_eq!(other.required_approvals, 2);
        assert!(config.repo("github", &repo("else", "x")).is_none());
    }

    #[test]
    fn target_branches_default_to_every_branch() {
        let mut e = entry("github", &["acme"], &["demo"]);
        assert!(e.target_allowed("feature/x"));
        e.target_branches = Some(vec!["master".into(), "release".into()]);
        assert!(e.target_allowed("master"));
        assert!(!e.target_allowed("Master"));
        assert!(!e.target_allowed("feature/x"));
    }
}
