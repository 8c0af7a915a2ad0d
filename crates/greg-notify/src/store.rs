//! The object store built from [`StoreSettings`]: S3 (and every S3-compatible server), GCS,
//! Azure Blob Storage or a local folder, behind `object_store`'s one trait; uploads with a
//! Content-Type and an expiry, links to them, and pruning of what has expired.
//!
//! Keys given to [`Store`] are relative to the settings' prefix (`a/b.txt` is stored as
//! `<prefix>/a/b.txt`). The expiry travels as the user metadata [`EXPIRES_METADATA`] (Unix
//! seconds) with a `Cache-Control: max-age` to match, except in a folder, which keeps no
//! metadata: there the expiry is the file's modification time plus the retention.

use crate::NotifyError;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use greg_core::Secret;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, ObjectStore, ObjectStoreExt as _,
    PutOptions, PutPayload,
};
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The user-metadata key carrying an object's expiry, in Unix seconds, on S3 and GCS
/// (`x-amz-meta-greg-expires`, `x-goog-meta-greg-expires`). Azure metadata names must be C#
/// identifiers, so there it is [`EXPIRES_METADATA_AZURE`].
pub const EXPIRES_METADATA: &str = "greg-expires";

/// [`EXPIRES_METADATA`] on Azure (`x-ms-meta-greg_expires`).
pub const EXPIRES_METADATA_AZURE: &str = "greg_expires";

/// The longest a presigned link may live (S3's limit for SigV4, 7 days).
pub const MAX_SIGNED_LINK: Duration = Duration::from_secs(7 * 24 * 3600);

/// Which kind of store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreApi {
    /// Amazon S3 and S3-compatible servers (MinIO, Ceph, OpenStack Swift's S3 API, moto).
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage (and Azurite).
    Azure,
    /// A local folder.
    File,
}

impl StoreApi {
    /// The name as written in settings: `s3`, `gcs`, `azure`, `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreApi::S3 => "s3",
            StoreApi::Gcs => "gcs",
            StoreApi::Azure => "azure",
            StoreApi::File => "file",
        }
    }

    /// Parses a settings name (`swift` is S3: Swift is reached through its S3 API).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "s3" | "swift" => Some(StoreApi::S3),
            "gcs" | "gcp" => Some(StoreApi::Gcs),
            "azure" => Some(StoreApi::Azure),
            "file" => Some(StoreApi::File),
            _ => None,
        }
    }
}

/// Where and how to store files; also what greg's server reads as `reports.store`.
///
/// | api | endpoint | identity | secret | bucket |
/// |---|---|---|---|---|
/// | `s3` | server URL (default AWS) | access key id | secret access key | bucket |
/// | `gcs` | base URL (default Google) | path of a service-account JSON key | the JSON key itself | bucket |
/// | `azure` | blob endpoint (`http://127.0.0.1:10000/devstoreaccount1`; default Azure) | account name | account key | container |
/// | `file` | the folder (path or `file://` URL) | — | — | — |
#[derive(Debug, Clone, Deserialize)]
pub struct StoreSettings {
    /// Which kind of store.
    pub api: StoreApi,
    /// See the table.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// See the table.
    #[serde(default)]
    pub identity: Option<String>,
    /// See the table; never printed.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Bucket or container (empty for `file`).
    #[serde(default)]
    pub bucket: String,
    /// S3 region (default `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// Key prefix without leading or trailing `/`; empty for none.
    #[serde(default)]
    pub prefix: String,
    /// Base URL under which the bucket's keys are served publicly; links are then
    /// `<public_url>/<prefix>/<key>` instead of presigned URLs.
    #[serde(default)]
    pub public_url: Option<String>,
}

/// A stored object and the URL to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The key relative to the prefix.
    pub key: String,
    /// Where a browser reads it (public, presigned, or `file://`).
    pub url: String,
}

/// What a prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Objects looked at under the prefix.
    pub examined: usize,
    /// Objects deleted.
    pub deleted: usize,
    /// Objects kept.
    pub kept: usize,
}

