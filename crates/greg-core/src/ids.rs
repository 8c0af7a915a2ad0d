//! Newtypes for the identifiers greg passes around, so a pull-request number is never
//! mistaken for a build number and a sha is always a full, lower-case hex commit id.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A repository as `owner/name` (GitHub: `owner/repo`; Bitbucket: `workspace/slug` or
/// `PROJECT/slug`). Both parts are non-empty and contain no `/`.
///
/// Identity is ASCII case-insensitive, as GitHub and Bitbucket compare repository names
/// (SPEC §3): `Acme/Demo` equals, hashes and orders like `acme/demo`; `Display` keeps the
/// spelling it was given, and [`RepoName::key`] is the lower-case form lanes and store keys
/// use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl PartialEq for RepoName {
    fn eq(&self, other: &Self) -> bool {
        self.owner.eq_ignore_ascii_case(&other.owner) && self.name.eq_ignore_ascii_case(&other.name)
    }
}

impl Eq for RepoName {}

impl std::hash::Hash for RepoName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for RepoName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RepoName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl RepoName {
    /// Builds a repository name from its two parts.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            name: name.into(),
        }
    }

    /// Parses `owner/name`; `None` when either part is empty or there are more slashes.
    pub fn parse(full: &str) -> Option<Self> {
        let (owner, name) = full.split_once('/')?;
        if owner.is_empty() || name.is_empty() || name.contains('/') {
            return None;
        }
        Some(Self::new(owner, name))
    }

    /// `owner/name` in ASCII lower case: the repository's identity (lanes, store keys).
    pub fn key(&self) -> String {
        format!("{}/{}", self.owner, self.name).to_ascii_lowercase()
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// A full git commit id: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha(String);

/// Why a string is not a [`Sha`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a full commit sha (40 or 64 hex digits): {0:?}")]
pub struct InvalidSha(pub String);

impl Sha {
    /// Validates and lower-cases a full commit id.
    pub fn parse(s: &str) -> Result<Self, InvalidSha> {
        let ok = (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(InvalidSha(s.chars().take(80).collect()))
        }
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 7 digits, as people write them.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }

    /// True for the all-zero id git uses for "no commit" (a created or deleted branch).
    pub fn is_zero(&self) -> bool {
        self.0.bytes().all(|b| b == b'0')
    }
}

impl TryFrom<String> for Sha {
    type Error = InvalidSha;
    fn try_from(s: String) -> Result<Self, InvalidSha> {
        Sha::parse(&s)
    }
}

impl From<Sha> for String {
    fn from(s: Sha) -> String {
        s.0
    }
}

impl fmt::Display for Sha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! number_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The underlying string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

number_id!(
    /// A pull-request number, unique within a repository (GitHub: the issue number).
    PrNumber
);
number_id!(
    /// A provider comment id (GitHub: `comment.id`).
    CommentId
);
number_id!(
    /// A Jenkins build number, unique within a job.
    BuildNumber
);
number_id!(
    /// A Jenkins queue item id (`/queue/item/{id}/`), known before the build number.
    QueueItemId
);
string_id!(
    /// A webhook delivery id (GitHub: `X-GitHub-Delivery`, a GUID). Unique per provider.
    DeliveryId
);
string_id!(
    /// A build-server job name (Jenkins: the full job name, folders joined by `/`).
    JobName
);

/// A provider user name. Compared case-insensitively, as GitHub and Bitbucket do.
#[derive(Debug, Clone, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Login(pub String);

impl Login {
    /// The login as written by the provider.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Login {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl std::hash::Hash for Login {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl From<&str> for Login {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_accepts_full_hex_and_lowercases() {
        let s = Sha::parse("C6D86DC654B12425E706BCF951ADFE5A8627A517").expect("valid");
        assert_eq!(s.as_str(), "c6d86dc654b12425e706bcf951adfe5a8627a517");
        assert_eq!(s.short(), "c6d86dc");
    }

    #[test]
    fn sha_rejects_short_and_non_hex() {
        assert!(Sha::parse("c6d86dc654b1").is_err());
        assert!(Sha::parse("hfjkhsdfhjksdhfkjhsdkjfhksjdhfkjsdhfkjsd").is_err());
        assert!(Sha::parse("").is_err());
    }

    #[test]
    fn logins_compare_case_insensitively() {
        assert_eq!(Login::from("Alice"), Login::from("alice"));
        let set: std::collections::HashSet<Login> = [Login::from("Bob")].into_iter().collect();
        assert!(set.contains(&Login::from("bob")));
    }

    #[test]
    fn repo_name_parses_owner_and_name() {
        assert_eq!(
            RepoName::parse("acme/demo"),
            Some(RepoName::new("acme", "demo"))
        );
        assert_eq!(RepoName::parse("acme"), None);
        assert_eq!(RepoName::parse("a/b/c"), None);
        assert_eq!(RepoName::parse("/b"), None);
    }
}
