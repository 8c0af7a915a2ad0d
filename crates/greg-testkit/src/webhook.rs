//! GitHub webhook deliveries built from the world: `pull_request`, `issue_comment`,
//! `pull_request_review` and `push` payloads, with GitHub's delivery headers and the
//! `X-Hub-Signature-256` HMAC. The fake GitHub never sends them itself: a test (or `greg demo`)
//! acts on the world, builds the delivery GitHub would send, and posts it to greg.
//!
//! Every payload starts from a real delivery captured by a vendor (tests/data/github/, embedded
//! in the binary; provenance in tests/data/SOURCES.md) and takes the world's facts (ids, shas,
//! logins, names, states, URLs on the fake's API address) at every place the capture has them.
//! The key set and the JSON types stay the capture's: a key GitHub sent in that delivery is
//! there (even `installation`, which greg does not read), a key the capture lacks is not added.
//! Values the world does not model (`installation`, `changes.body`, a few counters) stay as the
//! vendor wrote them. So greg's parser is exercised on full, real payloads, old and new.
//!
//! Shapes: <https://docs.github.com/en/webhooks/webhook-events-and-payloads>. As on GitHub,
//! review states are lower-case in webhooks (`approved`), and `push` payloads carry the
//! repository's `created_at`/`pushed_at` as Unix seconds.

use crate::github::json;
use crate::world::{Comment, FakeReview, Repo, World, WorldError};
use greg_core::{Login, PrNumber, RepoName, ReviewState, Sha};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::LazyLock;

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

/// `(name, include_str!(tests/data/github/<name>))`.
macro_rules! template {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../../tests/data/github/", $name)),
        )
    };
}

/// The vendor captures payloads start from: `(file under tests/data/github/, its text)`.
/// Which builder uses which is documented on the builders.
const TEMPLATES: [(&str, &str); 12] = [
    template!("pull_request.opened.json"),
    template!("pull_request.synchronize.json"),
    template!("pull_request.reopened.json"),
    template!("pull_request.closed.json"),
    template!("pull_request.closed.merged.json"),
    template!("pull_request.edited.json"),
    template!("pull_request.edited.base-changed.json"),
    template!("issue_comment.created.on-pull-request.json"),
    template!("pull_request_review.submitted.approved.json"),
    template!("pull_request_review.submitted.json"),
    template!("push.json"),
    template!("push.new-branch.json"),
];

/// Index into [`TEMPLATES`] (same order).
#[derive(Debug, Clone, Copy)]
enum Template {
    PrOpened,
    PrSynchronize,
    PrReopened,
    PrClosed,
    PrClosedMerged,
    PrEdited,
    PrEditedBase,
    CommentOnPr,
    ReviewApproved,
    ReviewSubmitted,
    Push,
    PushNewBranch,
}

/// [`TEMPLATES`] parsed once.
static PARSED: LazyLock<Vec<Value>> = LazyLock::new(|| {
    TEMPLATES
        .iter()
        .map(|(name, text)| {
            // Compiled-in vendor data, not input: a parse failure is a broken checkout, and
            // the crate's tests parse every template.
            serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("embedded fixture {name} is not JSON: {e}"))
        })
        .collect()
});

impl Template {
    /// A fresh copy of the parsed capture.
    fn value(self) -> Value {
        PARSED.get(self as usize).cloned().unwrap_or(Value::Null)
    }
}

