//! greg-jenkins: the Jenkins [`Builder`](greg_core::Builder) — a small async client on
//! reqwest for parameterized builds, queue items, build status, stop and job config.xml, and
//! the parser of Jenkins Notification plugin callbacks.
//!
//! Layout: `config.rs` (what greg needs to reach Jenkins), `client.rs` (HTTP, CSRF crumbs,
//! the `Builder` impl), `api.rs` (Remote API JSON and URLs, pure), `notification.rs`
//! (callback JSON, pure), `error.rs` (the one status → [`greg_core::Error`] mapping),
//! `job_config.rs` (the config.xml editor of `greg fix-hooks`, pure).
//!
//! Architecture invariant: Jenkins wire types never leave this crate; callers see
//! greg-core's [`BuildState`](greg_core::BuildState) and
//! [`BuildUpdate`](greg_core::BuildUpdate). The API token never appears in a log line, an
//! error message or a `Debug`/`Display` output.
//!
//! The jenkins_api crate was weighed and rejected (0.8.0 from 2020, blocking, tokio 0.2 and
//! OpenSSL, no config.xml writes, no stop); see docs/dependencies.md.

mod api;
mod client;
mod config;
mod error;
pub mod job_config;
mod notification;

pub use client::JenkinsBuilder;
pub use config::{DEFAULT_NAME, DEFAULT_REQUEST_TIMEOUT, JenkinsConfig};
pub use job_config::{
    EndpointSpec, EndpointSummary, JobConfigChange, JobConfigError, JobConfigSummary,
    ensure_greg_job_config, inspect, mask_token, unified_diff,
};
pub use notification::parse_notification;
