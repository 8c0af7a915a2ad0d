//! Bitbucket Cloud REST 2.0 calls (<https://developer.atlassian.com/cloud/bitbucket/rest/>).
//!
//! Approvals. A Cloud participant says whether they approve (`approved`, `state`) and when
//! (`participated_on`: "for approvers, the time of their approval",
//! <https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pullrequests/>), not which
//! commit they approved. Bitbucket withdraws approvals on new commits only when the
//! repository enables the Premium merge check "reset approvals when the source branch is
//! modified" (<https://support.atlassian.com/bitbucket-cloud/docs/suggest-or-require-checks-before-a-merge/>),
//! so greg binds each approval itself: the pull request's activity log records every update
//! with the head it set (`update.source.commit.hash`, `update.date`); an approval given at or
//! after the update that brought the current head is bound to the current head, an older one
//! to the head before it (reported as stale by the rules). When the log does not show when
//! the current head arrived, no approval is bound (none counts): greg fails closed.

use super::{BitbucketProvider, decode, protocol};
use crate::event::AbbreviatedSha;
use crate::routes::{self, MAX_PAGES, cloud_next};
use crate::wire::Timestamp;
use crate::wire::cloud::{PullRequest as WirePullRequest, User};
use greg_core::{
    CommentId, Login, Permission, PrNumber, PullRequest, RepoName, Result, Review, ReviewState, Sha,
};
use serde::{Deserialize, Serialize};
use url::Url;

/// A page of a Cloud list: `values` and the absolute URL of the `next` page, if any
/// (<https://developer.atlassian.com/cloud/bitbucket/rest/intro/#pagination>).
#[derive(Debug, Deserialize)]
pub(crate) struct Page<T> {
    pub values: Vec<T>,
    pub next: Option<String>,
}

/// `GET .../commit/{revision}`: only `hash` is read.
#[derive(Debug, Deserialize)]
struct WireCommit {
    hash: Sha,
}

/// The participants of `GET .../pullrequests/{id}`.
#[derive(Debug, Deserialize)]
struct WireParticipants {
    #[serde(default)]
    participants: Vec<Participant>,
}

/// A participant: `state` is `approved`, `changes_requested` or `null`; `approved` is the
/// older boolean. `participated_on` is read leniently (a date greg cannot read binds nothing).
#[derive(Debug, Deserialize)]
struct Participant {
    user: Option<User>,
    #[serde(default)]
    approved: bool,
    state: Option<String>,
    participated_on: Option<String>,
}

/// An activity log entry; only `update` entries are read (comments and approvals are
/// skipped).
#[derive(Debug, Deserialize)]
struct Activity {
    update: Option<Update>,
}

/// `update`: the pull request as an update left it; `source.commit.hash` is the head then.
#[derive(Debug, Deserialize)]
struct Update {
    date: Option<String>,
    source: Option<UpdateSource>,
}

#[derive(Debug, Deserialize)]
struct UpdateSource {
    commit: Option<UpdateCommit>,
}

#[derive(Debug, Deserialize)]
struct UpdateCommit {
    hash: String,
}

/// An entry of `GET /2.0/workspaces/{workspace}/permissions/repositories/{repo_slug}`:
/// `permission` is `admin`, `write`, `read` or `none`.
#[derive(Debug, Deserialize)]
struct WirePermission {
    permission: String,
    user: Option<User>,
}

/// Body of `POST .../pullrequests/{id}/comments`: `{"content": {"raw": <Markdown>}}`.
#[derive(Debug, Serialize)]
pub(crate) struct CommentBody<'a> {
    pub content: Raw<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Raw<'a> {
    pub raw: &'a str,
}

/// The `id` of a created comment.
#[derive(Debug, Deserialize)]
struct Created {
    id: u64,
}

/// When the current head arrived, and the head before it, from the activity log.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct HeadHistory {
    /// The date of the oldest update (of the newest run of updates) that shows the current
    /// head.
    pub since: Option<Timestamp>,
    /// The head shown by the newest update that shows another head.
    pub previous: Option<AbbreviatedSha>,
}

