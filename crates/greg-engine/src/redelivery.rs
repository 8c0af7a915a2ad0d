//! Redelivery of webhooks greg missed (SPEC §11): at start and at each reconciliation, greg
//! asks the provider for the recent deliveries of its webhook (GitHub keeps 3 days), and asks
//! again for each one that never reached greg: greg was down (status 0) or failed (5xx), and
//! the inbox does not hold its GUID. A redelivery arrives as an ordinary webhook on `/repo`;
//! the inbox deduplicates it like any other.
//!
//! Each GUID is asked for at most once per run of greg (a delivery that fails again is not
//! asked for in a loop). Providers without the operation (`NotSupported`, Bitbucket) are
//! skipped silently; a webhook greg may not read (`PermissionDenied`: the token lacks
//! `admin:repo_hook`) or cannot find (`NotFound`) is logged once per repository and run.
//! Deliveries greg answered 4xx were refused on purpose (bad signature, bad input) and are
//! not asked for again.

use crate::Inner;
use greg_core::{Error, RepoName, WebhookDelivery};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// How far back greg looks: GitHub keeps deliveries for 3 days.
const LOOKBACK_MS: i64 = 3 * 24 * 3600 * 1000;

/// What redelivery did during this run of greg.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// GUIDs already asked for.
    asked: Mutex<HashSet<String>>,
    /// Repositories whose missing rights or webhook were logged.
    warned: Mutex<HashSet<String>>,
}

/// Whether greg's answer `status` means the delivery never made it into the inbox for a
/// reason a redelivery can fix: unreachable (0) or a server error (5xx, 503 when the store
/// was down).
fn missed(status: u16) -> bool {
    status == 0 || status >= 500
}

/// The deliveries of `recent` to ask for again at `now_ms`: the latest attempt of each GUID
/// from the last three days that greg missed, unless another attempt of it got through.
fn candidates(recent: &[WebhookDelivery], now_ms: i64) -> Vec<&WebhookDelivery> {
    let mut by_guid: HashMap<&str, Vec<&WebhookDelivery>> = HashMap::new();
    for d in recent
        .iter()
        .filter(|d| d.delivered_ms >= now_ms - LOOKBACK_MS)
    {
        by_guid.entry(d.guid.as_str()).or_default().push(d);
    }
    let mut out: Vec<&WebhookDelivery> = by_guid
        .into_values()
        .filter(|attempts| attempts.iter().all(|d| missed(d.status_code)))
        .filter_map(|attempts| attempts.into_iter().max_by_key(|d| (d.delivered_ms, d.id)))
        .collect();
    out.sort_by_key(|d| (d.delivered_ms, d.id));
    out
}

/// Asks the provider of `repo` to redeliver what greg missed (see the module note).
pub(crate) async fn redeliver_missed(inner: &Inner, repo: &RepoName) {
    let Some(base) = inner.config.server.public_url.as_deref() else {
        return;
    };
    let Some(cfg) = inner
        .config
        .repos
        .iter()
        .find(|r| r.matches(&r.provider, repo))
    else {
        return;
    };
    let Some(provider) = inner.providers.get(&cfg.provider) else {
        return;
    };
    let url = format!("{base}/repo");
    let recent = match provider.webhook_deliveries(repo, &url).await {
        Ok(recent) => recent,
        Err(Error::NotSupported { .. }) => return,
        Err(e @ (Error::PermissionDenied { .. } | Error::NotFound { .. })) => {
            let first = inner
                .redelivery
                .warned
                .lock()
                .map(|mut w| w.insert(repo.to_string().to_lowercase()))
                .unwrap_or(false);
            if first {
                let why = match e {
                    Error::NotFound { .. } => "it has no greg webhook (run greg fix-hooks)",
                    _ => "greg lacks the rights to read its webhook deliveries (admin:repo_hook)",
                };
                tracing::info!(%repo, "Missed webhooks of this repository cannot be redelivered: {why}");
            }
            return;
        }
        Err(e) => {
            tracing::warn!(%repo, error = %e, "Cannot list recent webhook deliveries; the next reconciliation retries");
            return;
        }
    };
    let now = inner.now_ms();
    for d in candidates(&recent, now) {
        let fresh = inner
            .redelivery
            .asked
            .lock()
            .map(|asked| !asked.contains(&d.guid))
            .unwrap_or(false);
        if !fresh {
            continue;
        }
        match inner.store.has_delivery(provider.name(), &d.guid).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "Cannot look a delivery up in the inbox");
                return;
            }
        }
        if let Ok(mut asked) = inner.redelivery.asked.lock() {
            asked.insert(d.guid.clone());
        }
        match provider.redeliver_webhook(repo, d.hook_id, d.id).await {
            Ok(()) => {
                tracing::info!(%repo, guid = %d.guid, event = %d.event, status = d.status_code, "Asked the provider to redeliver a webhook greg missed");
            }
            Err(Error::NotSupported { .. }) => return,
            Err(e) => {
                tracing::warn!(%repo, guid = %d.guid, error = %e, "Could not ask for a redelivery");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: u64, guid: &str, status: u16, at: i64) -> WebhookDelivery {
        WebhookDelivery {
            hook_id: 7,
            id,
            guid: guid.to_owned(),
            event: "issue_comment".to_owned(),
            status_code: status,
            delivered_ms: at,
            redelivery: false,
        }
    }

    #[test]
    fn only_recent_missed_deliveries_are_asked_for_once_each() {
        let now = 10 * 24 * 3600 * 1000;
        let recent = [
            delivery(1, "ok", 202, now - 10),
            delivery(2, "down", 0, now - 20),
            delivery(3, "broken", 503, now - 30),
            delivery(4, "broken", 500, now - 5),
            delivery(5, "refused", 401, now - 40),
            delivery(6, "old", 0, now - LOOKBACK_MS - 1),
            delivery(7, "healed", 502, now - 50),
            delivery(8, "healed", 202, now - 45),
        ];
        let ids: Vec<(u64, &str)> = candidates(&recent, now)
            .iter()
            .map(|d| (d.id, d.guid.as_str()))
            .collect();
        assert_eq!(ids, [(2, "down"), (4, "broken")]);
    }
}