/// Which objects a prune deletes.
#[derive(Debug, Clone, Copy)]
pub enum PruneRule {
    /// Those whose expiry has passed; an object without an expiry expires `retention` after
    /// its last modification.
    Expired {
        /// Retention of objects without expiry metadata.
        retention: Duration,
    },
    /// Those last modified longer ago than this.
    OlderThan(Duration),
}

/// An open store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    signer: Option<Arc<dyn Signer>>,
    /// The folder of a `file` store.
    root: Option<PathBuf>,
    /// The metadata key of the expiry on this backend.
    expires_key: &'static str,
    prefix: String,
    public_url: Option<String>,
    describe: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe)
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe)
    }
}

fn store_error(e: object_store::Error) -> NotifyError {
    NotifyError::Store(one_line(&e.to_string()))
}

/// The first line of a message (object_store errors carry response bodies).
fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    let mut out: String = line.chars().take(300).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

/// Opens the store the settings describe (no request is made).
///
/// Errors: [`NotifyError::Store`] when the backend refuses its settings (a bad endpoint, no
/// credentials it can find), [`NotifyError::Io`] when the folder of a `file` store cannot be
/// created.
pub fn open(s: &StoreSettings) -> Result<Store, NotifyError> {
    use object_store::aws::AmazonS3Builder;
    use object_store::azure::MicrosoftAzureBuilder;
    use object_store::gcp::GoogleCloudStorageBuilder;
    // reqwest is built without a bundled crypto provider (`rustls-no-provider`).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = |e: &Option<String>| e.as_deref().is_some_and(|u| u.starts_with("http://"));
    let (inner, signer, root): (Arc<dyn ObjectStore>, Option<Arc<dyn Signer>>, _) = match s.api {
        StoreApi::S3 => {
            let mut b = AmazonS3Builder::new()
                .with_bucket_name(&s.bucket)
                .with_region(s.region.as_deref().unwrap_or("us-east-1"))
                .with_allow_http(http(&s.endpoint));
            if let Some(e) = &s.endpoint {
                b = b.with_endpoint(e);
            }
            if let (Some(id), Some(secret)) = (&s.identity, &s.secret) {
                b = b
                    .with_access_key_id(id)
                    .with_secret_access_key(secret.expose());
            }
            let store = Arc::new(b.build().map_err(store_error)?);
            (store.clone(), Some(store), None)
        }
        StoreApi::Gcs => {
            let mut b = GoogleCloudStorageBuilder::new().with_bucket_name(&s.bucket);
            if let Some(e) = &s.endpoint {
                b = b.with_base_url(e);
            }
            if let Some(secret) = &s.secret {
                b = b.with_service_account_key(secret.expose());
            } else if let Some(path) = &s.identity {
                b = b.with_service_account_path(path);
            }
            let store = Arc::new(b.build().map_err(store_error)?);
            (store.clone(), Some(store), None)
        }
        StoreApi::Azure => {
            let mut b = MicrosoftAzureBuilder::new()
                .with_container_name(&s.bucket)
                .with_allow_http(http(&s.endpoint));
            if let Some(account) = &s.identity {
                b = b.with_account(account);
            }
            if let Some(secret) = &s.secret {
                b = b.with_access_key(secret.expose());
            }
            if let Some(e) = &s.endpoint {
                b = b.with_endpoint(e.clone());
            }
            let store = Arc::new(b.build().map_err(store_error)?);
            (store.clone(), Some(store), None)
        }
        StoreApi::File => {
            let folder = s.endpoint.as_deref().unwrap_or_default();
            let folder = match url::Url::parse(folder) {
                Ok(u) if u.scheme() == "file" => u
                    .to_file_path()
                    .map_err(|()| NotifyError::Store(format!("{folder} is not a local folder")))?,
                _ => PathBuf::from(folder),
            };
            std::fs::create_dir_all(&folder).map_err(|e| NotifyError::Io {
                path: folder.clone(),
                reason: e.to_string(),
            })?;
            let folder = folder.canonicalize().map_err(|e| NotifyError::Io {
                path: folder.clone(),
                reason: e.to_string(),
            })?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(&folder)
                .map_err(store_error)?;
            (Arc::new(store), None, Some(folder))
        }
    };
    let describe = match &root {
        Some(r) => format!("file({})", r.display()),
        None => format!(
            "{}({}{}/{})",
            s.api.as_str(),
            s.endpoint
                .as_deref()
                .map(|e| format!("{}/", e.trim_end_matches('/')))
                .unwrap_or_default(),
            s.bucket,
            s.prefix
        ),
    };
    Ok(Store {
        inner,
        signer,
        root,
        expires_key: if s.api == StoreApi::Azure {
            EXPIRES_METADATA_AZURE
        } else {
            EXPIRES_METADATA
        },
        prefix: s.prefix.trim_matches('/').to_owned(),
        public_url: s
            .public_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_owned()),
        describe,
    })
}