/// Writes `world` over `template` in place, keeping the template's shape:
/// - two objects merge key by key: a key both have takes the world's value (recursively), a
///   key only the template has keeps the vendor's value, a key only the world has is dropped;
/// - two arrays: the result has the world's elements; when the template's first element is an
///   object, each object element is written over a copy of it (so `commits`, `labels` keep
///   the vendor's element shape);
/// - anything else (including `null` on either side) takes the world's value.
fn overlay(template: &mut Value, world: Value) {
    match (template, world) {
        (Value::Object(t), Value::Object(mut w)) => {
            for (k, tv) in t.iter_mut() {
                if let Some(wv) = w.remove(k) {
                    overlay(tv, wv);
                }
            }
        }
        (Value::Array(t), Value::Array(w)) => {
            let shape = t.first().filter(|v| v.is_object()).cloned();
            *t = w
                .into_iter()
                .map(|el| match &shape {
                    Some(s) if el.is_object() => {
                        let mut s = s.clone();
                        overlay(&mut s, el);
                        s
                    }
                    _ => el,
                })
                .collect();
        }
        (t, w) => *t = w,
    }
}

/// `template` with the world's `facts` written over it (see [`overlay`]).
fn from_template(template: Template, facts: Value) -> Value {
    let mut v = template.value();
    overlay(&mut v, facts);
    v
}

/// Sets `key` of the object `v` (added when the template lacks it).
fn set(v: &mut Value, key: &str, value: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_owned(), value);
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

/// The `organization` object for the repository's owner (only written where the capture has
/// one; the vendor's description is not the owner's, so it is cleared).
fn organization(api: &str, owner: &str) -> Value {
    let mut o = json::user(api, &Login::from(owner));
    set(&mut o, "description", Value::Null);
    o
}

/// The facts every payload shares: `repository`, `sender`, and `organization` (used only
/// when the capture has one).
fn common(api: &str, r: &Repo, sender: &Login) -> Value {
    json!({
        "repository": json::repository(api, &r.name, Some(r)),
        "sender": json::user(api, sender),
        "organization": organization(api, &r.name.owner),
    })
}

