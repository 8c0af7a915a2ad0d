//! The REST paths greg calls and the pagination rule, as pure functions.
//!
//! Every path here is an operation of tests/data/github/openapi-subset.json (GitHub's REST
//! description, <https://github.com/github/rest-api-description>); a unit test checks each
//! against it. Paths are relative to `api_url`; octocrab joins them (keeping a GitHub
//! Enterprise `/api/v3` prefix).

use greg_core::{CommentId, Login, PrNumber, RepoName, Sha};

/// Page size for list calls: GitHub's maximum.
pub(crate) const PER_PAGE: usize = 100;
/// Upper bound on pages followed by one list call (10,000 items at [`PER_PAGE`]); a server
/// that keeps announcing more is answered with a protocol error instead of a loop.
pub(crate) const MAX_PAGES: usize = 100;

/// `GET /repos/{owner}/{repo}/pulls/{pull_number}`
pub(crate) fn pull_request(repo: &RepoName, pr: PrNumber) -> String {
    format!("{}/pulls/{pr}", repo_root(repo))
}

/// `GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews?per_page=100&page={page}`
/// (`page` counts from 1).
pub(crate) fn reviews(repo: &RepoName, pr: PrNumber, page: usize) -> String {
    format!(
        "{}/pulls/{pr}/reviews?per_page={PER_PAGE}&page={page}",
        repo_root(repo)
    )
}

/// `GET /repos/{owner}/{repo}/collaborators/{username}/permission`
pub(crate) fn permission(repo: &RepoName, user: &Login) -> String {
    format!(
        "{}/collaborators/{}/permission",
        repo_root(repo),
        segment(user.as_str())
    )
}

/// `POST /repos/{owner}/{repo}/issues/{issue_number}/comments` (a pull request is an issue).
pub(crate) fn issue_comments(repo: &RepoName, pr: PrNumber) -> String {
    format!("{}/issues/{pr}/comments", repo_root(repo))
}

/// `GET /repos/{owner}/{repo}/issues/{issue_number}/comments?per_page=100&page={page}`.
pub(crate) fn issue_comments_page(repo: &RepoName, pr: PrNumber, page: usize) -> String {
    format!(
        "{}/issues/{pr}/comments?per_page={PER_PAGE}&page={page}",
        repo_root(repo)
    )
}

/// `GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls?per_page=100&page={page}`: the pull
/// requests whose head contains the commit (open ones first).
pub(crate) fn commit_pulls(repo: &RepoName, sha: &Sha, page: usize) -> String {
    format!(
        "{}/commits/{}/pulls?per_page={PER_PAGE}&page={page}",
        repo_root(repo),
        sha.as_str()
    )
}

/// `PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}`
pub(crate) fn issue_comment(repo: &RepoName, id: CommentId) -> String {
    format!("{}/issues/comments/{id}", repo_root(repo))
}

/// `POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions`
pub(crate) fn comment_reactions(repo: &RepoName, id: CommentId) -> String {
    format!("{}/issues/comments/{id}/reactions", repo_root(repo))
}

/// `POST /repos/{owner}/{repo}/statuses/{sha}`
pub(crate) fn statuses(repo: &RepoName, sha: &Sha) -> String {
    format!("{}/statuses/{sha}", repo_root(repo))
}

/// `GET /repos/{owner}/{repo}/commits/{ref}/status?per_page=100&page={page}`; `git_ref` is a
/// sha, a branch or a tag name. Its `/`s are kept (GitHub reads `heads/feature/x` as one ref),
/// everything else outside the URL-safe set is percent-encoded.
pub(crate) fn combined_status(repo: &RepoName, git_ref: &str, page: usize) -> String {
    let encoded: Vec<String> = git_ref.split('/').map(segment).collect();
    format!(
        "{}/commits/{}/status?per_page={PER_PAGE}&page={page}",
        repo_root(repo),
        encoded.join("/")
    )
}

/// `GET /repos/{owner}/{repo}/pulls?state=open&per_page=100&page={page}` (`page` counts from 1).
pub(crate) fn open_pulls(repo: &RepoName, page: usize) -> String {
    format!(
        "{}/pulls?state=open&per_page={PER_PAGE}&page={page}",
        repo_root(repo)
    )
}

/// `PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge`
pub(crate) fn pull_merge(repo: &RepoName, pr: PrNumber) -> String {
    format!("{}/pulls/{pr}/merge", repo_root(repo))
}

