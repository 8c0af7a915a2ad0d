//! GitHub webhook deliveries built from the world: `pull_request`, `issue_comment`,
//! `pull_request_review` and `push` payloads, with GitHub's delivery headers and the
//! `X-Hub-Signature-256` HMAC. The fake GitHub never sends them itself: a test (or `greg demo`)
//! acts on the world, builds the delivery GitHub would send, and posts it to greg.
//!
//! Shapes: <https://docs.github.com/en/webhooks/webhook-events-and-payloads> and the fixtures
//! under tests/data/github/ (this module's tests check that every key of those fixtures that
//! greg could read is present). Objects embedded in payloads (pull request, repository, user,
//! comment) are the REST renderers of [`crate::github::json`]; as on GitHub, review states are
//! lower-case in webhooks (`approved`).

use crate::github::json;
use crate::world::{Comment, FakeReview, Repo, World, WorldError};
use greg_core::{Login, PrNumber, RepoName, ReviewState, Sha};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// `sha256=<hex>`: the `X-Hub-Signature-256` value for `body` under `secret` (HMAC-SHA256).
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One webhook delivery as GitHub would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDelivery {
    /// `X-GitHub-Event`: `pull_request`, `issue_comment`, `pull_request_review`, `push`.
    pub event: String,
    /// `X-GitHub-Delivery`: a GUID, unique per delivery built by this world.
    pub delivery_id: String,
    /// The JSON payload.
    pub payload: Value,
}

impl WebhookDelivery {
    /// The body bytes (compact JSON); sign exactly these.
    pub fn body(&self) -> Vec<u8> {
        self.payload.to_string().into_bytes()
    }

    /// GitHub's delivery headers; with a secret, `X-Hub-Signature-256` over [`Self::body`].
    pub fn headers(&self, secret: Option<&str>) -> Vec<(String, String)> {
        let mut h = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), "GitHub-Hookshot/fake".to_owned()),
            ("x-github-event".to_owned(), self.event.clone()),
            ("x-github-delivery".to_owned(), self.delivery_id.clone()),
            ("x-github-hook-id".to_owned(), "1".to_owned()),
        ];
        if let Some(s) = secret {
            h.push(("x-hub-signature-256".to_owned(), sign(s, &self.body())));
        }
        h
    }

    /// POSTs the delivery to `url` (greg's `/repo?provider=github&token=...`).
    pub async fn send(
        &self,
        client: &reqwest::Client,
        url: &str,
        secret: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut req = client.post(url).body(self.body());
        for (k, v) in self.headers(secret) {
            req = req.header(k, v);
        }
        req.send().await
    }
}

fn guid(n: u64) -> String {
    format!(
        "{:08x}-fa6e-4000-8000-{:012x}",
        n >> 32,
        n & 0xffff_ffff_ffff
    )
}

fn lower_state(s: ReviewState) -> &'static str {
    match s {
        ReviewState::Approved => "approved",
        ReviewState::ChangesRequested => "changes_requested",
        ReviewState::Commented => "commented",
        ReviewState::Dismissed => "dismissed",
    }
}

