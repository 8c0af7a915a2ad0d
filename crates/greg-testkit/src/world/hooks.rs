//! Repository webhooks of the fake GitHub (`greg fix-hooks`): what each hook stores, and the
//! verbs tests use to plant or read them.

use super::{World, WorldError};
use greg_core::RepoName;

/// One repository webhook, as stored. The secret is kept in clear so tests can check what
/// greg set; the fake shows it as `"********"` on read, as GitHub does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeHook {
    /// The hook id.
    pub id: u64,
    /// `config.url`.
    pub url: String,
    /// `config.content_type` (`json` or `form`; GitHub's default is `form`).
    pub content_type: String,
    /// `config.insecure_ssl` (`"0"` or `"1"`).
    pub insecure_ssl: String,
    /// `config.secret`, when set.
    pub secret: Option<String>,
    /// Subscribed events.
    pub events: Vec<String>,
    /// `active`.
    pub active: bool,
}

impl World {
    /// Plants a JSON webhook on `repo` (`active`, `insecure_ssl` `"0"`); returns its id.
    pub fn add_hook(
        &self,
        repo: &RepoName,
        url: &str,
        events: &[&str],
        secret: Option<&str>,
    ) -> Result<u64, WorldError> {
        self.update(|s| {
            let id = s.github.next_id();
            let r = s.github.repo_mut(repo)?;
            r.hooks.push(FakeHook {
                id,
                url: url.to_owned(),
                content_type: "json".to_owned(),
                insecure_ssl: "0".to_owned(),
                secret: secret.map(str::to_owned),
                events: events.iter().map(|e| (*e).to_owned()).collect(),
                active: true,
            });
            Ok(id)
        })
    }

    /// The webhooks of `repo`, oldest first (empty for an unknown repository).
    pub fn hooks(&self, repo: &RepoName) -> Vec<FakeHook> {
        self.read(|s| {
            s.github
                .repos
                .get(repo)
                .map(|r| r.hooks.clone())
                .unwrap_or_default()
        })
    }
}