/// `GET /repos/{owner}/{repo}/git/ref/heads/{branch}`; the branch's `/`s are kept.
pub(crate) fn branch_ref(repo: &RepoName, branch: &str) -> String {
    format!("{}/git/ref/heads/{}", repo_root(repo), path_of(branch))
}

/// `PATCH` and `DELETE /repos/{owner}/{repo}/git/refs/heads/{branch}`.
pub(crate) fn branch_refs(repo: &RepoName, branch: &str) -> String {
    format!("{}/git/refs/heads/{}", repo_root(repo), path_of(branch))
}

/// `POST /repos/{owner}/{repo}/git/refs`
pub(crate) fn git_refs(repo: &RepoName) -> String {
    format!("{}/git/refs", repo_root(repo))
}

/// `POST /repos/{owner}/{repo}/merges`
pub(crate) fn merges(repo: &RepoName) -> String {
    format!("{}/merges", repo_root(repo))
}

/// A ref name as a path: each `/`-separated part percent-encoded, the `/`s kept.
fn path_of(name: &str) -> String {
    name.split('/').map(segment).collect::<Vec<_>>().join("/")
}

/// `GET /repos/{owner}/{repo}`
pub(crate) fn repository(repo: &RepoName) -> String {
    repo_root(repo)
}

/// `GET /repos/{owner}/{repo}/collaborators?permission=admin&per_page=100&page={page}`
/// (`page` counts from 1).
pub(crate) fn admin_collaborators(repo: &RepoName, page: usize) -> String {
    format!(
        "{}/collaborators?permission=admin&per_page={PER_PAGE}&page={page}",
        repo_root(repo)
    )
}

/// `GET /user`: the authenticated user.
pub(crate) const CURRENT_USER: &str = "/user";

/// `GET /orgs/{org}/repos?per_page=100&page={page}` (`page` counts from 1).
pub(crate) fn org_repos(org: &str, page: usize) -> String {
    format!(
        "/orgs/{}/repos?type=all&per_page={PER_PAGE}&page={page}",
        segment(org)
    )
}

/// `GET /users/{username}/repos?per_page=100&page={page}`: a user account's repositories.
pub(crate) fn user_repos(user: &str, page: usize) -> String {
    format!(
        "/users/{}/repos?type=all&per_page={PER_PAGE}&page={page}",
        segment(user)
    )
}

/// `GET` / `POST /repos/{owner}/{repo}/hooks` (`page` counts from 1; `None` for `POST`).
pub(crate) fn hooks(repo: &RepoName, page: Option<usize>) -> String {
    match page {
        Some(page) => format!("{}/hooks?per_page={PER_PAGE}&page={page}", repo_root(repo)),
        None => format!("{}/hooks", repo_root(repo)),
    }
}

/// `PATCH` / `DELETE /repos/{owner}/{repo}/hooks/{hook_id}`
pub(crate) fn hook(repo: &RepoName, id: u64) -> String {
    format!("{}/hooks/{id}", repo_root(repo))
}

/// `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries?per_page=100[&cursor=...]` (the
/// `cursor` of the next page comes from the `Link` header, see [`next_cursor`]).
pub(crate) fn hook_deliveries(repo: &RepoName, hook_id: u64, cursor: Option<&str>) -> String {
    let root = format!(
        "{}/hooks/{hook_id}/deliveries?per_page={PER_PAGE}",
        repo_root(repo)
    );
    match cursor {
        Some(cursor) => format!("{root}&cursor={}", segment(cursor)),
        None => root,
    }
}

/// `POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts`
pub(crate) fn redeliver(repo: &RepoName, hook_id: u64, delivery_id: u64) -> String {
    format!(
        "{}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
        repo_root(repo)
    )
}

/// The `cursor` query parameter of the `rel="next"` entry of a `Link` header (GitHub pages
/// webhook deliveries by cursor, not by page number), decoded; `None` on the last page.
pub(crate) fn next_cursor(link: Option<&str>) -> Option<String> {
    let next = link?.split(',').find(|entry| link_has_next(entry))?;
    let url = next.split(';').next()?.trim().trim_start_matches('<');
    let url = url.trim_end_matches('>');
    let (_, query) = url.split_once('?')?;
    let raw = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("cursor="))?;
    let decoded = percent_decode(raw);
    (!decoded.is_empty()).then_some(decoded)
}

