//! The REST URLs greg calls on each flavor, and the pagination rules, as pure functions.
//!
//! Paths are joined onto the configured API root segment by segment, so every
//! user-controlled part (workspace, slug, project key, login) is percent-encoded and cannot
//! escape its place; `.` and `..`, which no encoding keeps in a URL path (WHATWG URL treats
//! `%2e%2e` as `..`), are refused. A Server context path (`https://example.com/bitbucket/`)
//! is kept.
//!
//! References: Cloud <https://developer.atlassian.com/cloud/bitbucket/rest/> (pagination:
//! <https://developer.atlassian.com/cloud/bitbucket/rest/intro/#pagination>); Server
//! <https://developer.atlassian.com/server/bitbucket/rest/> (paged APIs: `start`, `limit`,
//! `isLastPage`, `nextPageStart`).

use greg_core::{CommentId, Error, PrNumber, RepoName, Sha};
use url::Url;

/// Upper bound on pages followed by one list call; a server that keeps announcing more is
/// answered with a protocol error instead of a loop.
pub(crate) const MAX_PAGES: usize = 100;
/// Cloud page size (`pagelen`, at most 50 on Cloud) for activity and permission lists.
pub(crate) const CLOUD_PAGELEN: u32 = 50;
/// Server page size (`limit`).
pub(crate) const SERVER_LIMIT: u32 = 100;

/// A path below the API root and its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
}

impl Route {
    fn new<S: Into<String>>(segments: impl IntoIterator<Item = S>) -> Self {
        Self {
            segments: segments.into_iter().map(Into::into).collect(),
            query: Vec::new(),
        }
    }

    fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// The same route with one more query parameter (`start` of a Server page, `pagelen`).
    pub(crate) fn and(self, key: &'static str, value: impl Into<String>) -> Self {
        self.with(key, value)
    }

    /// The absolute URL below `base` (a root whose path ends in `/`).
    ///
    /// # Errors
    /// [`Error::NotFound`] when a segment is `.` or `..` (no Bitbucket object has that name,
    /// and the URL would point elsewhere).
    pub fn url(&self, base: &Url) -> Result<Url, Error> {
        if let Some(dots) = self.segments.iter().find(|s| *s == "." || *s == "..") {
            return Err(Error::NotFound {
                what: format!("{dots:?} (a path segment no Bitbucket object can have)"),
            });
        }
        let mut url = base.clone();
        // `base` was checked to be a hierarchical http(s) URL (config::base_url).
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(&self.segments);
        }
        if !self.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &self.query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }
}

/// Bitbucket Cloud REST 2.0 routes (`{api_url}/2.0/...`).
pub(crate) mod cloud {
    use super::*;

    fn repo_root(repo: &RepoName, rest: &[&str]) -> Route {
        let mut segments = vec!["2.0", "repositories", &repo.owner, &repo.name];
        segments.extend_from_slice(rest);
        Route::new(segments)
    }

    /// `GET /2.0/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}`
    pub(crate) fn pull_request(repo: &RepoName, pr: PrNumber) -> Route {
        repo_root(repo, &["pullrequests", &pr.to_string()])
    }

    /// `GET /2.0/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/activity?pagelen=50`
    /// (newest first; further pages by the answer's `next` link).
    pub(crate) fn activity(repo: &RepoName, pr: PrNumber) -> Route {
        repo_root(repo, &["pullrequests", &pr.to_string(), "activity"])
            .with("pagelen", CLOUD_PAGELEN.to_string())
    }

    /// `POST /2.0/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/comments`
    pub(crate) fn comments(repo: &RepoName, pr: PrNumber) -> Route {
        repo_root(repo, &["pullrequests", &pr.to_string(), "comments"])
    }

    /// `GET /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}`: `commit` is a full or
    /// abbreviated hash (or any revision).
    pub(crate) fn commit(repo: &RepoName, revision: &str) -> Route {
        repo_root(repo, &["commit", revision])
    }

    /// `POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build`
    pub(crate) fn build_status(repo: &RepoName, sha: &Sha) -> Route {
        repo_root(repo, &["commit", sha.as_str(), "statuses", "build"])
    }

    /// `GET /2.0/workspaces/{workspace}/permissions/repositories/{repo_slug}?q=<filter>`:
    /// effective permissions of the users of one repository; `filter` is a BBQL expression
    /// (<https://developer.atlassian.com/cloud/bitbucket/rest/intro/#filtering>).
    pub(crate) fn repository_permissions(repo: &RepoName, filter: &str) -> Route {
        Route::new([
            "2.0",
            "workspaces",
            &repo.owner,
            "permissions",
            "repositories",
            &repo.name,
        ])
        .with("q", filter)
    }