/// The `issue` object of an `issue_comment` payload for a pull request.
fn issue(api: &str, repo: &Repo, pr: PrNumber) -> Result<Value, WorldError> {
    let p = repo.pull(pr)?;
    let full = repo.name.to_string();
    let pr_json = json::pull_request(api, repo, p);
    Ok(json!({
        "url": format!("{api}/repos/{full}/issues/{pr}"),
        "repository_url": format!("{api}/repos/{full}"),
        "labels_url": format!("{api}/repos/{full}/issues/{pr}/labels{{/name}}"),
        "comments_url": format!("{api}/repos/{full}/issues/{pr}/comments"),
        "events_url": format!("{api}/repos/{full}/issues/{pr}/events"),
        "html_url": pr_json["html_url"],
        "id": p.id,
        "node_id": pr_json["node_id"],
        "number": pr.0,
        "title": p.title,
        "user": pr_json["user"],
        "labels": [],
        "state": pr_json["state"],
        "locked": false,
        "assignee": null,
        "assignees": [],
        "milestone": null,
        "comments": pr_json["comments"],
        "created_at": pr_json["created_at"],
        "updated_at": pr_json["updated_at"],
        "closed_at": pr_json["closed_at"],
        "author_association": pr_json["author_association"],
        "active_lock_reason": null,
        "draft": p.draft,
        "pull_request": {
            "url": pr_json["url"],
            "html_url": pr_json["html_url"],
            "diff_url": pr_json["diff_url"],
            "patch_url": pr_json["patch_url"],
            "merged_at": pr_json["merged_at"],
        },
        "body": pr_json["body"],
        "reactions": reactions(&format!("{api}/repos/{full}/issues/{pr}/reactions")),
        "timeline_url": format!("{api}/repos/{full}/issues/{pr}/timeline"),
        "performed_via_github_app": null,
        "state_reason": null,
    }))
}

fn reactions(url: &str) -> Value {
    json!({
        "url": url, "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
        "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
    })
}

impl World {
    fn delivery(&self, event: &str, payload: Value) -> WebhookDelivery {
        let n = self.update(|s| s.github.next_id());
        WebhookDelivery {
            event: event.to_owned(),
            delivery_id: guid(n),
            payload,
        }
    }

    /// A `pull_request` delivery with `action` (`opened`, `synchronize`, `reopened`, `closed`,
    /// `ready_for_review`, `edited`, ...) carrying the pull request as it is now. `synchronize`
    /// adds `before` (the head's first parent) and `after`; `sender` is the author.
    pub fn pull_request_webhook(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        action: &str,
    ) -> Result<WebhookDelivery, WorldError> {
        let payload = self.read(|s| {
            let api = &s.github.api_url;
            let r = s.github.repo(repo)?;
            let p = r.pull(pr)?;
            let mut v = json!({
                "action": action,
                "number": pr.0,
                "pull_request": json::pull_request(api, r, p),
                "repository": json::repository(api, repo, Some(r)),
                "sender": json::user(api, &p.author),
            });
            if action == "synchronize"
                && let Some(o) = v.as_object_mut()
            {
                let before = r
                    .commits
                    .get(&p.head_sha)
                    .and_then(|c| c.parents.first())
                    .map(Sha::to_string);
                o.insert("before".to_owned(), json!(before));
                o.insert("after".to_owned(), json!(p.head_sha.to_string()));
            }
            Ok(v)
        })?;
        Ok(self.delivery("pull_request", payload))
    }

    /// An `issue_comment` `created` delivery for a comment on a pull request.
    pub fn comment_webhook(
        &self,
        repo: &RepoName,
        comment: &Comment,
    ) -> Result<WebhookDelivery, WorldError> {
        let payload = self.read(|s| {
            let api = &s.github.api_url;
            let r = s.github.repo(repo)?;
            let mut c = json::comment(api, r, comment);
            if let Some(o) = c.as_object_mut() {
                o.insert(
                    "reactions".to_owned(),
                    reactions(&format!(
                        "{api}/repos/{repo}/issues/comments/{}/reactions",
                        comment.id
                    )),
                );
            }
            Ok::<_, WorldError>(json!({
                "action": "created",
                "issue": issue(api, r, comment.pr)?,
                "comment": c,
                "repository": json::repository(api, repo, Some(r)),
                "sender": json::user(api, &comment.author),
            }))
        })?;
        Ok(self.delivery("issue_comment", payload))
    }

