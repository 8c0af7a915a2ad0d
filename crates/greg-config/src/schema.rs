//! The on-disk schema of config.yaml: serde structs that mirror the file key for key (Greg's
//! keys plus greg's), reject unknown keys, and convert infallibly into [`crate::model`].
//! Every leaf is a validating type from [`crate::validate`], so a bad value fails here,
//! with its line.

use crate::model::{
    BitbucketFlavor, BitbucketProviderConfig, BuildersConfig, Config,
    DEFAULT_BITBUCKET_CLOUD_API_URL, DEFAULT_GITHUB_API_URL, DEFAULT_GITHUB_WEB_URL,
    DEFAULT_MAX_TEST_BUILDS, DEFAULT_REPORT_STORE_RETENTION_DAYS, DEFAULT_REQUIRED_APPROVALS,
    GithubApp, GithubOauth, GithubProviderConfig, JenkinsBuilderConfig, JobRef, JobsConfig,
    MergeQueueConfig, NotifyFormat, NotifyTarget, ProvidersConfig, RepoConfig, ReportConfig,
    ReportStoreApi, ReportStoreConfig, ReportsConfig, ServerConfig,
};
use crate::validate::{
    Approvals, BotName, Branch, BuildCap, BuilderRef, Database, Days, ExpectList, Flag, Flavor,
    GithubId, HttpUrl, KeyFile, Listen, Mode, NonEmpty, NotifyEventName, NotifyFormatName,
    NotifyUrl, Owner, Pattern, ProviderRef, QueueSize, Required, Reviewer, Seconds, SecretValue,
    SessionSecret, StoreApi, StorePrefix, checked_map, http_url,
};
use greg_core::{JobName, Secret};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// The document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    server: Option<FileServer>,
    providers: FileProviders,
    builders: Option<FileBuilders>,
    repos: Option<Vec<FileRepo>>,
    reports: Option<FileReports>,
}

/// `server:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    listen: Option<Listen>,
    public_url: Option<HttpUrl>,
    database: Option<Database>,
    bot_name: Option<BotName>,
    unstable_is_success: Option<Flag>,
    build_poll_after_secs: Option<Seconds>,
    build_timeout_secs: Option<Seconds>,
    reconcile_interval_secs: Option<Seconds>,
    lease_secs: Option<Seconds>,
    retry_window_secs: Option<Seconds>,
    shutdown_grace_secs: Option<Seconds>,
    delivery_retention_days: Option<Days>,
    report_retention_days: Option<Days>,
    build_start_timeout_secs: Option<Seconds>,
    admin_token: Option<SecretValue>,
    session_secret: Option<SessionSecret>,
    public_pages: Option<Flag>,
}

/// `providers:`, checked to hold at least one provider.
struct FileProviders {
    github: Option<FileGithub>,
    bitbucket: Option<FileBitbucket>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProvidersKeys {
    #[serde(default, deserialize_with = "present")]
    github: Option<FileGithub>,
    #[serde(default, deserialize_with = "present")]
    bitbucket: Option<FileBitbucket>,
}

impl<'de> Deserialize<'de> for FileProviders {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |keys: FileProvidersKeys| {
            if keys.github.is_none() && keys.bitbucket.is_none() {
                return Err("configure at least one provider (github or bitbucket)".to_owned());
            }
            Ok(FileProviders {
                github: keys.github,
                bitbucket: keys.bitbucket,
            })
        })
    }
}

/// A section that configures something when present, even when left empty: `github:` with
/// nothing under it reads as an empty mapping and fails on its first missing key, rather
/// than silently configuring nothing.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `providers.github:`, checked to authenticate with exactly one of `password` and `app`.
struct FileGithub(FileGithubKeys);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGithubKeys {
    username: Required,
    password: Option<SecretValue>,
    app: Option<FileGithubApp>,
    incoming_token: SecretValue,
    source: Required,
    webhook_secret: Option<SecretValue>,
    api_url: Option<HttpUrl>,
    web_url: Option<HttpUrl>,
    oauth: Option<FileGithubOauth>,
}

