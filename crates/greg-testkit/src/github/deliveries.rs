//! Webhook deliveries of [`super::FakeGithub`]: the world sends a delivery to a repository
//! webhook and records it ([`World::send_to_hook`], or [`World::record_hook_delivery`] for one
//! a test sent itself), and the two routes greg uses to catch up after an outage
//! (<https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook>,
//! `repos/list-webhook-deliveries` and `repos/redeliver-webhook-delivery` of
//! tests/data/github/openapi-subset.json):
//! - `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries?per_page=&cursor=`: newest first,
//!   `hook-delivery-item` objects, pages chained by an opaque `cursor` in the `Link` header;
//! - `POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts`: 202 `{}`
//!   at once; the fake then re-sends the same payload with the same `X-GitHub-Delivery` GUID
//!   to the hook's URL and records a new delivery with `redelivery: true`.
//!
//! Unknown repositories, hooks and deliveries are GitHub's 404.

use super::json;
use super::routes::not_found;
use crate::http::{Reply, Request};
use crate::webhook::WebhookDelivery;
use crate::world::github::HookDelivery;
use crate::world::{World, WorldError};
use greg_core::RepoName;
use serde_json::{Value, json};

/// Time allowed for greg to answer a delivery (GitHub's own limit is 10 seconds).
const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the fake needs to send to a hook.
struct Target {
    url: String,
    secret: Option<String>,
}

fn target(world: &World, repo: &RepoName, hook_id: u64) -> Result<Target, WorldError> {
    world.read(|s| {
        let r = s.github.repo(repo)?;
        let h = r
            .hooks
            .iter()
            .find(|h| h.id == hook_id)
            .ok_or_else(|| WorldError::Git(format!("no webhook {hook_id} on {repo}")))?;
        Ok(Target {
            url: h.url.clone(),
            secret: h.secret.clone(),
        })
    })
}