    /// `GET /2.0/user`: the authenticated account.
    pub(crate) fn current_user() -> Route {
        Route::new(["2.0", "user"])
    }

    /// `GET /2.0/repositories/{workspace}/{repo_slug}/pullrequests?state=OPEN&pagelen=50`
    /// (further pages by the answer's `next` link).
    pub(crate) fn open_pull_requests(repo: &RepoName) -> Route {
        repo_root(repo, &["pullrequests"])
            .with("state", "OPEN")
            .with("pagelen", CLOUD_PAGELEN.to_string())
    }

    /// `PUT` / `DELETE /2.0/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/comments/{comment_id}`
    pub(crate) fn comment(repo: &RepoName, pr: PrNumber, id: CommentId) -> Route {
        repo_root(
            repo,
            &["pullrequests", &pr.to_string(), "comments", &id.to_string()],
        )
    }

    /// `POST /2.0/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/merge`
    pub(crate) fn merge(repo: &RepoName, pr: PrNumber) -> Route {
        repo_root(repo, &["pullrequests", &pr.to_string(), "merge"])
    }

    /// `POST /2.0/repositories/{workspace}/{repo_slug}/refs/branches`
    pub(crate) fn branches(repo: &RepoName) -> Route {
        repo_root(repo, &["refs", "branches"])
    }

    /// `GET` / `DELETE /2.0/repositories/{workspace}/{repo_slug}/refs/branches/{name}`: a
    /// name with slashes (`greg/staging/main`) is sent with its slashes, one path segment per
    /// part, as Bitbucket's own links write it.
    pub(crate) fn branch(repo: &RepoName, name: &str) -> Route {
        let mut rest = vec!["refs", "branches"];
        rest.extend(name.split('/'));
        repo_root(repo, &rest)
    }

    /// `GET` / `POST /2.0/repositories/{workspace}/{repo_slug}/hooks` (`pagelen` on lists).
    pub(crate) fn hooks(repo: &RepoName) -> Route {
        repo_root(repo, &["hooks"])
    }

    /// `PUT` / `DELETE /2.0/repositories/{workspace}/{repo_slug}/hooks/{uid}` (`uid` is the
    /// hook's `{uuid}`, braces included).
    pub(crate) fn hook(repo: &RepoName, uid: &str) -> Route {
        repo_root(repo, &["hooks", uid])
    }
}

/// Bitbucket Server/Data Center REST 1.0 routes (`{api_url}/rest/api/1.0/...`).
pub(crate) mod server {
    use super::*;

    fn repo_root(repo: &RepoName, rest: &[&str]) -> Route {
        let mut segments = vec![
            "rest",
            "api",
            "1.0",
            "projects",
            &repo.owner,
            "repos",
            &repo.name,
        ];
        segments.extend_from_slice(rest);
        Route::new(segments)
    }

    /// `GET /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/pull-requests/{pullRequestId}`
    pub(crate) fn pull_request(repo: &RepoName, pr: PrNumber) -> Route {
        repo_root(repo, &["pull-requests", &pr.to_string()])
    }

    /// `POST /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/pull-requests/{pullRequestId}/comments`
    pub(crate) fn comments(repo: &RepoName, pr: PrNumber) -> Route {
        repo_root(repo, &["pull-requests", &pr.to_string(), "comments"])
    }

    /// `GET /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/commits/{commitId}`
    pub(crate) fn commit(repo: &RepoName, revision: &str) -> Route {
        repo_root(repo, &["commits", revision])
    }

    /// `POST /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/commits/{commitId}/builds`
    /// (Data Center 7.4+; the repository-scoped successor of `/rest/build-status/1.0/commits/{id}`).
    pub(crate) fn builds(repo: &RepoName, sha: &Sha) -> Route {
        repo_root(repo, &["commits", sha.as_str(), "builds"])
    }