/// `providers.github.oauth:` (SPEC §9).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGithubOauth {
    client_id: Required,
    client_secret: SecretValue,
}

impl<'de> Deserialize<'de> for FileGithub {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |keys: FileGithubKeys| {
            match (&keys.password, &keys.app) {
                (Some(_), Some(_)) => Err("set either `password` (a token) or `app` (a GitHub \
                     App), not both"
                    .to_owned()),
                (None, None) => {
                    Err("missing key `password` (a token) or `app` (a GitHub App)".to_owned())
                }
                _ if keys.oauth.is_some()
                    && !crate::env::current().is_some_and(|c| c.session_secret) =>
                {
                    Err(format!(
                        "`oauth` needs `server.session_secret` (a random string of at least {} \
                         bytes that seals the sign-in cookie)",
                        crate::model::MIN_SESSION_SECRET_BYTES
                    ))
                }
                _ => Ok(FileGithub(keys)),
            }
        })
    }
}

/// `providers.github.app:`, checked to give the key exactly once.
struct FileGithubApp(GithubApp);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGithubAppKeys {
    id: GithubId,
    private_key: Option<SecretValue>,
    private_key_path: Option<KeyFile>,
    installation_id: Option<GithubId>,
}

impl<'de> Deserialize<'de> for FileGithubApp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |keys: FileGithubAppKeys| {
            let private_key = match (keys.private_key, keys.private_key_path) {
                (Some(key), None) => key.0,
                (None, Some(file)) => file.0,
                (Some(_), Some(_)) => {
                    return Err(
                        "set either `private_key` or `private_key_path`, not both".to_owned()
                    );
                }
                (None, None) => {
                    return Err("missing key `private_key_path` (or `private_key`)".to_owned());
                }
            };
            Ok(FileGithubApp(GithubApp {
                id: keys.id.0,
                private_key,
                installation_id: keys.installation_id.map(|v| v.0),
            }))
        })
    }
}

/// `providers.bitbucket:`, checked to name an `api_url` for Bitbucket Server.
struct FileBitbucket(FileBitbucketKeys);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBitbucketKeys {
    flavor: Option<Flavor>,
    username: Required,
    password: SecretValue,
    incoming_token: SecretValue,
    webhook_secret: Option<SecretValue>,
    source: Required,
    api_url: Option<HttpUrl>,
}

impl<'de> Deserialize<'de> for FileBitbucket {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |keys: FileBitbucketKeys| {
            let server = matches!(keys.flavor, Some(Flavor(BitbucketFlavor::Server)));
            if server && keys.api_url.is_none() {
                return Err(
                    "`api_url` is required when `flavor` is `server` (the Bitbucket \
                            Server base URL, like https://bitbucket.example.com)"
                        .to_owned(),
                );
            }
            Ok(FileBitbucket(keys))
        })
    }
}

/// `builders:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBuilders {
    #[serde(default, deserialize_with = "present")]
    jenkins: Option<FileJenkins>,
}

/// `builders.jenkins:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJenkins {
    url: HttpUrl,
    username: Required,
    password: SecretValue,
    incoming_token: SecretValue,
}

/// One `repos[]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepo {
    provider: ProviderRef,
    organizations: NonEmpty<Owner>,
    names: NonEmpty<Pattern>,
    jobs: Option<FileJobs>,
    merge_mode: Option<Mode>,
    target_branches: Option<NonEmpty<Branch>>,
    reviewers: Option<Vec<Reviewer>>,
    required_approvals: Option<Approvals>,
    allow_forks: Option<Flag>,
    comments: Option<Flag>,
    test_merged: Option<Flag>,
    max_test_builds: Option<BuildCap>,
    merge_queue: Option<FileMergeQueue>,
    report: Option<FileReport>,
    notify: Option<Vec<FileNotify>>,
    delete_commands: Option<Flag>,
}