/// POSTs `delivery` to `target` with GitHub's headers (`X-GitHub-Hook-ID` = `hook_id`); the
/// status greg answered, 0 when it could not be reached.
async fn post(target: &Target, hook_id: u64, delivery: &WebhookDelivery) -> u16 {
    crate::install_crypto_provider();
    let Ok(client) = reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    else {
        return 0;
    };
    let mut request = client.post(&target.url).body(delivery.body());
    for (name, value) in delivery.headers(target.secret.as_deref()) {
        let value = if name == "x-github-hook-id" {
            hook_id.to_string()
        } else {
            value
        };
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

impl World {
    /// Sends `delivery` to webhook `hook_id` of `repo` as GitHub would (to its URL, signed
    /// with its secret) and records it; returns the status greg answered, 0 when greg could
    /// not be reached.
    ///
    /// # Errors
    /// [`WorldError::UnknownRepo`], or [`WorldError::Git`] for an unknown hook.
    pub async fn send_to_hook(
        &self,
        repo: &RepoName,
        hook_id: u64,
        delivery: &WebhookDelivery,
    ) -> Result<u16, WorldError> {
        let target = target(self, repo, hook_id)?;
        let status = post(&target, hook_id, delivery).await;
        self.record_hook_delivery(repo, hook_id, delivery, status, false)?;
        Ok(status)
    }

    /// Records a delivery of webhook `hook_id` that was sent another way (e.g.
    /// [`crate::GregTester::send`]), with the status greg answered (0: unreachable); returns
    /// the delivery's id.
    ///
    /// # Errors
    /// [`WorldError::UnknownRepo`], or [`WorldError::Git`] for an unknown hook.
    pub fn record_hook_delivery(
        &self,
        repo: &RepoName,
        hook_id: u64,
        delivery: &WebhookDelivery,
        status_code: u16,
        redelivery: bool,
    ) -> Result<u64, WorldError> {
        self.update(|s| {
            let now = s.tick();
            let id = s.github.next_id();
            let r = s.github.repo_mut(repo)?;
            if !r.hooks.iter().any(|h| h.id == hook_id) {
                return Err(WorldError::Git(format!("no webhook {hook_id} on {repo}")));
            }
            r.deliveries.push(HookDelivery {
                id,
                hook_id,
                guid: delivery.delivery_id.clone(),
                event: delivery.event.clone(),
                action: delivery
                    .payload
                    .get("action")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                status_code,
                delivered_ms: now,
                redelivery,
                payload: delivery.payload.clone(),
            });
            Ok(id)
        })
    }

    /// The recorded deliveries of webhook `hook_id` of `repo`, oldest first (empty when
    /// unknown).
    pub fn hook_deliveries(&self, repo: &RepoName, hook_id: u64) -> Vec<HookDelivery> {
        self.read(|s| {
            s.github
                .repos
                .get(repo)
                .map(|r| {
                    r.deliveries
                        .iter()
                        .filter(|d| d.hook_id == hook_id)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        })
    }
}

/// A `hook-delivery-item`.
fn item(repo_id: u64, d: &HookDelivery) -> Value {
    let status = match d.status_code {
        0 => "failed to connect".to_owned(),
        200..=299 => "OK".to_owned(),
        code => format!("Invalid HTTP Response: {code}"),
    };
    json!({
        "id": d.id,
        "guid": d.guid,
        "delivered_at": json::iso8601(d.delivered_ms),
        "redelivery": d.redelivery,
        "duration": 0.01,
        "status": status,
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": null,
        "repository_id": repo_id,
        "throttled_at": null,
    })
}

/// `GET .../hooks/{hook_id}/deliveries`: newest first, `per_page` (default 30, at most 100),
/// `cursor` = `v1_<id>` of the first delivery of the page.
pub(super) fn list(world: &World, repo: &RepoName, hook_id: u64, req: &Request) -> Reply {
    let per_page = req
        .query("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let from = req
        .query("cursor")
        .and_then(|c| c.strip_prefix("v1_"))
        .and_then(|id| id.parse::<u64>().ok());
    world.read(|s| {
        let Some(r) = s.github.repos.get(repo) else {
            return not_found();
        };
        if !r.hooks.iter().any(|h| h.id == hook_id) {
            return not_found();
        }
        let mut newest_first: Vec<&HookDelivery> = r
            .deliveries
            .iter()
            .filter(|d| d.hook_id == hook_id && from.is_none_or(|f| d.id <= f))
            .collect();
        newest_first.sort_by_key(|d| std::cmp::Reverse(d.id));
        let page: Vec<Value> = newest_first
            .iter()
            .take(per_page)
            .map(|d| item(r.id, d))
            .collect();
        let reply = Reply::json(200, &Value::Array(page));
        match newest_first.get(per_page) {
            Some(next) => reply.with_header(
                "link",
                format!(
                    "<{}{}?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
                    s.github.api_url, req.path, next.id
                ),
            ),
            None => reply,
        }
    })
}

/// `POST .../hooks/{hook_id}/deliveries/{delivery_id}/attempts`: 202 `{}`, then the
/// redelivery in the background.
pub(super) fn redeliver(world: &World, repo: &RepoName, hook_id: u64, delivery_id: u64) -> Reply {
    let found = world.read(|s| {
        s.github.repos.get(repo).and_then(|r| {
            r.deliveries
                .iter()
                .find(|d| d.hook_id == hook_id && d.id == delivery_id)
                .cloned()
        })
    });
    let Some(original) = found else {
        return not_found();
    };
    let Ok(target) = target(world, repo, hook_id) else {
        return not_found();
    };
    let world = world.clone();
    let repo = repo.clone();
    actix_web::rt::spawn(async move {
        let delivery = WebhookDelivery {
            event: original.event,
            delivery_id: original.guid,
            payload: original.payload,
        };
        let status = post(&target, hook_id, &delivery).await;
        if let Err(e) = world.record_hook_delivery(&repo, hook_id, &delivery, status, true) {
            tracing::warn!(error = %e, "The fake GitHub could not record a redelivery");
        }
    });
    Reply::json(202, &json!({}))
}
