//! Webhook deliveries GitHub recorded for greg's repository webhook, and redeliveries (SPEC
//! §11: deliveries that failed while greg was down are asked for again).
//!
//! - Which hook: `GET /repos/{owner}/{repo}/hooks` (all pages), the first whose `config.url`
//!   starts with greg's `/repo` URL.
//! - Its deliveries: `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries?per_page=100`,
//!   newest first, paged by the `cursor` of the `Link` header's `rel="next"` entry; items are
//!   `hook-delivery-item`s
//!   (<https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook>).
//! - A redelivery: `POST .../hooks/{hook_id}/deliveries/{delivery_id}/attempts`, 202
//!   (<https://docs.github.com/en/rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook>).
//!
//! Both need admin rights on the repository (GitHub answers 404 without them).

use crate::client::{GithubProvider, decode, protocol};
use crate::routes::{self, MAX_PAGES};
use greg_core::{Error, RepoName, Result, WebhookDelivery};
use http::Method;
use serde::Deserialize;

/// An item of `GET .../hooks/{hook_id}/deliveries` (`hook-delivery-item`; the fields greg
/// reads).
#[derive(Debug, Deserialize)]
struct WireDelivery {
    id: u64,
    guid: String,
    /// ISO 8601, e.g. `2021-05-12T20:33:44Z`.
    delivered_at: String,
    redelivery: bool,
    /// 0 when GitHub could not connect.
    status_code: u16,
    event: String,
}

impl WireDelivery {
    fn into_core(self, what: &str, hook_id: u64) -> Result<WebhookDelivery> {
        let delivered_ms = parse_iso8601_ms(&self.delivered_at).ok_or_else(|| {
            protocol(
                what,
                &format!(
                    "delivered_at {:?} is not an ISO 8601 time",
                    crate::error::one_line(&self.delivered_at)
                ),
            )
        })?;
        Ok(WebhookDelivery {
            hook_id,
            id: self.id,
            guid: self.guid,
            event: self.event,
            status_code: self.status_code,
            delivered_ms,
            redelivery: self.redelivery,
        })
    }
}

impl GithubProvider {
    /// See [`greg_core::Provider::webhook_deliveries`].
    pub(crate) async fn list_webhook_deliveries(
        &self,
        repo: &RepoName,
        url: &str,
    ) -> Result<Vec<WebhookDelivery>> {
        // The URL may carry greg's token: it never goes into a message.
        let hook = self
            .list_hooks(repo)
            .await?
            .into_iter()
            .find(|h| h.url.starts_with(url))
            .ok_or_else(|| Error::NotFound {
                what: format!("greg's webhook on {repo}"),
            })?;
        let what = format!("deliveries of webhook {} of {repo}", hook.id);
        let mut deliveries = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let path = routes::hook_deliveries(repo, hook.id, cursor.as_deref());
            let reply = self.send(&what, Method::GET, &path, None::<&()>).await?;
            let items: Vec<WireDelivery> = decode(&what, &reply.body)?;
            let on_page = items.len();
            for item in items {
                deliveries.push(item.into_core(&what, hook.id)?);
            }
            cursor = routes::next_cursor(reply.link());
            if on_page == 0 || cursor.is_none() {
                return Ok(deliveries);
            }
        }
        Err(protocol(&what, &format!("more than {MAX_PAGES} pages")))
    }

    /// See [`greg_core::Provider::redeliver_webhook`].
    pub(crate) async fn redeliver(
        &self,
        repo: &RepoName,
        hook_id: u64,
        delivery_id: u64,
    ) -> Result<()> {
        let what = format!("redelivery of delivery {delivery_id} of webhook {hook_id} of {repo}");
        self.send(
            &what,
            Method::POST,
            &routes::redeliver(repo, hook_id, delivery_id),
            None::<&()>,
        )
        .await?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch of an ISO 8601 / RFC 3339 time as GitHub writes them:
/// `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or `±HH:MM`. `None` for anything else.
pub(crate) fn parse_iso8601_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let (clock, offset_secs) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (clock, zone) = rest.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone.get(1..)?.split_once(':')?;
        let zone_secs = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
        (clock, sign * zone_secs)
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.splitn(3, ':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: i64 = t.next()?.parse().ok()?;
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return None;
    }
    let millis: i64 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_as_github_writes_them() {
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:00Z"), Some(0));
        // GitHub's own example (`hook-delivery-items`).
        assert_eq!(
            parse_iso8601_ms("2019-06-03T00:57:16Z"),
            Some(1_559_523_436_000)
        );
        assert_eq!(
            parse_iso8601_ms("2024-01-01T00:00:01.5Z"),
            Some(1_704_067_201_500)
        );
        assert_eq!(
            parse_iso8601_ms("2024-01-01T02:00:00+02:00"),
            Some(1_704_067_200_000)
        );
        assert_eq!(
            parse_iso8601_ms("2023-12-31T23:00:00-01:00"),
            Some(1_704_067_200_000)
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-01-01",
            "2024-01-01T00:00:00",
        ] {
            assert_eq!(parse_iso8601_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn githubs_example_items_decode() {
        let example = r#"[{"id":12345678,"guid":"0b989ba4-242f-11e5-81e1-c7b6966d2516","delivered_at":"2019-06-03T00:57:16Z","redelivery":false,"duration":0.27,"status":"OK","status_code":200,"event":"issues","action":"opened","installation_id":123,"repository_id":456,"throttled_at":"2019-06-03T00:57:16Z"},{"id":123456789,"guid":"0b989ba4-242f-11e5-81e1-c7b6966d2516","delivered_at":"2019-06-04T00:57:16Z","redelivery":true,"duration":0.28,"status":"OK","status_code":200,"event":"issues","action":"opened","installation_id":123,"repository_id":456,"throttled_at":null}]"#;
        let items: Vec<WireDelivery> = decode("deliveries", example).expect("decodes");
        let core: Vec<WebhookDelivery> = items
            .into_iter()
            .map(|i| i.into_core("deliveries", 9).expect("core"))
            .collect();
        assert_eq!(
            core[1],
            WebhookDelivery {
                hook_id: 9,
                id: 123_456_789,
                guid: "0b989ba4-242f-11e5-81e1-c7b6966d2516".to_owned(),
                event: "issues".to_owned(),
                status_code: 200,
                delivered_ms: 1_559_609_836_000,
                redelivery: true,
            }
        );
        let bad = WireDelivery {
            id: 1,
            guid: "g".to_owned(),
            delivered_at: "soon".to_owned(),
            redelivery: false,
            status_code: 0,
            event: "push".to_owned(),
        };
        assert!(matches!(
            bad.into_core("deliveries", 9),
            Err(Error::Protocol { .. })
        ));
    }
}
