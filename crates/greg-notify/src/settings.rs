//! Settings of `greg notify`: notify_pr's INI keys plus greg's, each also a flag of the same
//! name (`store_bucket` is `--store-bucket`); a flag wins over the file.
//!
//! [`Values`] holds what one source said (the INI file or the flags); [`NotifySettings::resolve`]
//! and [`PruneSettings::resolve`] layer the flags over the file, check every value and name the
//! first missing key. Nothing here does IO except [`Values::from_ini_file`].

use crate::store::{StoreApi, StoreSettings};
use greg_core::Secret;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Retention when `retention_days` is not given: a week, as notify_pr planned.
pub const DEFAULT_RETENTION_DAYS: u32 = 7;

/// Every key `greg notify` reads, in the order `--help` and the docs list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Provider,
    BitbucketFlavor,
    ApiUrl,
    Username,
    Token,
    Owner,
    Repo,
    Commit,
    SummaryFile,
    FullDetailDir,
    FullDetailFiles,
    StoreApi,
    StoreEndpoint,
    StoreIdentity,
    StoreSecret,
    StoreBucket,
    StoreRegion,
    StorePrefix,
    StorePublicUrl,
    RetentionDays,
}

impl Key {
    /// Every key.
    pub const ALL: [Key; 20] = [
        Key::Provider,
        Key::BitbucketFlavor,
        Key::ApiUrl,
        Key::Username,
        Key::Token,
        Key::Owner,
        Key::Repo,
        Key::Commit,
        Key::SummaryFile,
        Key::FullDetailDir,
        Key::FullDetailFiles,
        Key::StoreApi,
        Key::StoreEndpoint,
        Key::StoreIdentity,
        Key::StoreSecret,
        Key::StoreBucket,
        Key::StoreRegion,
        Key::StorePrefix,
        Key::StorePublicUrl,
        Key::RetentionDays,
    ];

    /// The key's name in the INI file (`store_bucket`).
    pub fn ini_name(self) -> &'static str {
        match self {
            Key::Provider => "provider",
            Key::BitbucketFlavor => "bitbucket_flavor",
            Key::ApiUrl => "api_url",
            Key::Username => "username",
            Key::Token => "token",
            Key::Owner => "owner",
            Key::Repo => "repo",
            Key::Commit => "commit",
            Key::SummaryFile => "summary_file",
            Key::FullDetailDir => "full_detail_dir",
            Key::FullDetailFiles => "full_detail_files",
            Key::StoreApi => "store_api",
            Key::StoreEndpoint => "store_endpoint",
            Key::StoreIdentity => "store_identity",
            Key::StoreSecret => "store_secret",
            Key::StoreBucket => "store_bucket",
            Key::StoreRegion => "store_region",
            Key::StorePrefix => "store_prefix",
            Key::StorePublicUrl => "store_public_url",
            Key::RetentionDays => "retention_days",
        }
    }

    /// The key's flag (`--store-bucket`).
    pub fn flag(self) -> String {
        format!("--{}", self.ini_name().replace('_', "-"))
    }

    /// Whether the value is a credential (never printed).
    pub fn is_secret(self) -> bool {
        matches!(self, Key::Token | Key::StoreSecret)
    }

    /// The key of an INI name, if it is one.
    pub fn from_ini_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.ini_name() == name)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ini_name())
    }
}

/// Why the settings cannot be used. One line each, naming the key; never a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A required key was given nowhere.
    #[error("missing {key}: set {flag} or {key} in the INI file{why}", flag = key.flag())]
    Missing {
        /// The key.
        key: Key,
        /// Why it is required here (`" (store_api is s3)"`), or empty.
        why: String,
    },
    /// A key's value is not one greg can use.
    #[error("{key}: {what}")]
    Invalid {
        /// The key.
        key: Key,
        /// What is wrong, without the value when the key is a secret.
        what: String,
    },
    /// The INI file cannot be read or parsed.
    #[error("cannot read the INI file {path}: {reason}")]
    Ini {
        /// The file.
        path: PathBuf,
        /// The reader's or parser's message.
        reason: String,
    },
    /// The INI file has a key greg does not know (a typo would otherwise be silently ignored).
    #[error("the INI file {path} has an unknown key {name}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The unknown key as written.
        name: String,
    },
}

/// The values one source gave (the INI file or the flags), by key. Empty values count as
/// not given. `Debug` prints `***` for the secrets.
#[derive(Clone, Default)]
pub struct Values(BTreeMap<Key, String>);

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if k.is_secret() { "***" } else { v.as_str() };
                (k.ini_name(), shown)
            }))
            .finish()
    }
}