    /// A `pull_request_review` `submitted` delivery (state lower-case, as webhooks spell it).
    pub fn review_webhook(
        &self,
        repo: &RepoName,
        review: &FakeReview,
    ) -> Result<WebhookDelivery, WorldError> {
        let payload = self.read(|s| {
            let api = &s.github.api_url;
            let r = s.github.repo(repo)?;
            let p = r.pull(review.pr)?;
            let mut rv = json::review(api, r, review);
            if let Some(o) = rv.as_object_mut() {
                o.insert("state".to_owned(), Value::from(lower_state(review.state)));
            }
            Ok::<_, WorldError>(json!({
                "action": "submitted",
                "review": rv,
                "pull_request": json::pull_request(api, r, p),
                "repository": json::repository(api, repo, Some(r)),
                "sender": json::user(api, &review.reviewer),
            }))
        })?;
        Ok(self.delivery("pull_request_review", payload))
    }

    /// A `push` delivery for `branch` moving from `before` (`None`: a new branch) to its
    /// current tip, pushed by `pusher`.
    pub fn push_webhook(
        &self,
        repo: &RepoName,
        branch: &str,
        before: Option<&Sha>,
        pusher: &str,
    ) -> Result<WebhookDelivery, WorldError> {
        let payload = self.read(|s| {
            let api = &s.github.api_url;
            let r = s.github.repo(repo)?;
            let after = r
                .branches
                .get(branch)
                .ok_or_else(|| WorldError::UnknownBranch(repo.clone(), branch.to_owned()))?;
            let zero = "0".repeat(40);
            let before = before.map_or(zero, Sha::to_string);
            let full = repo.to_string();
            let message = r.commits.get(after).map_or("", |c| c.message.as_str());
            let person = json!({ "name": pusher, "email": format!("{pusher}@users.noreply.example.com"), "username": pusher });
            let head_commit = json!({
                "id": after.to_string(),
                "tree_id": after.to_string(),
                "distinct": true,
                "message": message,
                "timestamp": json::iso8601(s.now_ms()),
                "url": format!("{api}/{full}/commit/{after}"),
                "author": person,
                "committer": person,
                "added": [], "removed": [], "modified": [],
            });
            let mut repository = json::repository(api, repo, Some(r));
            if let Some(owner) = repository.get_mut("owner").and_then(Value::as_object_mut) {
                owner.insert("name".to_owned(), Value::from(repo.owner.clone()));
                owner.insert("email".to_owned(), Value::Null);
            }
            Ok::<_, WorldError>(json!({
                "ref": format!("refs/heads/{branch}"),
                "before": before,
                "after": after.to_string(),
                "created": before.bytes().all(|b| b == b'0'),
                "deleted": false,
                "forced": false,
                "base_ref": null,
                "compare": format!("{api}/{full}/compare/{}...{}", &before[..12], &after.as_str()[..12]),
                "commits": [head_commit.clone()],
                "head_commit": head_commit,
                "repository": repository,
                "pusher": { "name": pusher, "email": format!("{pusher}@users.noreply.example.com") },
                "sender": json::user(api, &Login::from(pusher)),
            }))
        })?;
        Ok(self.delivery("push", payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::NewPr;
    use crate::world::github::fake_sha;
    use std::collections::BTreeSet;

    fn fixture(name: &str) -> Value {
        let full = format!(
            "{}/../../tests/data/github/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(full).expect("fixture")).expect("json")
    }

    /// Keys of `fixture` at `pointer` missing from `ours` at the same place.
    fn missing(fixture: &Value, ours: &Value, pointer: &str) -> BTreeSet<String> {
        let keys = |v: &Value| -> BTreeSet<String> {
            v.pointer(pointer)
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        keys(fixture).difference(&keys(ours)).cloned().collect()
    }

    fn world() -> (World, RepoName) {
        let w = World::new("greg-bot");
        let repo = RepoName::new("acme", "demo");
        w.create_repo(&repo).expect("repo");
        (w, repo)
    }

    #[test]
    fn the_github_docs_test_vector_signs() {
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn pull_request_payloads_have_the_fixtures_keys() {
        let (w, repo) = world();
        let pr = w
            .open_pr(&repo, NewPr::new("carol", "fix", fake_sha("a")))
            .expect("open");
        w.push_to_pr(&repo, pr.number, &fake_sha("b"))
            .expect("push");
        let d = w
            .pull_request_webhook(&repo, pr.number, "synchronize")
            .expect("delivery");
        assert_eq!(d.event, "pull_request");
        assert_eq!(d.payload["before"], fake_sha("a").as_str());
        assert_eq!(d.payload["after"], fake_sha("b").as_str());
        let fx = fixture("pull_request.synchronize.json");
        let top: BTreeSet<String> = missing(&fx, &d.payload, "");
        assert_eq!(top, BTreeSet::from(["installation".to_owned()]));
        for p in [
            "/pull_request",
            "/pull_request/head",
            "/pull_request/base",
            "/sender",
        ] {
            assert_eq!(missing(&fx, &d.payload, p), BTreeSet::new(), "{p}");
        }
        let headers = d.headers(Some("s3cret"));
        let sig = headers
            .iter()
            .find(|(k, _)| k == "x-hub-signature-256")
            .map(|(_, v)| v.clone());
        assert_eq!(sig, Some(sign("s3cret", &d.body())));
        let other = w
            .pull_request_webhook(&repo, pr.number, "opened")
            .expect("delivery");
        assert_ne!(other.delivery_id, d.delivery_id);
    }

    #[test]
    fn comment_and_review_payloads_have_the_fixtures_keys() {
        let (w, repo) = world();
        let pr = w
            .open_pr(&repo, NewPr::new("carol", "fix", fake_sha("a")))
            .expect("open");
        let c = w
            .comment(&repo, pr.number, "alice", "@greg please")
            .expect("comment");
        let d = w.comment_webhook(&repo, &c).expect("delivery");
        let fx = fixture("issue_comment.created.on-pull-request.json");
        assert_eq!(
            missing(&fx, &d.payload, ""),
            BTreeSet::from(["installation".to_owned()])
        );
        for p in ["/issue", "/issue/pull_request", "/comment", "/sender"] {
            assert_eq!(missing(&fx, &d.payload, p), BTreeSet::new(), "{p}");
        }
        assert_eq!(d.payload["comment"]["body"], "@greg please");
        assert_eq!(d.payload["issue"]["number"], 1);

        let r = w.approve(&repo, pr.number, "alice").expect("review");
        let d = w.review_webhook(&repo, &r).expect("delivery");
        let fx = fixture("pull_request_review.submitted.json");
        assert_eq!(
            missing(&fx, &d.payload, ""),
            BTreeSet::from(["installation".to_owned()])
        );
        for p in ["/review", "/review/_links"] {
            assert_eq!(missing(&fx, &d.payload, p), BTreeSet::new(), "{p}");
        }
        assert_eq!(d.payload["review"]["state"], "approved");
        assert_eq!(d.payload["review"]["commit_id"], fake_sha("a").as_str());
    }

    #[test]
    fn push_payloads_have_the_fixtures_keys() {
        let (w, repo) = world();
        let old = w.branch(&repo, "master").expect("master");
        w.push_branch(&repo, "master", &fake_sha("p"))
            .expect("push");
        let d = w
            .push_webhook(&repo, "master", Some(&old), "carol")
            .expect("delivery");
        let fx = fixture("push.json");
        for p in ["", "/pusher"] {
            assert_eq!(missing(&fx, &d.payload, p), BTreeSet::new(), "{p}");
        }
        assert_eq!(d.payload["ref"], "refs/heads/master");
        assert_eq!(d.payload["after"], fake_sha("p").as_str());
        assert_eq!(d.payload["created"], false);
        assert_eq!(d.payload["repository"]["full_name"], "acme/demo");
        let new_branch = w
            .push_webhook(&repo, "master", None, "carol")
            .expect("delivery");
        assert_eq!(new_branch.payload["created"], true);
    }
}