/// One `repos[].notify` entry (SPEC §9), checked as a whole: `format: json` needs `secret`.
struct FileNotify(NotifyTarget);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNotifyKeys {
    url: NotifyUrl,
    events: NonEmpty<NotifyEventName>,
    secret: Option<SecretValue>,
    format: Option<NotifyFormatName>,
}

impl<'de> Deserialize<'de> for FileNotify {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |k: FileNotifyKeys| {
            let format = k.format.map(|f| f.0).unwrap_or_default();
            if format == NotifyFormat::Json && k.secret.is_none() {
                return Err("missing key `secret` (format is json: the receiver checks \
                            X-Greg-Signature-256 with it)"
                    .to_owned());
            }
            let mut events = Vec::new();
            for e in k.events.0 {
                if !events.contains(&e.0) {
                    events.push(e.0);
                }
            }
            let (url, host) = k.url.0;
            Ok(FileNotify(NotifyTarget {
                url,
                host,
                events,
                format,
                secret: k.secret.map(|s| s.0),
            }))
        })
    }
}

/// `repos[].report:` (SPEC §8).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReport {
    expect: Option<ExpectList>,
}

/// `reports:` (SPEC §8).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReports {
    #[serde(default, deserialize_with = "present")]
    store: Option<FileReportStore>,
}

/// `reports.store:`, checked as a whole: what each `api` needs (as `greg notify` checks its
/// `store_*` keys).
struct FileReportStore(ReportStoreConfig);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReportStoreKeys {
    api: StoreApi,
    endpoint: Option<Required>,
    identity: Option<Required>,
    secret: Option<SecretValue>,
    bucket: Option<Required>,
    region: Option<Required>,
    prefix: Option<StorePrefix>,
    public_url: Option<HttpUrl>,
    retention_days: Option<Days>,
}

impl<'de> Deserialize<'de> for FileReportStore {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |k: FileReportStoreKeys| {
            let api = k.api.0;
            let endpoint = match (api, k.endpoint) {
                (ReportStoreApi::File, None) => {
                    return Err("missing key `endpoint` (api is file: the folder to keep \
                                reports in)"
                        .to_owned());
                }
                (ReportStoreApi::File, Some(folder)) => Some(folder.0),
                (_, Some(url)) => {
                    Some(http_url(&url.0).map_err(|e| format!("endpoint (api is {api}): {e}"))?)
                }
                (_, None) => None,
            };
            let bucket = match (api, k.bucket) {
                (_, Some(bucket)) => bucket.0,
                (ReportStoreApi::File, None) => String::new(),
                (_, None) => {
                    return Err(format!(
                        "missing key `bucket` (api is {api}: the bucket or container)"
                    ));
                }
            };
            match api {
                ReportStoreApi::S3 if k.identity.is_some() != k.secret.is_some() => {
                    let missing = if k.identity.is_none() {
                        "identity"
                    } else {
                        "secret"
                    };
                    return Err(format!(
                        "missing key `{missing}` (api is s3: `identity` (access key id) and \
                         `secret` go together)"
                    ));
                }
                ReportStoreApi::Azure if k.identity.is_none() => {
                    return Err(
                        "missing key `identity` (api is azure: the account name)".to_owned()
                    );
                }
                _ => {}
            }
            Ok(FileReportStore(ReportStoreConfig {
                api,
                endpoint,
                identity: k.identity.map(|v| v.0),
                secret: k.secret.map(|v| v.0),
                bucket,
                region: k.region.map(|v| v.0),
                prefix: k.prefix.map(|v| v.0).unwrap_or_default(),
                public_url: k.public_url.map(|v| v.0),
                retention_days: k
                    .retention_days
                    .map_or(DEFAULT_REPORT_STORE_RETENTION_DAYS, |v| v.0),
            }))
        })
    }
}

/// `repos[].merge_queue:` (SPEC §10), checked as a whole: `window_min` ≤ `window`.
struct FileMergeQueue(MergeQueueConfig);

impl<'de> Deserialize<'de> for FileMergeQueue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawMergeQueue::deserialize(d)?;
        FileMergeQueue::try_from(raw).map_err(serde::de::Error::custom)
    }
}

