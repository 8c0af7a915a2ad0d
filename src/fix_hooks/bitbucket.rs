//! The Bitbucket half of `greg fix-hooks` (Cloud and Server/Data Center alike): the provider
//! and the webhook greg wants from `providers.bitbucket`, the configured repositories, and the
//! repair of one repository's hooks through
//! [`BitbucketProvider::{list_hooks, create_hook, update_hook, delete_hook}`](BitbucketProvider).
//!
//! Repositories are `repos[]` entries with `provider: bitbucket`: each exact name in each of
//! `organizations` (Cloud workspaces, Server project keys). greg's Bitbucket client has no
//! call that lists a workspace's or project's repositories, so a `/regex/` name cannot be
//! expanded: it gets a `skipped` row saying so, and its repositories' webhooks are the
//! operator's to add.
//!
//! The webhook ([`HookSpec::greg`]) points at `<url>/repo?provider=bitbucket&token=…`, is
//! active, subscribes to the flavor's events ([`greg_bitbucket::greg_events`]) and carries
//! `webhook_secret` when one is set. Bitbucket never shows a secret back (Cloud has
//! `secret_set` only), so a hook with *a* secret counts as right until `--rotate-secret`.

use super::{Options, Outcome, Plan, Printer, Row, failed, gone_is_fine, hook_url, pretty};
use greg_bitbucket::{
    BitbucketConfig, BitbucketProvider, Flavor, Hook, HookSpec, hooks::HOOK_NAME,
};
use greg_config::{BitbucketFlavor, BitbucketProviderConfig, Config, NamePattern};
use greg_core::RepoName;
use greg_jenkins::{mask_token, unified_diff};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// How a secret that is set shows in diffs (Bitbucket never shows it back).
const MASKED_SECRET: &str = "********";

/// The flavor of `providers.bitbucket` (Greg's entry without `flavor` is Cloud).
pub(crate) fn flavor(b: &BitbucketProviderConfig) -> Flavor {
    match b.flavor {
        BitbucketFlavor::Cloud => Flavor::Cloud,
        BitbucketFlavor::Server => Flavor::Server,
    }
}

/// The Bitbucket provider of `config`, named `bitbucket`, when one is configured. No network
/// access.
pub(crate) fn provider(config: &Config) -> Option<Result<BitbucketProvider, greg_core::Error>> {
    let b = config.providers.bitbucket.as_ref()?;
    Some(BitbucketProvider::new(BitbucketConfig {
        name: BitbucketConfig::DEFAULT_NAME.to_owned(),
        flavor: flavor(b),
        api_url: b.api_url.clone(),
        username: b.username.clone(),
        password: b.password.clone(),
        webhook_secret: b.webhook_secret.clone(),
    }))
}

/// The webhook greg wants on every Bitbucket repository, when `providers.bitbucket` is set.
///
/// Errors: a token-free message when `url` is not an absolute http(s) URL ([`hook_url`]).
pub(crate) fn hook_spec(config: &Config, url: &str) -> Option<Result<HookSpec, String>> {
    let b = config.providers.bitbucket.as_ref()?;
    Some(
        hook_url(url, BitbucketConfig::DEFAULT_NAME, &b.incoming_token)
            .map(|u| HookSpec::greg(flavor(b), u, b.webhook_secret.clone())),
    )
}

/// The exact repositories of every `repos[]` entry on Bitbucket. A `/regex/` name gets a
/// `skipped` row; an entry whose provider cannot be built gets a failed row.
pub(crate) fn configured_repos(
    config: &Config,
    provider: Option<&Result<BitbucketProvider, greg_core::Error>>,
    rows: &mut Vec<Row>,
) -> BTreeSet<RepoName> {
    let mut repos = BTreeSet::new();
    for (i, rc) in config.repos.iter().enumerate() {
        if rc.provider != BitbucketConfig::DEFAULT_NAME {
            continue;
        }
        match provider {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                rows.push(failed("repos", format!("repos[{i}]"), e.to_string()));
                continue;
            }
            None => {
                rows.push(failed(
                    "repos",
                    format!("repos[{i}]"),
                    "providers.bitbucket is not configured".to_owned(),
                ));
                continue;
            }
        }
        for org in &rc.organizations {
            for pattern in &rc.names {
                match pattern {
                    NamePattern::Exact(name) => {
                        repos.insert(RepoName::new(org.as_str(), name.as_str()));
                    }
                    NamePattern::Regex(re) => rows.push(skipped_regex(i, re.as_str(), org)),
                }
            }
        }
    }
    repos
}

