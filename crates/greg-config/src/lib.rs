//! greg-config: reads greg's config.yaml, which is Greg's own config.yaml read unchanged
//! plus greg's optional keys (SPEC §2). `config.yaml.example` at the repository root shows
//! and explains every key.
//!
//! ```
//! use greg_config::Config;
//! use greg_core::RepoName;
//!
//! let yaml = r#"
//! providers:
//!   github:
//!     username: greg-bot
//!     password: ${GITHUB_TOKEN}
//!     incoming_token: s3cret
//!     source: "git@github.com:"
//! builders:
//!   jenkins:
//!     url: https://jenkins.example.com
//!     username: greg
//!     password: ${JENKINS_API_TOKEN}
//!     incoming_token: j3nk1ns
//! repos:
//!   - provider: github
//!     organizations: [acme]
//!     names: [demo, /^chef-/]
//!     jobs:
//!       test: {name: demo-test, builder: jenkins}
//! "#;
//! let env = |name: &str| Some(format!("value of {name}"));
//! let config = Config::from_yaml_str(yaml, &env).unwrap();
//! assert_eq!(config.server.listen, "127.0.0.1:8080");
//! let repo = config.repo("github", &RepoName::new("acme", "chef-nginx")).unwrap();
//! assert_eq!(repo.jobs.test.as_ref().unwrap().name.as_str(), "demo-test");
//! ```
//!
//! # Rules
//!
//! - **`${ENV}`**: every string value may reference environment variables, whole
//!   (`${GITHUB_TOKEN}`) or inside text (`Bearer ${T}`); `$$` is a literal `$`; any other
//!   `$` stays as written. Numbers and booleans may be given as `${VAR}` too. An unset
//!   variable is an error naming the variable, the key and the line. Keys are never
//!   expanded, and expansion is not recursive.
//! - **`${file:PATH}`**: a value may also come from a file (`${file:/run/secrets/token}`;
//!   a relative `PATH` is relative to config.yaml's directory), with one trailing newline
//!   removed. A file that cannot be read is an error naming the key, the line and the path,
//!   never the content. [`Config::load`] reads files; [`Config::from_yaml_str`] refuses
//!   them and [`Config::from_yaml_str_with`] takes the reader as a [`Sources`].
//! - **Unknown keys** are errors naming the key, its line and the keys allowed there.
//! - **Values are checked while reading**, so their errors carry the line: URLs
//!   (`public_url`, `api_url`, `builders.jenkins.url`) must be absolute http(s) URLs without
//!   credentials and are stored without a trailing `/`; `listen` is `host:port`; `bot_name`
//!   is one word without `@`; `required_approvals` is 0 to 100; the `*_secs` durations are
//!   1 s to 30 days; `names` entries are names or valid `/regex/`; `organizations` and
//!   `names` are non-empty; `repos[].provider` and `jobs.*.builder` must be configured under
//!   `providers` / `builders`; `password` and `incoming_token` are required and non-empty
//!   (Greg required them), except that `providers.github` takes `app` (a GitHub App: `id`,
//!   `private_key` or `private_key_path`, optional `installation_id`) instead of `password`; a present `webhook_secret` is non-empty; Bitbucket Server needs
//!   `api_url`; at least one provider is configured; `providers.github.oauth` (sign-in,
//!   SPEC §9) needs `server.session_secret`, at least 32 bytes.
//! - **Secrets never print**: credentials are [`greg_core::Secret`] (`Debug` shows `***`),
//!   and error messages quote no secret, URL, database or `${ENV}`-expanded value.
//!
//! # Compatibility with Greg
//!
//! Greg's keys keep their meaning. Two differences can bite a Greg file: a literal `${` or
//! `$$` in a value now means expansion or `$` (write `$${` / `$$$$`), and scalars Greg's
//! PyYAML read as numbers (an all-digit `incoming_token`) are read as the text written.

mod env;
mod error;
mod load;
mod model;
mod schema;
mod validate;

pub use error::{ConfigError, ConfigErrorKind, DEFAULT_FILE_NAME};
pub use load::Sources;
pub use model::{
    BitbucketFlavor, BitbucketProviderConfig, BuildersConfig, Config,
    DEFAULT_BITBUCKET_CLOUD_API_URL, DEFAULT_BOT_NAME, DEFAULT_BUILD_POLL_AFTER,
    DEFAULT_BUILD_TIMEOUT, DEFAULT_DATABASE, DEFAULT_DELIVERY_RETENTION_DAYS,
    DEFAULT_GITHUB_API_URL, DEFAULT_GITHUB_WEB_URL, DEFAULT_LISTEN, DEFAULT_MAX_TEST_BUILDS,
    DEFAULT_REPORT_RETENTION_DAYS, DEFAULT_REPORT_STORE_RETENTION_DAYS, DEFAULT_REQUIRED_APPROVALS,
    GithubApp, GithubOauth, GithubProviderConfig, InvalidNamePattern, JenkinsBuilderConfig, JobRef,
    JobsConfig, MAX_EXPECTED_JOB_CHARS, MIN_SESSION_SECRET_BYTES, MergeMode, MergeQueueConfig,
    NamePattern, NotifyEvent, NotifyFormat, NotifyTarget, ProvidersConfig, RepoConfig,
    ReportConfig, ReportStoreApi, ReportStoreConfig, ReportsConfig, ServerConfig,
};