impl HeadHistory {
    /// Folds one page of activity (newest first) into the history; `true` once the history
    /// is complete (an older head was found), so no older page is needed.
    fn read(&mut self, head: &Sha, page: Vec<Activity>) -> bool {
        for update in page.into_iter().filter_map(|a| a.update) {
            let Some(hash) = update
                .source
                .and_then(|s| s.commit)
                .and_then(|c| AbbreviatedSha::parse(&c.hash).ok())
            else {
                continue;
            };
            if hash.abbreviates(head) {
                if let Some(date) = update.date.as_deref().and_then(Timestamp::parse_iso) {
                    self.since = Some(date);
                }
            } else {
                self.previous = Some(hash);
                return true;
            }
        }
        false
    }
}

impl BitbucketProvider {
    /// `GET /2.0/user` → the account id (else uuid) of the credentials' account.
    pub(super) async fn cloud_identify(&self) -> Result<Login> {
        let what = "the authenticated Bitbucket Cloud account";
        let user: User = self.get_route(what, &routes::cloud::current_user()).await?;
        user.login()
            .ok_or_else(|| protocol(what, "neither account_id nor uuid is set"))
    }

    /// [`Self::cloud_resolve_commit`] for an abbreviated commit id, remembered: a commit id
    /// never changes (a branch name would, so only abbreviations go through here).
    pub(super) async fn cloud_resolve_abbreviated(
        &self,
        repo: &RepoName,
        abbreviated: &str,
    ) -> Result<Sha> {
        let key = (repo.clone(), abbreviated.to_owned());
        if let Some(full) = self.remembered(&key) {
            return Ok(full);
        }
        let full = self.cloud_resolve_commit(repo, abbreviated).await?;
        self.remember(key, full.clone());
        Ok(full)
    }

    pub(super) async fn cloud_resolve_commit(
        &self,
        repo: &RepoName,
        revision: &str,
    ) -> Result<Sha> {
        let what = format!("commit {revision} in {repo}");
        let commit: WireCommit = self
            .get_route(&what, &routes::cloud::commit(repo, revision))
            .await?;
        Ok(commit.hash)
    }

    /// The pull request's JSON, decoded twice: as the pull request and as its participants.
    async fn cloud_pull_request_raw(&self, repo: &RepoName, pr: PrNumber) -> Result<Vec<u8>> {
        let what = format!("pull request {repo}#{pr}");
        let request = self.request(
            reqwest::Method::GET,
            routes::cloud::pull_request(repo, pr).url(&self.base)?,
        );
        Ok(self.send(&what, request).await?.body)
    }