impl Store {
    /// The full object path of `key` (prefix included). Errors on a key that is not a clean
    /// relative path (`..`, empty segments).
    fn path(&self, key: &str) -> Result<ObjectPath, NotifyError> {
        let full = if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        };
        ObjectPath::parse(&full).map_err(|e| NotifyError::Store(one_line(&e.to_string())))
    }

    /// The metadata key of the expiry on this backend ([`EXPIRES_METADATA`] or
    /// [`EXPIRES_METADATA_AZURE`]).
    pub fn expires_key(&self) -> &'static str {
        self.expires_key
    }

    /// The underlying `object_store` (for listing and reading back in tests and tools).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Stores `bytes` under `key` with its Content-Type and, where the backend keeps
    /// metadata, its expiry (`expires_unix`, Unix seconds) and a matching
    /// `Cache-Control: max-age`; returns its link (see [`link`](Self::link)).
    ///
    /// Errors: [`NotifyError::Store`] with the backend's one-line reason.
    pub async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &str,
        expires_unix: i64,
    ) -> Result<Link, NotifyError> {
        let path = self.path(key)?;
        let mut attributes = Attributes::new();
        if self.root.is_none() {
            let max_age = (expires_unix - Utc::now().timestamp()).max(0);
            attributes.insert(
                Attribute::ContentType,
                AttributeValue::from(content_type.to_owned()),
            );
            attributes.insert(
                Attribute::CacheControl,
                AttributeValue::from(format!("public, max-age={max_age}")),
            );
            attributes.insert(
                Attribute::Metadata(self.expires_key.into()),
                AttributeValue::from(expires_unix.to_string()),
            );
        }
        let opts = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        self.inner
            .put_opts(&path, PutPayload::from_bytes(bytes), opts)
            .await
            .map_err(store_error)?;
        tracing::debug!(store = %self, %path, "Uploaded");
        let valid_for =
            Duration::from_secs(u64::try_from(expires_unix - Utc::now().timestamp()).unwrap_or(0));
        self.link(key, valid_for).await
    }

    /// The URL of `key`: `<public_url>/<prefix>/<key>` when a public URL is set; a `file://`
    /// URL in a folder; else a presigned GET URL valid for `valid_for`, at most
    /// [`MAX_SIGNED_LINK`] (and at least a minute).
    ///
    /// Errors: [`NotifyError::Store`] when the backend cannot sign (GCS without a private
    /// key, Azure without an account key).
    pub async fn link(&self, key: &str, valid_for: Duration) -> Result<Link, NotifyError> {
        let path = self.path(key)?;
        let url = if let Some(base) = &self.public_url {
            let encoded: Vec<String> = path
                .parts()
                .map(|p| percent_encode_segment(p.as_ref()))
                .collect();
            format!("{base}/{}", encoded.join("/"))
        } else if let Some(root) = &self.root {
            let file = path
                .parts()
                .fold(root.clone(), |acc, p| acc.join(p.as_ref()));
            url::Url::from_file_path(&file)
                .map_err(|()| NotifyError::Store(format!("{} is not absolute", file.display())))?
                .to_string()
        } else if let Some(signer) = &self.signer {
            let valid = valid_for.clamp(Duration::from_secs(60), MAX_SIGNED_LINK);
            signer
                .signed_url(object_store::signer::Method::GET, &path, valid)
                .await
                .map_err(store_error)?
                .to_string()
        } else {
            return Err(NotifyError::Store(format!("{self} cannot make links")));
        };
        Ok(Link {
            key: key.to_owned(),
            url,
        })
    }

    /// The expiry stored with `key` (Unix seconds), `None` when the backend keeps none.
    ///
    /// Errors: [`NotifyError::Store`] (a missing object included).
    pub async fn expiry(&self, key: &str) -> Result<Option<i64>, NotifyError> {
        let path = self.path(key)?;
        self.expiry_of(&path).await
    }

    async fn expiry_of(&self, path: &ObjectPath) -> Result<Option<i64>, NotifyError> {
        if self.root.is_some() {
            return Ok(None);
        }
        let head = self
            .inner
            .get_opts(
                path,
                GetOptions {
                    head: true,
                    ..GetOptions::default()
                },
            )
            .await
            .map_err(store_error)?;
        Ok(head
            .attributes
            .get(&Attribute::Metadata(self.expires_key.into()))
            .and_then(|v| parse_expiry(v.as_ref())))
    }

    /// Keys (relative to the prefix) of every object under `under` (relative to the prefix;
    /// empty for all), sorted.
    ///
    /// Errors: [`NotifyError::Store`].
    pub async fn list(&self, under: &str) -> Result<Vec<String>, NotifyError> {
        let base = self.list_base(under)?;
        let mut keys: Vec<String> = self
            .inner
            .list(base.as_ref())
            .map_ok(|m| self.relative(&m.location))
            .try_collect()
            .await
            .map_err(store_error)?;
        keys.sort();
        Ok(keys)
    }

    fn list_base(&self, under: &str) -> Result<Option<ObjectPath>, NotifyError> {
        let under = under.trim_matches('/');
        Ok(match (self.prefix.is_empty(), under.is_empty()) {
            (true, true) => None,
            (false, true) => Some(self.path_raw(&self.prefix)?),
            _ => Some(self.path(under)?),
        })
    }

    fn path_raw(&self, s: &str) -> Result<ObjectPath, NotifyError> {
        ObjectPath::parse(s).map_err(|e| NotifyError::Store(one_line(&e.to_string())))
    }

    fn relative(&self, p: &ObjectPath) -> String {
        let s = p.as_ref();
        if self.prefix.is_empty() {
            s.to_owned()
        } else {
            s.strip_prefix(&self.prefix)
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(s)
                .to_owned()
        }
    }

    /// Deletes the objects under the prefix that `rule` selects, as of `now`.
    ///
    /// Errors: [`NotifyError::Store`] on the first listing, reading or deletion that fails.
    pub async fn prune(
        &self,
        rule: PruneRule,
        now: DateTime<Utc>,
    ) -> Result<PruneReport, NotifyError> {
        let base = self.list_base("")?;
        let objects: Vec<_> = self
            .inner
            .list(base.as_ref())
            .try_collect()
            .await
            .map_err(store_error)?;
        let mut report = PruneReport::default();
        for meta in objects {
            report.examined += 1;
            let age = (now - meta.last_modified).to_std().unwrap_or_default();
            let expired = match rule {
                PruneRule::OlderThan(d) => age > d,
                PruneRule::Expired { retention } => match self.expiry_of(&meta.location).await? {
                    Some(at) => at <= now.timestamp(),
                    None => age > retention,
                },
            };
            if expired {
                self.inner
                    .delete(&meta.location)
                    .await
                    .map_err(store_error)?;
                tracing::debug!(store = %self, path = %meta.location, "Pruned");
                report.deleted += 1;
            } else {
                report.kept += 1;
            }
        }
        Ok(report)
    }
}

/// Parses an expiry: Unix seconds, or an RFC 3339 time.
pub fn parse_expiry(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse::<i64>()
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp()))
}

/// Percent-encodes one path segment for a URL (unreserved characters stay).
fn percent_encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_parses_seconds_and_rfc3339() {
        assert_eq!(parse_expiry("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_expiry("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_expiry("soon"), None);
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(percent_encode_segment("a b&c.txt"), "a%20b%26c.txt");
    }
}