    /// `GET /rest/api/1.0/users?filter={login}&permission.1={permission}&permission.1.projectKey={key}&permission.1.repositorySlug={slug}&start={start}&limit=100`:
    /// users matching `login` (a substring match on name, display name and e-mail) who hold at
    /// least `permission` on the repository, however granted (directly, by group, by project
    /// or globally).
    pub(crate) fn users_with_permission(
        login: &str,
        permission: &str,
        repo: &RepoName,
        start: u64,
    ) -> Route {
        Route::new(["rest", "api", "1.0", "users"])
            .with("filter", login)
            .with("permission.1", permission)
            .with("permission.1.projectKey", repo.owner.as_str())
            .with("permission.1.repositorySlug", repo.name.as_str())
            .with("start", start.to_string())
            .with("limit", SERVER_LIMIT.to_string())
    }

    /// `GET /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/pull-requests?state=OPEN&start={start}&limit=100`
    /// (incoming pull requests, the default direction).
    pub(crate) fn open_pull_requests(repo: &RepoName, start: u64) -> Route {
        repo_root(repo, &["pull-requests"])
            .with("state", "OPEN")
            .with("start", start.to_string())
            .with("limit", SERVER_LIMIT.to_string())
    }

    /// `GET` / `PUT` / `DELETE /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/pull-requests/{pullRequestId}/comments/{commentId}`
    pub(crate) fn comment(repo: &RepoName, pr: PrNumber, id: CommentId) -> Route {
        repo_root(
            repo,
            &[
                "pull-requests",
                &pr.to_string(),
                "comments",
                &id.to_string(),
            ],
        )
    }

    /// `DELETE .../comments/{commentId}?version={version}`
    pub(crate) fn comment_version(
        repo: &RepoName,
        pr: PrNumber,
        id: CommentId,
        version: u64,
    ) -> Route {
        comment(repo, pr, id).with("version", version.to_string())
    }

    /// `POST /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/pull-requests/{pullRequestId}/merge?version={version}`
    pub(crate) fn merge(repo: &RepoName, pr: PrNumber, version: u64) -> Route {
        repo_root(repo, &["pull-requests", &pr.to_string(), "merge"])
            .with("version", version.to_string())
    }

    /// `GET /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/branches?filterText={name}&start={start}&limit=100`:
    /// branches whose name contains `name`.
    pub(crate) fn branches(repo: &RepoName, name: &str, start: u64) -> Route {
        repo_root(repo, &["branches"])
            .with("filterText", name)
            .with("start", start.to_string())
            .with("limit", SERVER_LIMIT.to_string())
    }

    /// `POST` / `DELETE /rest/branch-utils/1.0/projects/{projectKey}/repos/{repositorySlug}/branches`
    /// (the branch is named in the body).
    pub(crate) fn branch_utils(repo: &RepoName) -> Route {
        Route::new([
            "rest",
            "branch-utils",
            "1.0",
            "projects",
            &repo.owner,
            "repos",
            &repo.name,
            "branches",
        ])
    }

    /// `GET /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/webhooks?start={start}&limit=100`
    /// (and `POST` without a query).
    pub(crate) fn webhooks(repo: &RepoName) -> Route {
        repo_root(repo, &["webhooks"])
    }

    /// `PUT` / `DELETE /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/webhooks/{webhookId}`
    pub(crate) fn webhook(repo: &RepoName, id: &str) -> Route {
        repo_root(repo, &["webhooks", id])
    }
}