/// The row of a `/regex/` name greg cannot expand on Bitbucket.
pub(crate) fn skipped_regex(entry: usize, regex: &str, org: &str) -> Row {
    Row {
        kind: "repos",
        name: format!("repos[{entry}] /{regex}/ in {org}"),
        outcome: Outcome::Skipped,
        detail: SKIPPED_REGEX.to_owned(),
    }
}

/// Why a `/regex/` name is skipped on Bitbucket.
pub(crate) const SKIPPED_REGEX: &str = "greg cannot list the repositories of a Bitbucket \
     workspace or project: name them exactly, or add greg's webhook to each by hand";

/// Makes `repo` carry exactly one greg webhook as `spec` says (see [`Plan`]); with
/// `--dry-run`, prints the diff instead.
pub(crate) async fn fix_hook(
    bb: &BitbucketProvider,
    repo: &RepoName,
    spec: &HookSpec,
    opts: &Options,
    out: &Printer<'_>,
) -> Row {
    let name = format!("{repo} ({})", bb.implementer());
    let hooks = match bb.list_hooks(repo).await {
        Ok(h) => h,
        Err(e) => return failed("hook", name, e.to_string()),
    };
    let ours: Vec<&Hook> = hooks
        .iter()
        .filter(|h| super::is_gregs_hook(&h.url, &spec.url, "bitbucket"))
        .collect();
    let plan = Plan::new(ours, |h| spec.differences(h, opts.rotate_secret));
    let outcome = plan.outcome();
    if outcome == Outcome::Unchanged {
        return Row::unchanged("hook", name);
    }
    if opts.dry_run {
        let before: Vec<Value> = plan.ours.iter().map(|h| shown(h)).collect();
        let after = vec![wanted(spec, plan.keep.map(|k| k.id.as_str()))];
        out.say(&unified_diff(
            &pretty(&before),
            &pretty(&after),
            &format!("{}/{repo}/hooks", bb.implementer()),
        ));
    } else {
        let written = match (plan.keep, plan.update()) {
            (None, _) => bb.create_hook(repo, spec).await.map(|_| ()),
            (Some(_), Some(k)) => bb.update_hook(repo, &k.id, spec).await.map(|_| ()),
            (Some(_), None) => Ok(()),
        };
        if let Err(e) = written {
            return failed("hook", name, e.to_string());
        }
        for h in &plan.duplicates {
            if let Err(e) = gone_is_fine(bb.delete_hook(repo, &h.id).await) {
                return failed("hook", name, format!("deleting duplicate {}: {e}", h.id));
            }
        }
    }
    Row {
        kind: "hook",
        name,
        outcome,
        detail: mask_token(&plan.detail()),
    }
}

/// A hook as Bitbucket shows it, for diffs (the URL still carries its token: diffs mask it).
fn shown(hook: &Hook) -> Value {
    display(
        Some(&hook.id),
        &hook.name,
        &hook.url,
        &hook.events,
        hook.active,
        hook.secret_set,
    )
}

/// The hook greg writes, as Bitbucket would then show it.
fn wanted(spec: &HookSpec, id: Option<&str>) -> Value {
    display(
        id,
        HOOK_NAME,
        &spec.url,
        &spec.events,
        true,
        spec.secret.is_some(),
    )
}

fn display(
    id: Option<&str>,
    name: &str,
    url: &str,
    events: &[String],
    active: bool,
    secret: bool,
) -> Value {
    let mut events = events.to_vec();
    events.sort_unstable();
    let mut v = json!({
        "name": name,
        "url": url,
        "events": events,
        "active": active,
        "secret": if secret { Value::from(MASKED_SECRET) } else { Value::Null },
    });
    if let (Some(id), Some(map)) = (id, v.as_object_mut()) {
        map.insert("id".to_owned(), Value::from(id));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use greg_core::Secret;

    #[test]
    fn a_wanted_hook_shows_its_secret_masked_and_events_sorted() {
        let spec = HookSpec::greg(
            Flavor::Server,
            "https://g.example.com/repo?provider=bitbucket&token=t0k",
            Some(Secret::new("s3cret")),
        );
        let shown = wanted(&spec, Some("7"));
        let text = shown.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(shown["secret"], MASKED_SECRET);
        assert_eq!(shown["id"], "7");
        assert_eq!(shown["events"][0], "pr:comment:added");
        let diff = unified_diff("[]\n", &pretty(&[shown]), "x");
        assert!(!diff.contains("t0k"), "{diff}");
    }
}