/// The fields of `repos[].merge_queue:` before the whole is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMergeQueue {
    batch_size: Option<QueueSize>,
    window: Option<QueueSize>,
    adaptive: Option<Flag>,
    window_min: Option<QueueSize>,
    optimistic: Option<Flag>,
}

impl TryFrom<RawMergeQueue> for FileMergeQueue {
    type Error = String;

    fn try_from(r: RawMergeQueue) -> Result<Self, String> {
        let d = MergeQueueConfig::default();
        let q = MergeQueueConfig {
            batch_size: r.batch_size.map_or(d.batch_size, |v| v.0),
            window: r.window.map_or(d.window, |v| v.0),
            adaptive: r.adaptive.is_some_and(|v| v.0),
            window_min: r.window_min.map_or(d.window_min, |v| v.0),
            optimistic: r.optimistic.is_some_and(|v| v.0),
        };
        if q.window_min > q.window {
            return Err(format!(
                "merge_queue.window_min ({}) must not be larger than merge_queue.window ({})",
                q.window_min, q.window
            ));
        }
        Ok(FileMergeQueue(q))
    }
}

/// `repos[].jobs:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJobs {
    test: Option<FileJob>,
    merge: Option<FileJob>,
}

/// `repos[].jobs.test:` / `repos[].jobs.merge:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJob {
    name: Required,
    builder: BuilderRef,
}

impl From<FileConfig> for Config {
    fn from(file: FileConfig) -> Self {
        Config {
            server: file.server.map(ServerConfig::from).unwrap_or_default(),
            providers: ProvidersConfig {
                github: file.providers.github.map(GithubProviderConfig::from),
                bitbucket: file.providers.bitbucket.map(BitbucketProviderConfig::from),
            },
            builders: BuildersConfig {
                jenkins: file
                    .builders
                    .and_then(|b| b.jenkins)
                    .map(JenkinsBuilderConfig::from),
            },
            repos: file
                .repos
                .unwrap_or_default()
                .into_iter()
                .map(RepoConfig::from)
                .collect(),
            reports: ReportsConfig {
                store: file.reports.and_then(|r| r.store).map(|s| s.0),
            },
        }
    }
}

impl From<FileServer> for ServerConfig {
    fn from(s: FileServer) -> Self {
        let defaults = ServerConfig::default();
        ServerConfig {
            listen: s.listen.map_or(defaults.listen, |v| v.0),
            public_url: s.public_url.map(|v| v.0),
            database: s.database.map_or(defaults.database, |v| v.0),
            bot_name: s.bot_name.map_or(defaults.bot_name, |v| v.0),
            unstable_is_success: s
                .unstable_is_success
                .map_or(defaults.unstable_is_success, |v| v.0),
            build_poll_after: s
                .build_poll_after_secs
                .map_or(defaults.build_poll_after, |v| Duration::from_secs(v.0)),
            build_timeout: s
                .build_timeout_secs
                .map_or(defaults.build_timeout, |v| Duration::from_secs(v.0)),
            reconcile_interval: s
                .reconcile_interval_secs
                .map_or(defaults.reconcile_interval, |v| Duration::from_secs(v.0)),
            lease: s
                .lease_secs
                .map_or(defaults.lease, |v| Duration::from_secs(v.0)),
            retry_window: s
                .retry_window_secs
                .map_or(defaults.retry_window, |v| Duration::from_secs(v.0)),
            shutdown_grace: s
                .shutdown_grace_secs
                .map_or(defaults.shutdown_grace, |v| Duration::from_secs(v.0)),
            delivery_retention_days: s
                .delivery_retention_days
                .map_or(defaults.delivery_retention_days, |v| v.0),
            report_retention_days: s
                .report_retention_days
                .map_or(defaults.report_retention_days, |v| v.0),
            build_start_timeout: s
                .build_start_timeout_secs
                .map_or(defaults.build_start_timeout, |v| Duration::from_secs(v.0)),
            admin_token: s.admin_token.map(|v| v.0),
            session_secret: s.session_secret.map(|v| v.0),
            public_pages: s.public_pages.is_some_and(|v| v.0),
        }
    }
}

