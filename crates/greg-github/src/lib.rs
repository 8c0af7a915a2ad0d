//! greg-github: the GitHub [`Provider`](greg_core::Provider) — webhook signature check and
//! parsing into greg's normalized events (pure), and the REST calls greg makes, on octocrab.
//!
//! Layout: [`config`] (settings), [`webhook`] (deliveries), [`client`] (REST and the trait
//! implementation), `app` (GitHub App installation clients), [`error`] (HTTP status →
//! [`greg_core::Error`]). GitHub's JSON is read with greg's own minimal structs (private
//! `wire` module); wire types never leave this crate.

#![warn(missing_docs)]

mod app;
pub mod client;
pub mod config;
mod deliveries;
pub mod error;
pub mod hooks;
pub mod oauth;
mod routes;
pub mod webhook;
mod wire;

pub use client::{CombinedStatus, GithubProvider, MAX_DESCRIPTION_CHARS};
pub use config::{GithubAppConfig, GithubConfig};
pub use hooks::{GREG_EVENTS, Hook, HookSpec, MASKED_SECRET};
pub use oauth::OauthClient;