/// Decodes `%XX` escapes (and leaves anything malformed as it is).
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn repo_root(repo: &RepoName) -> String {
    format!("/repos/{}/{}", segment(&repo.owner), segment(&repo.name))
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters.
fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a list call should fetch the page after the one just read.
///
/// GitHub announces further pages in the `Link` header (`<...>; rel="next"`,
/// <https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api>).
/// When the header is present it decides; a server that sends none (a minimal fake, an old
/// proxy) is paged until a short page.
pub(crate) fn has_next_page(link: Option<&str>, items_on_page: usize) -> bool {
    match link {
        Some(link) => link_has_next(link),
        None => items_on_page >= PER_PAGE,
    }
}

/// True when a `Link` header value has a `rel="next"` entry (`rel` may list several types).
fn link_has_next(link: &str) -> bool {
    link.split(',').any(|entry| {
        entry.split(';').skip(1).any(|param| {
            let Some((key, value)) = param.split_once('=') else {
                return false;
            };
            key.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn repo() -> RepoName {
        RepoName::new("acme", "demo")
    }

    fn sha() -> Sha {
        Sha::parse("6dcb09b5b57875f334f61aebed695e2e4193db5e").expect("sha")
    }

    #[test]
    fn paths_are_built_as_documented() {
        assert_eq!(
            pull_request(&repo(), PrNumber(5)),
            "/repos/acme/demo/pulls/5"
        );
        assert_eq!(
            reviews(&repo(), PrNumber(5), 2),
            "/repos/acme/demo/pulls/5/reviews?per_page=100&page=2"
        );
        assert_eq!(
            permission(&repo(), &Login::from("octo-cat")),
            "/repos/acme/demo/collaborators/octo-cat/permission"
        );
        assert_eq!(
            issue_comments(&repo(), PrNumber(5)),
            "/repos/acme/demo/issues/5/comments"
        );
        assert_eq!(
            issue_comment(&repo(), CommentId(77)),
            "/repos/acme/demo/issues/comments/77"
        );
        assert_eq!(
            statuses(&repo(), &sha()),
            "/repos/acme/demo/statuses/6dcb09b5b57875f334f61aebed695e2e4193db5e"
        );
        assert_eq!(
            branch_ref(&repo(), "greg/staging/ma in"),
            "/repos/acme/demo/git/ref/heads/greg/staging/ma%20in"
        );
        assert_eq!(
            branch_refs(&repo(), "main"),
            "/repos/acme/demo/git/refs/heads/main"
        );
        assert_eq!(
            open_pulls(&repo(), 3),
            "/repos/acme/demo/pulls?state=open&per_page=100&page=3"
        );
        assert_eq!(
            combined_status(&repo(), "heads/feature/ü x", 1),
            "/repos/acme/demo/commits/heads/feature/%C3%BC%20x/status?per_page=100&page=1"
        );
    }

    #[test]
    fn deliveries_page_by_the_cursor_of_the_next_link() {
        assert_eq!(
            hook_deliveries(&repo(), 7, None),
            "/repos/acme/demo/hooks/7/deliveries?per_page=100"
        );
        assert_eq!(
            hook_deliveries(&repo(), 7, Some("v1_12+3")),
            "/repos/acme/demo/hooks/7/deliveries?per_page=100&cursor=v1_12%2B3"
        );
        assert_eq!(
            redeliver(&repo(), 7, 123),
            "/repos/acme/demo/hooks/7/deliveries/123/attempts"
        );
        let link = r#"<https://api.github.com/repositories/1/hooks/7/deliveries?per_page=100&cursor=v1_12%2B3>; rel="next", <https://api.github.com/x?cursor=v0>; rel="prev""#;
        assert_eq!(next_cursor(Some(link)), Some("v1_12+3".to_owned()));
        assert_eq!(
            next_cursor(Some(r#"<https://api.github.com/x?cursor=v0>; rel="prev""#)),
            None
        );
        assert_eq!(next_cursor(None), None);
        assert_eq!(next_cursor(Some("<x?per_page=1>; rel=\"next\"")), None);
    }

    #[test]
    fn user_controlled_segments_cannot_escape_their_place() {
        let odd = RepoName::new("a?b", "c#d");
        assert_eq!(
            permission(&odd, &Login::from("../x")),
            "/repos/a%3Fb/c%23d/collaborators/..%2Fx/permission"
        );
    }

    /// Every path greg builds matches an operation (method and template) of GitHub's
    /// description in tests/data/github/openapi-subset.json.
    #[test]
    fn every_path_is_in_the_openapi_description() {
        let raw = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/github/openapi-subset.json"
        ))
        .expect("openapi-subset.json");
        let spec: Value = serde_json::from_str(&raw).expect("openapi JSON");
        let paths = spec["paths"].as_object().expect("paths");
        let calls = [
            ("get", pull_request(&repo(), PrNumber(5))),
            ("get", reviews(&repo(), PrNumber(5), 1)),
            ("get", permission(&repo(), &Login::from("octocat"))),
            ("post", issue_comments(&repo(), PrNumber(5))),
            ("patch", issue_comment(&repo(), CommentId(1))),
            ("delete", issue_comment(&repo(), CommentId(1))),
            ("post", comment_reactions(&repo(), CommentId(1))),
            ("get", issue_comments_page(&repo(), PrNumber(5), 1)),
            ("get", commit_pulls(&repo(), &sha(), 1)),
            ("post", statuses(&repo(), &sha())),
            ("get", combined_status(&repo(), sha().as_str(), 1)),
            ("get", repository(&repo())),
            ("get", hooks(&repo(), Some(1))),
            ("post", hooks(&repo(), None)),
            ("get", open_pulls(&repo(), 1)),
            ("put", pull_merge(&repo(), PrNumber(5))),
            ("get", branch_ref(&repo(), "greg/staging/main")),
            ("patch", branch_refs(&repo(), "main")),
            ("delete", branch_refs(&repo(), "greg/staging/main")),
            ("post", git_refs(&repo())),
            ("post", merges(&repo())),
            ("get", hook_deliveries(&repo(), 7, None)),
            ("get", hook_deliveries(&repo(), 7, Some("v1_123"))),
            ("post", redeliver(&repo(), 7, 123)),
        ];
        for (method, path) in calls {
            let (path, query) = path.split_once('?').unwrap_or((&path, ""));
            let (template, operation) = paths
                .iter()
                .find(|(template, ops)| matches(template, path) && ops.get(method).is_some())
                .map(|(t, ops)| (t, &ops[method]))
                .unwrap_or_else(|| panic!("{method} {path} is not in openapi-subset.json"));
            // Query parameters must be declared by the operation.
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let name = pair.split('=').next().unwrap_or("");
                assert!(
                    declares_query(&spec, operation, name),
                    "{method} {template}: undeclared query parameter {name}"
                );
            }
        }
    }

    /// A template's `{param}` matches one non-empty segment; a trailing `{ref}` (GitHub marks
    /// it `x-multi-segment`: `heads/feature/x`) matches the rest of the path.
    fn matches(template: &str, path: &str) -> bool {
        let t: Vec<&str> = template.split('/').collect();
        let p: Vec<&str> = path.split('/').collect();
        let segment = |t: &&str, p: &&str| {
            (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p
        };
        if t.last() == Some(&"{ref}") && p.len() >= t.len() {
            return t.iter().zip(&p).all(|(t, p)| segment(t, p));
        }
        t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| segment(t, p))
    }

    fn declares_query(spec: &Value, operation: &Value, name: &str) -> bool {
        let params = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        params.iter().any(|p| {
            let p = match p["$ref"].as_str() {
                Some(r) => r
                    .trim_start_matches("#/")
                    .split('/')
                    .fold(spec, |node, key| &node[key]),
                None => p,
            };
            p["in"] == "query" && p["name"] == name
        })
    }

    #[test]
    fn pagination_follows_link_headers_then_short_pages() {
        // Link header from GitHub's pagination guide.
        let middle = r#"<https://api.github.com/repositories/1300192/issues?page=2>; rel="prev", <https://api.github.com/repositories/1300192/issues?page=4>; rel="next", <https://api.github.com/repositories/1300192/issues?page=515>; rel="last", <https://api.github.com/repositories/1300192/issues?page=1>; rel="first""#;
        let last = r#"<https://api.github.com/repositories/1300192/issues?page=514>; rel="prev", <https://api.github.com/repositories/1300192/issues?page=1>; rel="first""#;
        assert!(has_next_page(Some(middle), 100));
        assert!(!has_next_page(Some(last), 100));
        assert!(has_next_page(Some(r#"<x?page=2>; rel="next last""#), 3));
        assert!(!has_next_page(Some(r#"<x?page=2>; title="next""#), 100));
        // Without Link: a full page means there may be more.
        assert!(has_next_page(None, PER_PAGE));
        assert!(!has_next_page(None, PER_PAGE - 1));
        assert!(!has_next_page(None, 0));
    }
}