impl From<FileGithub> for GithubProviderConfig {
    fn from(FileGithub(g): FileGithub) -> Self {
        GithubProviderConfig {
            username: g.username.0,
            password: g.password.map_or_else(|| Secret::new(""), |v| v.0),
            app: g.app.map(|v| v.0),
            incoming_token: g.incoming_token.0,
            source: g.source.0,
            webhook_secret: g.webhook_secret.map(|v| v.0),
            api_url: g
                .api_url
                .map_or_else(|| DEFAULT_GITHUB_API_URL.to_owned(), |v| v.0),
            web_url: g
                .web_url
                .map_or_else(|| DEFAULT_GITHUB_WEB_URL.to_owned(), |v| v.0),
            oauth: g.oauth.map(|o| GithubOauth {
                client_id: o.client_id.0,
                client_secret: o.client_secret.0,
            }),
        }
    }
}

impl From<FileBitbucket> for BitbucketProviderConfig {
    fn from(FileBitbucket(b): FileBitbucket) -> Self {
        BitbucketProviderConfig {
            flavor: b.flavor.map(|v| v.0).unwrap_or_default(),
            username: b.username.0,
            password: b.password.0,
            incoming_token: b.incoming_token.0,
            webhook_secret: b.webhook_secret.map(|v| v.0),
            source: b.source.0,
            // Server without api_url was rejected by `TryFrom`.
            api_url: b
                .api_url
                .map_or_else(|| DEFAULT_BITBUCKET_CLOUD_API_URL.to_owned(), |v| v.0),
        }
    }
}

impl From<FileJenkins> for JenkinsBuilderConfig {
    fn from(j: FileJenkins) -> Self {
        JenkinsBuilderConfig {
            url: j.url.0,
            username: j.username.0,
            password: j.password.0,
            incoming_token: j.incoming_token.0,
        }
    }
}

impl From<FileJob> for JobRef {
    fn from(j: FileJob) -> Self {
        JobRef {
            name: JobName(j.name.0),
            builder: j.builder.0,
        }
    }
}

impl From<FileRepo> for RepoConfig {
    fn from(r: FileRepo) -> Self {
        let jobs = r.jobs.map_or_else(JobsConfig::default, |j| JobsConfig {
            test: j.test.map(JobRef::from),
            merge: j.merge.map(JobRef::from),
        });
        RepoConfig {
            provider: r.provider.0,
            organizations: r.organizations.0.into_iter().map(|o| o.0).collect(),
            names: r.names.0.into_iter().map(|p| p.0).collect(),
            jobs,
            merge_mode: r.merge_mode.map(|v| v.0).unwrap_or_default(),
            target_branches: r
                .target_branches
                .map(|b| b.0.into_iter().map(|b| b.0).collect()),
            reviewers: r
                .reviewers
                .unwrap_or_default()
                .into_iter()
                .map(|l| l.0)
                .collect(),
            required_approvals: r
                .required_approvals
                .map_or(DEFAULT_REQUIRED_APPROVALS, |v| v.0),
            allow_forks: r.allow_forks.is_some_and(|v| v.0),
            comments: r.comments.is_none_or(|v| v.0),
            test_merged: r.test_merged.is_some_and(|v| v.0),
            max_test_builds: r.max_test_builds.map_or(DEFAULT_MAX_TEST_BUILDS, |v| v.0),
            merge_queue: r.merge_queue.map(|q| q.0).unwrap_or_default(),
            report: ReportConfig {
                expect: r
                    .report
                    .and_then(|p| p.expect)
                    .map(|e| e.0)
                    .unwrap_or_default(),
            },
            notify: r
                .notify
                .unwrap_or_default()
                .into_iter()
                .map(|n| n.0)
                .collect(),
            delete_commands: r.delete_commands.is_some_and(|v| v.0),
        }
    }
}
