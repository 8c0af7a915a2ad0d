//! greg-bitbucket: the Bitbucket [`Provider`](greg_core::Provider), for Bitbucket Cloud (REST
//! 2.0) and Bitbucket Server/Data Center (REST 1.0) behind one type, [`BitbucketProvider`]:
//! webhook signature check and parsing into greg's normalized events (pure), and the REST
//! calls greg makes, on reqwest.
//!
//! Layout: [`config`] (settings, flavor), [`webhook`] (deliveries), [`event`] (what a delivery
//! parses into before greg-core's types, and the Cloud events whose head must be looked up),
//! [`client`] (REST and the trait implementation), [`hooks`] (repository webhooks for
//! `greg fix-hooks`), [`error`] (HTTP status →
//! [`greg_core::Error`]). Bitbucket's JSON is read with greg's own minimal structs (private
//! `wire` module); wire types never leave this crate.
//!
//! Where Bitbucket differs from GitHub, and what greg does about it, is written in
//! docs/providers.md.

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod error;
pub mod event;
pub mod hooks;
mod routes;
pub mod webhook;
mod wire;

pub use client::{BitbucketProvider, MAX_DESCRIPTION_CHARS};
pub use config::{BitbucketConfig, Flavor};
pub use event::{AbbreviatedSha, Parsed, PendingEvent, PendingPullRequest, UnresolvedEvent};
pub use hooks::{CLOUD_EVENTS, Hook, HookSpec, SERVER_EVENTS, greg_events};