/// `a` with `b`'s top-level keys added.
fn with(mut a: Value, b: Value) -> Value {
    if let (Some(o), Value::Object(more)) = (a.as_object_mut(), b) {
        o.extend(more);
    }
    a
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
    /// `ready_for_review`, `edited`, ...) carrying the pull request as it is now; `sender` is
    /// the author.
    ///
    /// Template per action (tests/data/github/): `pull_request.<action>.json` for `opened`,
    /// `synchronize`, `reopened`; `closed` uses `pull_request.closed.merged.json` when the
    /// pull request is merged in the world, else `pull_request.closed.json`; `edited` uses
    /// `pull_request.edited.json` (a body edit, which greg ignores; see
    /// [`World::pull_request_retargeted_webhook`] for a base change); any other action uses
    /// `pull_request.opened.json` with `action` set. `synchronize` sets `before` (the head's
    /// first parent, `null` when the world does not know it) and `after` (the head).
    ///
    /// # Errors
    /// [`WorldError::UnknownRepo`] / [`WorldError::UnknownPr`].
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
            let template = match action {
                "opened" => Template::PrOpened,
                "synchronize" => Template::PrSynchronize,
                "reopened" => Template::PrReopened,
                "closed" if p.merged_at.is_some() => Template::PrClosedMerged,
                "closed" => Template::PrClosed,
                "edited" => Template::PrEdited,
                _ => Template::PrOpened,
            };
            let facts = json!({
                "action": action,
                "number": pr.0,
                "pull_request": json::pull_request(api, r, p),
            });
            let mut v = from_template(template, with(facts, common(api, r, &p.author)));
            if action == "synchronize" {
                let before = r
                    .commits
                    .get(&p.head_sha)
                    .and_then(|c| c.parents.first())
                    .map(Sha::to_string);
                set(&mut v, "before", json!(before));
                set(&mut v, "after", json!(p.head_sha.to_string()));
            }
            Ok(v)
        })?;
        Ok(self.delivery("pull_request", payload))
    }

    /// A `pull_request` `edited` delivery for a pull request whose target branch changed from
    /// `from_base` to its current base (change the base first with [`World::edit_pr`]).
    /// Template: `pull_request.edited.base-changed.json`; `changes.base.ref.from` is
    /// `from_base` and `changes.base.sha.from` its tip. greg reads it as a retarget.
    ///
    /// # Errors
    /// [`WorldError::UnknownRepo`] / [`WorldError::UnknownPr`]; [`WorldError::UnknownBranch`]
    /// when `from_base` is not a branch of the repository.
    pub fn pull_request_retargeted_webhook(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        from_base: &str,
    ) -> Result<WebhookDelivery, WorldError> {
        let payload = self.read(|s| {
            let api = &s.github.api_url;
            let r = s.github.repo(repo)?;
            let p = r.pull(pr)?;
            let from_sha = r
                .branches
                .get(from_base)
                .ok_or_else(|| WorldError::UnknownBranch(repo.clone(), from_base.to_owned()))?;
            let facts = json!({
                "action": "edited",
                "number": pr.0,
                "pull_request": json::pull_request(api, r, p),
                "changes": {
                    "base": {
                        "ref": { "from": from_base },
                        "sha": { "from": from_sha.to_string() },
                    },
                },
            });
            Ok::<_, WorldError>(from_template(
                Template::PrEditedBase,
                with(facts, common(api, r, &p.author)),
            ))
        })?;
        Ok(self.delivery("pull_request", payload))
    }

    /// An `issue_comment` `created` delivery for a comment on a pull request; `sender` is the
    /// comment's author. Template: `issue_comment.created.on-pull-request.json` (a real
    /// delivery captured by rust-lang/bors).
    ///
    /// # Errors
    /// [`WorldError::UnknownRepo`] / [`WorldError::UnknownPr`].
    pub fn comment_webhook(
        &self,
        repo: &RepoName,
        comment: &Comment,
    ) -> Result<WebhookDelivery, WorldError> {
        let payload = self.read(|s| {
            let api = &s.github.api_url;
            let r = s.github.repo(repo)?;
            let mut c = json::comment(api, r, comment);
            set(
                &mut c,
                "reactions",
                reactions(&format!(
                    "{api}/repos/{repo}/issues/comments/{}/reactions",
                    comment.id
                )),
            );
            let facts = json!({
                "action": "created",
                "issue": issue(api, r, comment.pr)?,
                "comment": c,
            });
            Ok::<_, WorldError>(from_template(
                Template::CommentOnPr,
                with(facts, common(api, r, &comment.author)),
            ))
        })?;
        Ok(self.delivery("issue_comment", payload))
    }

    /// A `pull_request_review` delivery for `review` (state lower-case, as webhooks spell
    /// it); `sender` is the reviewer. Action `submitted`, or `dismissed` for a dismissed
    /// review. Template: `pull_request_review.submitted.approved.json` (a real
    /// kubernetes/kubernetes delivery from 2018, without the newer keys such as `draft`) for
    /// an approval, else `pull_request_review.submitted.json`.
    ///
    /// # Errors
    /// [`WorldError::UnknownRepo`] / [`WorldError::UnknownPr`].
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
            set(&mut rv, "state", Value::from(lower_state(review.state)));
            let (template, action) = match review.state {
                ReviewState::Approved => (Template::ReviewApproved, "submitted"),
                ReviewState::Dismissed => (Template::ReviewSubmitted, "dismissed"),
                _ => (Template::ReviewSubmitted, "submitted"),
            };
            let facts = json!({
                "action": action,
                "review": rv,
                "pull_request": json::pull_request(api, r, p),
            });
            Ok::<_, WorldError>(from_template(
                template,
                with(facts, common(api, r, &review.reviewer)),
            ))
        })?;
        Ok(self.delivery("pull_request_review", payload))
    }

    /// A `push` delivery for `branch` moving from `before` (`None`: a new branch) to its
    /// current tip, pushed by `pusher` (also the `sender`), with the tip as its one commit.
    /// Template: `push.new-branch.json` for a new branch, else `push.json`; commit objects
    /// take the shape of `push.new-branch.json`'s `head_commit` (`push.json` is a tag
    /// deletion without commits).
    ///
    /// # Errors
    /// [`WorldError::UnknownRepo`]; [`WorldError::UnknownBranch`] when `branch` does not exist.
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
            let created = before.is_none();
            let before = before.map_or_else(|| "0".repeat(40), Sha::to_string);
            let full = repo.to_string();
            let message = r.commits.get(after).map_or("", |c| c.message.as_str());
            let email = format!("{pusher}@users.noreply.example.com");
            let person = json!({ "name": pusher, "email": email, "username": pusher });
            let commit = json!({
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
            let commit_shape = Template::PushNewBranch
                .value()
                .get_mut("head_commit")
                .map(Value::take)
                .unwrap_or(Value::Null);
            let commit = {
                let mut c = commit_shape;
                overlay(&mut c, commit);
                c
            };
            let compare = if created {
                format!("{api}/{full}/commit/{after}")
            } else {
                format!(
                    "{api}/{full}/compare/{}...{}",
                    &before[..12],
                    &after.as_str()[..12]
                )
            };
            let mut repository = json::repository(api, repo, Some(r));
            let seconds = s.now_ms() / 1000;
            let stamp = crate::world::CLOCK_START_MS / 1000;
            if let Some(o) = repository.as_object_mut() {
                // Push payloads spell these two as Unix seconds (see the template).
                o.insert("created_at".to_owned(), Value::from(stamp));
                o.insert("pushed_at".to_owned(), Value::from(seconds));
                o.insert(
                    "master_branch".to_owned(),
                    Value::from(r.default_branch.clone()),
                );
            }
            if let Some(owner) = repository.get_mut("owner") {
                set(owner, "name", Value::from(repo.owner.clone()));
                set(owner, "email", Value::Null);
            }
            let facts = json!({
                "ref": format!("refs/heads/{branch}"),
                "before": before,
                "after": after.to_string(),
                "created": created,
                "deleted": false,
                "forced": false,
                "base_ref": null,
                "compare": compare,
                "commits": [commit.clone()],
                "head_commit": commit,
                "repository": repository,
                "pusher": { "name": pusher, "email": email },
                "sender": json::user(api, &Login::from(pusher)),
            });
            let template = if created {
                Template::PushNewBranch
            } else {
                Template::Push
            };
            Ok::<_, WorldError>(from_template(template, facts))
        })?;
        Ok(self.delivery("push", payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_github_docs_test_vector_signs() {
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn every_template_is_an_object() {
        assert_eq!(PARSED.len(), TEMPLATES.len());
        for ((name, _), v) in TEMPLATES.iter().zip(PARSED.iter()) {
            assert!(v.is_object(), "{name}");
        }
        assert_eq!(
            Template::PushNewBranch.value()["created"],
            true,
            "Template order matches TEMPLATES"
        );
        assert_eq!(
            Template::ReviewApproved.value()["review"]["state"],
            "approved"
        );
        assert_eq!(
            Template::PrClosedMerged.value()["pull_request"]["merged"],
            true
        );
    }

    #[test]
    fn overlay_keeps_the_template_shape() {
        let mut t = json!({
            "a": 1,
            "vendor_only": "kept",
            "o": { "x": "old", "y": [1] },
            "list": [{ "id": 0, "shape": "vendor" }],
            "gone": { "k": 1 },
            "was_null": null,
        });
        overlay(
            &mut t,
            json!({
                "a": 2,
                "world_only": "dropped",
                "o": { "x": "new" },
                "list": [{ "id": 1 }, { "id": 2 }],
                "gone": null,
                "was_null": { "z": 1 },
            }),
        );
        assert_eq!(
            t,
            json!({
                "a": 2,
                "vendor_only": "kept",
                "o": { "x": "new", "y": [1] },
                "list": [{ "id": 1, "shape": "vendor" }, { "id": 2, "shape": "vendor" }],
                "gone": null,
                "was_null": { "z": 1 },
            })
        );
    }
}