    pub(super) async fn cloud_pull_request(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<PullRequest> {
        let body = self.cloud_pull_request_raw(repo, pr).await?;
        self.cloud_complete_pull_request(repo, pr, &body).await
    }

    /// Decodes a pull request and looks its full head up.
    async fn cloud_complete_pull_request(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        body: &[u8],
    ) -> Result<PullRequest> {
        let what = format!("pull request {repo}#{pr}");
        let wire: WirePullRequest = decode(&what, body)?;
        self.cloud_complete(&what, repo, wire, "(top level)").await
    }

    /// A decoded pull request (found at `path` of the answer) with its full head looked up.
    pub(super) async fn cloud_complete(
        &self,
        what: &str,
        repo: &RepoName,
        wire: WirePullRequest,
        path: &str,
    ) -> Result<PullRequest> {
        let what = what.to_owned();
        let pending = wire
            .into_pending(path, repo)
            .map_err(|detail| protocol(&what, &detail))?;
        let head = match pending.head.full() {
            Some(full) => full,
            None => {
                self.cloud_resolve_abbreviated(&pending.head_repo, pending.head.as_str())
                    .await?
            }
        };
        if !pending.head.abbreviates(&head) {
            return Err(protocol(
                &what,
                &format!("the head {} resolved to {head}", pending.head),
            ));
        }
        Ok(pending.pull_request.complete(head))
    }

    pub(super) async fn cloud_reviews(&self, repo: &RepoName, pr: PrNumber) -> Result<Vec<Review>> {
        let what = format!("reviews of {repo}#{pr}");
        let body = self.cloud_pull_request_raw(repo, pr).await?;
        let participants: WireParticipants = decode(&what, &body)?;
        let verdicts: Vec<(Login, ReviewState, Option<Timestamp>)> = participants
            .participants
            .into_iter()
            .filter_map(|p| {
                let state = match p.state.as_deref() {
                    Some("changes_requested") => ReviewState::ChangesRequested,
                    Some("approved") => ReviewState::Approved,
                    _ if p.approved => ReviewState::Approved,
                    _ => return None,
                };
                let at = p.participated_on.as_deref().and_then(Timestamp::parse_iso);
                Some((p.user.as_ref()?.login()?, state, at))
            })
            .collect();
        if verdicts.is_empty() {
            return Ok(Vec::new());
        }
        let pull_request = self.cloud_complete_pull_request(repo, pr, &body).await?;
        let head = pull_request.head_sha;
        let history = self.cloud_head_history(repo, pr, &head).await?;
        if history.since.is_none() {
            tracing::warn!(
                provider = %self.name,
                %repo,
                %pr,
                "The activity log does not show when the current head arrived; no approval is bound to it"
            );
        }
        let mut previous: Option<Option<Sha>> = None;
        let mut reviews = Vec::with_capacity(verdicts.len());
        for (reviewer, state, at) in verdicts {
            let current = matches!((history.since, at), (Some(since), Some(at)) if at >= since);
            let commit = if current {
                Some(head.clone())
            } else {
                if previous.is_none() {
                    previous = Some(self.cloud_previous_head(repo, &history).await?);
                }
                previous.clone().flatten()
            };
            reviews.push(Review {
                reviewer,
                state,
                commit,
            });
        }
        Ok(reviews)
    }

    /// The full id of the head before the current one; `None` when unknown or gone.
    async fn cloud_previous_head(
        &self,
        repo: &RepoName,
        history: &HeadHistory,
    ) -> Result<Option<Sha>> {
        let Some(previous) = &history.previous else {
            return Ok(None);
        };
        match self.cloud_resolve_commit(repo, previous.as_str()).await {
            Ok(sha) if previous.abbreviates(&sha) => Ok(Some(sha)),
            Ok(_) | Err(greg_core::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the activity log, newest first, until the head before the current one shows.
    async fn cloud_head_history(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        head: &Sha,
    ) -> Result<HeadHistory> {
        let what = format!("activity of {repo}#{pr}");
        let mut history = HeadHistory::default();
        let mut url: Url = routes::cloud::activity(repo, pr).url(&self.base)?;
        for _ in 0..MAX_PAGES {
            let page: Page<Activity> = self.get_json(&what, url).await?;
            if history.read(head, page.values) {
                return Ok(history);
            }
            match page.next {
                None => return Ok(history),
                Some(next) => {
                    url = cloud_next(&self.base, &next).map_err(|e| protocol(&what, &e))?
                }
            }
        }
        Err(protocol(&what, &format!("more than {MAX_PAGES} pages")))
    }

    /// The effective permission of `user`, from the workspace's repository permissions
    /// filtered by `user.account_id` (or `user.uuid` for a `{...}` login).
    pub(super) async fn cloud_permission(
        &self,
        repo: &RepoName,
        user: &Login,
    ) -> Result<Permission> {
        let what = format!("permission of {user} on {repo}");
        let Some(filter) = user_filter(user) else {
            // Not an account id or uuid: no Cloud account has this login.
            return Ok(Permission::None);
        };
        let mut best = Permission::None;
        let mut url = routes::cloud::repository_permissions(repo, &filter).url(&self.base)?;
        for _ in 0..MAX_PAGES {
            let page: Page<WirePermission> = self.get_json(&what, url).await?;
            for entry in page.values {
                // The filter already selects the user; the check guards against a server that
                // ignores it.
                if entry.user.as_ref().and_then(User::login).as_ref() != Some(user) {
                    continue;
                }
                best = best.max(permission_level(&what, &entry.permission)?);
            }
            match page.next {
                None => return Ok(best),
                Some(next) => {
                    url = cloud_next(&self.base, &next).map_err(|e| protocol(&what, &e))?
                }
            }
        }
        Err(protocol(&what, &format!("more than {MAX_PAGES} pages")))
    }

    pub(super) async fn cloud_post_comment(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        body: &str,
    ) -> Result<CommentId> {
        let what = format!("comment on {repo}#{pr}");
        let created: Created = self
            .post_route(
                &what,
                &routes::cloud::comments(repo, pr),
                &CommentBody {
                    content: Raw { raw: body },
                },
            )
            .await?;
        Ok(CommentId(created.id))
    }
}

/// The BBQL filter selecting `user` in a permission list: `user.account_id="..."`, or
/// `user.uuid="{...}"`; `None` for a login with characters no Cloud id has (which also keeps
/// quotes out of the query).
pub(crate) fn user_filter(user: &Login) -> Option<String> {
    let s = user.as_str();
    let plausible = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '{' | '}'));
    if !plausible {
        return None;
    }
    Some(if s.starts_with('{') {
        format!("user.uuid=\"{s}\"")
    } else {
        format!("user.account_id=\"{s}\"")
    })
}

fn permission_level(what: &str, raw: &str) -> Result<Permission> {
    match raw {
        "admin" => Ok(Permission::Admin),
        "write" => Ok(Permission::Write),
        "read" => Ok(Permission::Read),
        "none" => Ok(Permission::None),
        other => Err(protocol(
            what,
            &format!("unknown permission {:?}", crate::error::one_line(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Sha {
        Sha::parse("d31df3425c5b7e3ee3a4b6b36d0d2f1c0a1b2c3d").expect("sha")
    }

    fn page(json: &str) -> Vec<Activity> {
        serde_json::from_str::<Page<Activity>>(json)
            .expect("activity page")
            .values
    }

    fn update(hash: &str, date: &str) -> String {
        format!(
            r#"{{"update": {{"state": "OPEN", "date": "{date}", "source": {{"branch": {{"name": "feature"}}, "commit": {{"hash": "{hash}", "type": "commit"}}}}}}, "pull_request": {{"id": 7}}}}"#
        )
    }

    fn approval(date: &str) -> String {
        format!(
            r#"{{"approval": {{"date": "{date}", "user": {{"account_id": "557058:a"}}}}, "pull_request": {{"id": 7}}}}"#
        )
    }

    #[test]
    fn the_head_arrives_with_the_oldest_update_of_the_newest_run() {
        // Newest first: two updates with the current head (a title edit, then the push that
        // brought it), an approval of the older head, the update that brought the older head.
        let json = format!(
            r#"{{"values": [{}, {}, {}, {}], "pagelen": 50}}"#,
            update("d31df3425c5b", "2024-11-09T13:10:00.000000+00:00"),
            update("d31df3425c5b", "2024-11-09T13:05:00.000000+00:00"),
            approval("2024-11-09T13:03:00.000000+00:00"),
            update("0a1b2c3d4e5f", "2024-11-09T13:00:00.000000+00:00"),
        );
        let mut history = HeadHistory::default();
        assert!(
            history.read(&head(), page(&json)),
            "complete on the first page"
        );
        assert_eq!(
            history,
            HeadHistory {
                since: Timestamp::parse_iso("2024-11-09T13:05:00Z"),
                previous: AbbreviatedSha::parse("0a1b2c3d4e5f").ok(),
            }
        );
    }

    #[test]
    fn a_history_without_an_older_head_asks_for_the_next_page() {
        let json = format!(
            r#"{{"values": [{}, {{"comment": {{"id": 1}}}}], "next": "https://api.bitbucket.org/2.0/x?page=2"}}"#,
            update("d31df3425c5b", "2024-11-09T13:05:00+00:00"),
        );
        let mut history = HeadHistory::default();
        assert!(!history.read(&head(), page(&json)));
        assert_eq!(history.since, Timestamp::parse_iso("2024-11-09T13:05:00Z"));
        assert_eq!(history.previous, None);
        // Entries without a readable hash or date bind nothing.
        let odd = r#"{"values": [{"update": {"date": "yesterday", "source": {"commit": {"hash": "d31df3425c5b"}}}}, {"update": {"source": null}}]}"#;
        let mut history = HeadHistory::default();
        assert!(!history.read(&head(), page(odd)));
        assert_eq!(history, HeadHistory::default());
    }

    #[test]
    fn permission_filters_select_account_ids_and_uuids_only() {
        assert_eq!(
            user_filter(&Login::from("557058:dc3817de-68b5-45cd-b81c-5c39d2560090")).as_deref(),
            Some(r#"user.account_id="557058:dc3817de-68b5-45cd-b81c-5c39d2560090""#)
        );
        assert_eq!(
            user_filter(&Login::from("{bf34a99b-8a11-452c-8fbc-bdffc340e584}")).as_deref(),
            Some(r#"user.uuid="{bf34a99b-8a11-452c-8fbc-bdffc340e584}""#)
        );
        for odd in ["", "a\"b", "x\" OR permission=\"admin", "name with space"] {
            assert_eq!(user_filter(&Login::from(odd)), None, "{odd}");
        }
        assert_eq!(permission_level("p", "write"), Ok(Permission::Write));
        assert!(permission_level("p", "owner").is_err());
    }
}
