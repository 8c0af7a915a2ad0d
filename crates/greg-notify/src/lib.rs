//! `greg notify`: notify_pr rewritten. A CI job's summary and detail files end up in ONE
//! pull-request comment: the files go to an object store (S3 and S3-compatible servers, GCS,
//! Azure Blob Storage, or a local folder) under `<prefix>/<owner>/<repo>/<commit>/`, each with
//! its Content-Type and expiry, and the comment links them (an index page when there are more
//! than [`upload::INDEX_THRESHOLD`]).
//!
//! This crate holds what needs no provider: settings ([`settings`]: INI file and flags), the
//! store ([`store`]: open, put, link, prune; also what greg's server uses for
//! `reports.store`), what is uploaded ([`upload`]) and the comment's text ([`comment`]).
//! Finding the pull request and posting the comment go through greg's `Provider` adapters, in
//! the `greg` binary (`src/notify.rs`).
//!
//! It also holds the chat notifications of greg's server (`repos[].notify`, [`chat`]): their
//! bodies, signature and poster; the engine decides what to send and when.

pub mod chat;
pub mod comment;
pub mod settings;
pub mod store;
pub mod upload;

pub use bytes::Bytes;
pub use settings::{Key, NotifySettings, ProviderKind, PruneSettings, SettingsError, Values};
pub use store::{Link, PruneReport, PruneRule, Store, StoreApi, StoreSettings, open};

use chrono::{DateTime, Utc};
use std::path::PathBuf;

/// Why a notify step failed. One line each; never a secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The settings are unusable (exit code 2).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A local file or folder cannot be read or made.
    #[error("{}: {reason}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The system's message.
        reason: String,
    },
    /// Two files would be uploaded under one name.
    #[error("{} and {} would both be uploaded as {name}", first.display(), second.display())]
    Duplicate {
        /// The name under the commit's folder.
        name: String,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// The object store refused or failed (its one-line reason).
    #[error("object store: {0}")]
    Store(String),
}

/// What a run published: each uploaded file with its link, the index page when there is
/// one, and when it all expires.
#[derive(Debug, Clone)]
pub struct Published {
    /// `(name under the commit's folder, link)`, sorted by name.
    pub links: Vec<(String, Link)>,
    /// The index page, when more than [`upload::INDEX_THRESHOLD`] files were uploaded.
    pub index: Option<Link>,
    /// When the uploads expire.
    pub expires: DateTime<Utc>,
}

/// The folder of a commit's files, relative to the store's prefix: `<owner>/<repo>/<commit>`.
pub fn commit_folder(settings: &NotifySettings) -> String {
    format!("{}/{}/{}", settings.owner, settings.repo, settings.commit)
}

/// Uploads the files of `settings` (collected with [`upload::collect`]) to `store`, expiring
/// `retention_days` after `now`, and the index page when there are many; `done` is called
/// after each file.
///
/// Errors: see [`upload::collect`] and [`upload::upload_all`].
pub async fn publish(
    settings: &NotifySettings,
    store: &Store,
    uploads: &[upload::Upload],
    now: DateTime<Utc>,
    done: &(dyn Fn(&Link) + Sync),
) -> Result<Published, NotifyError> {
    let expires = now + chrono::Duration::days(i64::from(settings.retention_days));
    let base = commit_folder(settings);
    let links = upload::upload_all(store, &base, uploads, expires.timestamp(), done).await?;
    let links: Vec<(String, Link)> = uploads.iter().map(|u| u.name.clone()).zip(links).collect();
    let index = if links.len() > upload::INDEX_THRESHOLD {
        let title = format!(
            "{}/{} {}: CI details",
            settings.owner, settings.repo, settings.commit
        );
        let page = upload::index_html(&title, &links);
        // A file of the run may be called index.html itself.
        let name = if links.iter().any(|(n, _)| n == "index.html") {
            "greg-index.html"
        } else {
            "index.html"
        };
        Some(
            store
                .put(
                    &format!("{base}/{name}"),
                    page.into(),
                    "text/html; charset=utf-8",
                    expires.timestamp(),
                )
                .await?,
        )
    } else {
        None
    };
    Ok(Published {
        links,
        index,
        expires,
    })
}