/// The `next` link of a Cloud page, accepted only when it points below the configured API
/// root (same scheme, host and port, path under the root's path), so credentials are never
/// sent elsewhere.
///
/// # Errors
/// A one-line reason when the link is not a URL or points elsewhere.
pub(crate) fn cloud_next(base: &Url, next: &str) -> Result<Url, String> {
    let url = Url::parse(next).map_err(|e| format!("the next-page link is not a URL ({e})"))?;
    let same_origin = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.path().starts_with(base.path());
    if !same_origin || !url.username().is_empty() || url.password().is_some() {
        return Err("the next-page link points outside the configured api_url".to_owned());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(url: &str) -> Url {
        Url::parse(url).expect("base")
    }

    fn repo() -> RepoName {
        RepoName::new("acme", "demo")
    }

    fn sha() -> Sha {
        Sha::parse("e42fac24456e4a56f1b7f9358afc3070e3b7ddec").expect("sha")
    }

    #[test]
    fn cloud_paths_are_built_as_documented() {
        let b = base("https://api.bitbucket.org/");
        let cases = [
            (
                cloud::pull_request(&repo(), PrNumber(5)),
                "https://api.bitbucket.org/2.0/repositories/acme/demo/pullrequests/5",
            ),
            (
                cloud::activity(&repo(), PrNumber(5)),
                "https://api.bitbucket.org/2.0/repositories/acme/demo/pullrequests/5/activity?pagelen=50",
            ),
            (
                cloud::comments(&repo(), PrNumber(5)),
                "https://api.bitbucket.org/2.0/repositories/acme/demo/pullrequests/5/comments",
            ),
            (
                cloud::commit(&repo(), "d31df3425c5b"),
                "https://api.bitbucket.org/2.0/repositories/acme/demo/commit/d31df3425c5b",
            ),
            (
                cloud::build_status(&repo(), &sha()),
                "https://api.bitbucket.org/2.0/repositories/acme/demo/commit/e42fac24456e4a56f1b7f9358afc3070e3b7ddec/statuses/build",
            ),
            (
                cloud::repository_permissions(&repo(), r#"user.account_id="557058:x""#),
                "https://api.bitbucket.org/2.0/workspaces/acme/permissions/repositories/demo?q=user.account_id%3D%22557058%3Ax%22",
            ),
            (cloud::current_user(), "https://api.bitbucket.org/2.0/user"),
        ];
        for (route, expected) in cases {
            assert_eq!(route.url(&b).expect("url").as_str(), expected);
        }
    }

    #[test]
    fn server_paths_keep_the_context_path() {
        let b = base("https://example.com/bitbucket/");
        let personal = RepoName::new("~jdoe", "demo");
        let cases = [
            (
                server::pull_request(&personal, PrNumber(5)),
                "https://example.com/bitbucket/rest/api/1.0/projects/~jdoe/repos/demo/pull-requests/5",
            ),
            (
                server::comments(&repo(), PrNumber(5)),
                "https://example.com/bitbucket/rest/api/1.0/projects/acme/repos/demo/pull-requests/5/comments",
            ),
            (
                server::commit(&repo(), "e42fac2"),
                "https://example.com/bitbucket/rest/api/1.0/projects/acme/repos/demo/commits/e42fac2",
            ),
            (
                server::builds(&repo(), &sha()),
                "https://example.com/bitbucket/rest/api/1.0/projects/acme/repos/demo/commits/e42fac24456e4a56f1b7f9358afc3070e3b7ddec/builds",
            ),
            (
                server::users_with_permission("j doe", "REPO_WRITE", &repo(), 100),
                "https://example.com/bitbucket/rest/api/1.0/users?filter=j+doe&permission.1=REPO_WRITE&permission.1.projectKey=acme&permission.1.repositorySlug=demo&start=100&limit=100",
            ),
        ];
        for (route, expected) in cases {
            assert_eq!(route.url(&b).expect("url").as_str(), expected);
        }
    }

    #[test]
    fn user_controlled_segments_cannot_escape_their_place() {
        let b = base("https://api.bitbucket.org/");
        let odd = RepoName::new("a?b", "c d");
        assert_eq!(
            cloud::commit(&odd, "x#y/z").url(&b).expect("url").as_str(),
            "https://api.bitbucket.org/2.0/repositories/a%3Fb/c%20d/commit/x%23y%2Fz"
        );
        for dots in [RepoName::new("acme", ".."), RepoName::new(".", "demo")] {
            let err = cloud::pull_request(&dots, PrNumber(1))
                .url(&b)
                .expect_err("dots");
            assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        }
        assert!(server::commit(&repo(), "..").url(&b).is_err());
    }

    #[test]
    fn cloud_next_links_must_stay_below_the_api_root() {
        let b = base("https://api.bitbucket.org/");
        let next = "https://api.bitbucket.org/2.0/repositories/acme/demo/pullrequests/5/activity?ctx=abc&pagelen=50";
        assert_eq!(
            cloud_next(&b, next).map(|u| u.to_string()),
            Ok(next.to_owned())
        );
        for bad in [
            "https://evil.example.com/2.0/x",
            "http://api.bitbucket.org/2.0/x",
            "https://api.bitbucket.org:8443/2.0/x",
            "https://user:pw@api.bitbucket.org/2.0/x",
            "/2.0/relative",
        ] {
            assert!(cloud_next(&b, bad).is_err(), "{bad}");
        }
        let fake = base("http://127.0.0.1:9000/prefix/");
        assert!(cloud_next(&fake, "http://127.0.0.1:9000/prefix/2.0/x?page=2").is_ok());
        assert!(cloud_next(&fake, "http://127.0.0.1:9000/other/2.0/x").is_err());
    }
}