impl Values {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` (an empty or blank value is ignored).
    pub fn set(&mut self, key: Key, value: impl Into<String>) {
        let value = value.into();
        if !value.trim().is_empty() {
            self.0.insert(key, value.trim().to_owned());
        }
    }

    /// Sets `key` when `value` is `Some`.
    pub fn set_opt(&mut self, key: Key, value: Option<impl Into<String>>) {
        if let Some(v) = value {
            self.set(key, v);
        }
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: Key) -> Option<&str> {
        self.0.get(&key).map(String::as_str)
    }

    /// Parses notify_pr's INI text: `key = value` lines, outside any section (keys of a
    /// `[notify]` section are read too). `path` is only used in messages.
    pub fn from_ini_str(text: &str, path: &Path) -> Result<Self, SettingsError> {
        let ini = ini::Ini::load_from_str(text).map_err(|e| SettingsError::Ini {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut values = Values::new();
        for (section, props) in ini.iter() {
            if section.is_some_and(|s| s != "notify") {
                continue;
            }
            for (name, value) in props.iter() {
                let key =
                    Key::from_ini_name(name.trim()).ok_or_else(|| SettingsError::UnknownKey {
                        path: path.to_owned(),
                        name: name.to_owned(),
                    })?;
                values.set(key, value);
            }
        }
        Ok(values)
    }

    /// Reads and parses an INI file (see [`from_ini_str`](Self::from_ini_str)).
    pub fn from_ini_file(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|e| SettingsError::Ini {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Self::from_ini_str(&text, path)
    }

    /// These values with `over`'s on top (flags over the file).
    pub fn overlay(mut self, over: &Values) -> Values {
        for (k, v) in &over.0 {
            self.0.insert(*k, v.clone());
        }
        self
    }

    fn required(&self, key: Key, why: &str) -> Result<&str, SettingsError> {
        self.get(key).ok_or_else(|| SettingsError::Missing {
            key,
            why: why.to_owned(),
        })
    }
}

/// Which provider holds the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// GitHub or GitHub Enterprise (`api_url`).
    Github,
    /// Bitbucket Cloud.
    BitbucketCloud,
    /// Bitbucket Server / Data Center (`api_url` required).
    BitbucketServer,
}

/// Everything one `greg notify` run needs, checked.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// The provider.
    pub provider: ProviderKind,
    /// The provider's API root; `None` = the public default (GitHub, Bitbucket Cloud).
    pub api_url: Option<String>,
    /// The bot's login (GitHub: optional; Bitbucket: the basic-auth user, required).
    pub username: String,
    /// The provider token (GitHub token; Bitbucket app password or HTTP access token).
    pub token: Secret,
    /// Repository owner (GitHub owner, Bitbucket workspace or project key).
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The commit the CI run built (40 or 64 hexadecimal digits, lower case).
    pub commit: String,
    /// Markdown shown at the top of the comment.
    pub summary_file: Option<PathBuf>,
    /// A folder uploaded recursively.
    pub full_detail_dir: Option<PathBuf>,
    /// Single files uploaded under their file name.
    pub full_detail_files: Vec<PathBuf>,
    /// Where uploads go.
    pub store: StoreSettings,
    /// How long uploads are kept, in days (1 or more).
    pub retention_days: u32,
}

/// What `greg notify prune` needs: the store and the retention.
#[derive(Debug, Clone)]
pub struct PruneSettings {
    /// The store to prune (under its prefix).
    pub store: StoreSettings,
    /// Objects without an expiry are kept this many days after their last modification.
    pub retention_days: u32,
}

impl PruneSettings {
    /// Checks the store keys and `retention_days` of `values`.
    pub fn resolve(values: &Values) -> Result<Self, SettingsError> {
        Ok(Self {
            store: store_settings(values)?,
            retention_days: retention_days(values)?,
        })
    }
}

impl NotifySettings {
    /// Checks `values` (the INI file's values overlaid with the flags'): every required key is
    /// there and every value is usable. The first problem is the error.
    pub fn resolve(values: &Values) -> Result<Self, SettingsError> {
        let provider = match values.get(Key::Provider).unwrap_or("github") {
            "github" => ProviderKind::Github,
            "bitbucket" => {
                match values.required(Key::BitbucketFlavor, " (provider is bitbucket)")? {
                    "cloud" => ProviderKind::BitbucketCloud,
                    "server" => ProviderKind::BitbucketServer,
                    other => {
                        return Err(SettingsError::Invalid {
                            key: Key::BitbucketFlavor,
                            what: format!("{other:?} is not cloud or server"),
                        });
                    }
                }
            }
            other => {
                return Err(SettingsError::Invalid {
                    key: Key::Provider,
                    what: format!("{other:?} is not github or bitbucket"),
                });
            }
        };
        let token = Secret::new(values.required(Key::Token, "")?);
        let username = match provider {
            ProviderKind::Github => values.get(Key::Username).unwrap_or_default().to_owned(),
            _ => values
                .required(Key::Username, " (provider is bitbucket)")?
                .to_owned(),
        };
        let api_url = match provider {
            ProviderKind::BitbucketServer => Some(
                values
                    .required(Key::ApiUrl, " (bitbucket_flavor is server)")?
                    .to_owned(),
            ),
            _ => values.get(Key::ApiUrl).map(str::to_owned),
        };
        if let Some(u) = &api_url {
            check_http_url(Key::ApiUrl, u)?;
        }
        let owner = values.required(Key::Owner, "")?.to_owned();
        let repo = values.required(Key::Repo, "")?.to_owned();
        for (key, v) in [(Key::Owner, &owner), (Key::Repo, &repo)] {
            if v.contains('/') || v == "." || v == ".." {
                return Err(SettingsError::Invalid {
                    key,
                    what: format!("{v:?} is not one path segment"),
                });
            }
        }
        let commit = values.required(Key::Commit, "")?.to_ascii_lowercase();
        if greg_core::Sha::parse(&commit).is_err() {
            return Err(SettingsError::Invalid {
                key: Key::Commit,
                what: format!("{commit:?} is not a full commit id (40 or 64 hexadecimal digits)"),
            });
        }
        let full_detail_files = values
            .get(Key::FullDetailFiles)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            provider,
            api_url,
            username,
            token,
            owner,
            repo,
            commit,
            summary_file: values.get(Key::SummaryFile).map(PathBuf::from),
            full_detail_dir: values.get(Key::FullDetailDir).map(PathBuf::from),
            full_detail_files,
            store: store_settings(values)?,
            retention_days: retention_days(values)?,
        })
    }
}

fn retention_days(values: &Values) -> Result<u32, SettingsError> {
    match values.get(Key::RetentionDays) {
        None => Ok(DEFAULT_RETENTION_DAYS),
        Some(s) => match s.parse::<u32>() {
            Ok(d) if (1..=3650).contains(&d) => Ok(d),
            _ => Err(SettingsError::Invalid {
                key: Key::RetentionDays,
                what: format!("{s:?} is not a number of days from 1 to 3650"),
            }),
        },
    }
}

fn check_http_url(key: Key, u: &str) -> Result<(), SettingsError> {
    match url::Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(()),
        _ => Err(SettingsError::Invalid {
            key,
            what: format!("{u:?} is not an http(s) URL"),
        }),
    }
}

/// The store keys: `store_api` and what it needs.
fn store_settings(values: &Values) -> Result<StoreSettings, SettingsError> {
    let api_name = values.required(Key::StoreApi, "")?;
    let api = StoreApi::parse(api_name).ok_or_else(|| SettingsError::Invalid {
        key: Key::StoreApi,
        what: format!("{api_name:?} is not s3, gcs, azure or file"),
    })?;
    let why = format!(" (store_api is {})", api.as_str());
    let endpoint = match api {
        StoreApi::File => Some(values.required(Key::StoreEndpoint, &why)?.to_owned()),
        _ => values.get(Key::StoreEndpoint).map(str::to_owned),
    };
    if let (Some(e), false) = (&endpoint, api == StoreApi::File) {
        check_http_url(Key::StoreEndpoint, e)?;
    }
    let bucket = match api {
        StoreApi::File => String::new(),
        _ => values.required(Key::StoreBucket, &why)?.to_owned(),
    };
    let identity = values.get(Key::StoreIdentity).map(str::to_owned);
    let secret = values.get(Key::StoreSecret).map(Secret::new);
    match api {
        StoreApi::S3 if identity.is_some() != secret.is_some() => {
            let key = if identity.is_none() {
                Key::StoreIdentity
            } else {
                Key::StoreSecret
            };
            return Err(SettingsError::Missing {
                key,
                why: " (s3 takes an access key id and its secret together)".to_owned(),
            });
        }
        StoreApi::Azure => {
            values.required(
                Key::StoreIdentity,
                " (store_api is azure: the account name)",
            )?;
        }
        _ => {}
    }
    let public_url = values.get(Key::StorePublicUrl).map(str::to_owned);
    if let Some(u) = &public_url {
        check_http_url(Key::StorePublicUrl, u)?;
    }
    let prefix = values
        .get(Key::StorePrefix)
        .unwrap_or_default()
        .trim_matches('/')
        .to_owned();
    Ok(StoreSettings {
        api,
        endpoint,
        identity,
        secret,
        bucket,
        region: values.get(Key::StoreRegion).map(str::to_owned),
        prefix,
        public_url,
    })
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
