//! `greg fix-hooks` and `greg check-config` on Bitbucket Cloud and Bitbucket Server, run as
//! the real binary against the fake of each flavor: a fresh repository gets one greg webhook
//! and a second run changes nothing, a stale hook is updated and a duplicate deleted,
//! `--rotate-secret` rewrites a secret greg cannot read back, `--dry-run` shows a masked diff
//! and changes nothing, `/regex/` names are skipped with their reason, check-config reports
//! credentials and each repository, GitHub and Bitbucket entries are wired side by side, and
//! no secret is ever printed.

use greg_bitbucket::{Flavor as BbFlavor, greg_events};
use greg_core::RepoName;
use greg_testkit::{
    BbHook, Bitbucket, BitbucketFlavor as Flavor, FakeBitbucketCloud, FakeBitbucketServer,
    FakeGithub, World,
};
use std::path::PathBuf;
use std::process::Command;

const API_PASSWORD: &str = "bb-api-s3cret";
const INCOMING: &str = "bb-incoming-s3cret";
const HOOK_SECRET: &str = "bb-hook-hmac-s3cret";
const GH_TOKEN: &str = "gh-api-s3cret";
const GH_INCOMING: &str = "gh-incoming-s3cret";
/// Nothing listens on port 9 of loopback: greg is "not running" there, with no DNS lookup.
const GREG_URL: &str = "http://127.0.0.1:9";
const FLAVORS: [Flavor; 2] = [Flavor::Cloud, Flavor::Server];

/// A fake Bitbucket of one flavor with the repositories `widgets`, `gadgets` and `other` in
/// one workspace (Cloud `acme`) or project (Server `ACME`), accepting [`API_PASSWORD`] only.
struct Setup {
    flavor: Flavor,
    world: World,
    bb: Bitbucket,
    api_url: String,
    org: &'static str,
    dir: tempfile::TempDir,
    _fake: Box<dyn std::any::Any>,
}

fn setup(flavor: Flavor) -> anyhow::Result<Setup> {
    let world = World::new("greg-bot");
    let (fake, api_url, org): (Box<dyn std::any::Any>, _, _) = match flavor {
        Flavor::Cloud => {
            let f = FakeBitbucketCloud::start(world.clone())?;
            let url = f.url.clone();
            (Box::new(f), url, "acme")
        }
        Flavor::Server => {
            let f = FakeBitbucketServer::start(world.clone())?;
            let url = f.url.clone();
            (Box::new(f), url, "ACME")
        }
    };
    let bb = world.bitbucket();
    bb.set_password(Some(API_PASSWORD));
    let s = Setup {
        flavor,
        world,
        bb,
        api_url,
        org,
        dir: tempfile::tempdir()?,
        _fake: fake,
    };
    for name in ["widgets", "gadgets", "other"] {
        s.bb.create_repo(&s.repo(name))?;
    }
    Ok(s)
}

impl Setup {
    fn repo(&self, name: &str) -> RepoName {
        RepoName::new(self.org, name)
    }

    fn flavor_name(&self) -> &'static str {
        match self.flavor {
            Flavor::Cloud => "cloud",
            Flavor::Server => "server",
        }
    }

    /// `bitbucket-cloud` or `bitbucket-server`, as greg names the provider in its output.
    fn implementer(&self) -> String {
        format!("bitbucket-{}", self.flavor_name())
    }

    fn events(&self) -> Vec<String> {
        let flavor = match self.flavor {
            Flavor::Cloud => BbFlavor::Cloud,
            Flavor::Server => BbFlavor::Server,
        };
        let mut events: Vec<String> = greg_events(flavor)
            .iter()
            .map(|e| (*e).to_owned())
            .collect();
        events.sort();
        events
    }

    /// Writes config.yaml: `providers.bitbucket` of this flavor (with `password`), one
    /// `repos[]` entry naming `names`, and `extra` appended to the file.
    fn config(&self, password: &str, names: &str, extra: &str) -> anyhow::Result<String> {
        let yaml = format!(
            r#"server:
  listen: 127.0.0.1:0
  public_url: {GREG_URL}
providers:
  bitbucket:
    flavor: {flavor}
    username: greg-bot
    password: {password}
    incoming_token: {INCOMING}
    webhook_secret: "{HOOK_SECRET}"
    source: "git@bitbucket.example.com:"
    api_url: {api_url}
repos:
  - provider: bitbucket
    organizations: ["{org}"]
    names: {names}
{extra}"#,
            flavor = self.flavor_name(),
            api_url = self.api_url,
            org = self.org,
        );
        let path: PathBuf = self.dir.path().join("config.yaml");
        std::fs::write(&path, yaml)?;
        Ok(path.to_string_lossy().into_owned())
    }

    /// The number of requests that could change something (not `GET`).
    fn writes(&self) -> usize {
        self.bb
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .count()
    }

    fn hooks(&self, name: &str) -> Vec<BbHook> {
        self.bb.hooks(&self.repo(name))
    }

    /// Asserts that `hook` is greg's webhook as configured.
    fn assert_greg_hook(&self, hook: &BbHook) {
        let flavor = self.flavor_name();
        assert_eq!(hook.url, hook_url(), "{flavor}");
        assert_eq!(hook.secret.as_deref(), Some(HOOK_SECRET), "{flavor}");
        assert!(hook.active, "{flavor}");
        assert_eq!(hook.name, "greg", "{flavor}");
        let mut events = hook.events.clone();
        events.sort();
        assert_eq!(events, self.events(), "{flavor}");
    }
}

fn hook_url() -> String {
    format!("{GREG_URL}/repo?provider=bitbucket&token={INCOMING}")
}

/// Runs greg with `args` and debug logs on; returns (exit code, stdout + stderr, logs
/// included, so [`assert_no_secret`] checks the logs too).
fn greg(args: &[&str]) -> anyhow::Result<(i32, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_greg"))
        .args(args)
        .env_remove("GREG_CONFIG")
        .env("RUST_LOG", "debug")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

fn assert_no_secret(output: &str) {
    for secret in [API_PASSWORD, INCOMING, HOOK_SECRET, GH_TOKEN, GH_INCOMING] {
        assert!(!output.contains(secret), "{secret} printed:\n{output}");
    }
}

#[test]
fn a_fresh_repository_gets_one_hook_and_a_second_run_changes_nothing() -> anyhow::Result<()> {
    for flavor in FLAVORS {
        let s = setup(flavor)?;
        let foreign = s.bb.add_hook(
            &s.repo("widgets"),
            "https://ci.example.org/hook",
            &["repo:push"],
            None,
        )?;
        let config = s.config(API_PASSWORD, "[widgets, gadgets]", "")?;

        let (code, out) = greg(&["fix-hooks", "--config", &config])?;
        assert_eq!(code, 0, "{out}");
        assert_no_secret(&out);
        assert!(
            out.contains("2 created, 0 updated, 0 unchanged, 0 failed"),
            "{out}"
        );
        assert!(
            out.contains(&format!("{}/widgets ({})", s.org, s.implementer())),
            "{out}"
        );
        for name in ["widgets", "gadgets"] {
            let ours: Vec<BbHook> = s
                .hooks(name)
                .into_iter()
                .filter(|h| h.url.starts_with(GREG_URL))
                .collect();
            assert_eq!(ours.len(), 1, "{name}: {ours:?}");
            s.assert_greg_hook(&ours[0]);
        }
        assert_eq!(s.hooks("widgets")[0], foreign, "the foreign hook changed");
        assert!(s.hooks("other").is_empty());

        let writes = s.writes();
        let (code, out) = greg(&["fix-hooks", "--config", &config])?;
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("0 created, 0 updated, 2 unchanged, 0 failed"),
            "{out}"
        );
        assert_eq!(s.writes(), writes, "{flavor:?}: the second run wrote");
    }
    Ok(())
}

#[test]
fn a_stale_hook_is_updated_and_a_duplicate_deleted() -> anyhow::Result<()> {
    for flavor in FLAVORS {
        let s = setup(flavor)?;
        let widgets = s.repo("widgets");
        let push = match flavor {
            Flavor::Cloud => "repo:push",
            Flavor::Server => "repo:refs_changed",
        };
        // greg's origin, an old path and token, one event, no secret.
        let stale = s.bb.add_hook(
            &widgets,
            &format!("{GREG_URL}/old-path?token=stale"),
            &[push],
            None,
        )?;
        let duplicate = s.bb.add_hook(
            &widgets,
            &format!("{GREG_URL}/repo?provider=bitbucket&token=older"),
            &[push],
            Some("a-stale-secret"),
        )?;
        let foreign =
            s.bb.add_hook(&widgets, "https://ci.example.org/hook", &[push], None)?;
        let config = s.config(API_PASSWORD, "[widgets]", "")?;

        let (code, out) = greg(&["fix-hooks", "--config", &config])?;
        assert_eq!(code, 0, "{out}");
        assert_no_secret(&out);
        assert!(
            out.contains("set url, events, secret; deleted 1 duplicate(s)"),
            "{out}"
        );
        assert!(out.contains("0 created, 1 updated"), "{out}");
        let hooks = s.hooks("widgets");
        assert_eq!(hooks.len(), 2, "{hooks:?}");
        assert_eq!(hooks[0].id, stale.id, "the stale hook is kept, in place");
        s.assert_greg_hook(&hooks[0]);
        assert_eq!(hooks[1], foreign);
        assert!(!hooks.iter().any(|h| h.id == duplicate.id));
    }
    Ok(())
}

#[test]
fn a_greg_hook_on_an_old_host_is_updated_not_duplicated() -> anyhow::Result<()> {
    for flavor in FLAVORS {
        let s = setup(flavor)?;
        let widgets = s.repo("widgets");
        let push = match flavor {
            Flavor::Cloud => "repo:push",
            Flavor::Server => "repo:refs_changed",
        };
        // greg moved hosts: its old hook has greg's path and provider, another host and token.
        let old = s.bb.add_hook(
            &widgets,
            "https://old-greg.example.com/repo?provider=bitbucket&token=old-token",
            &[push],
            None,
        )?;
        let config = s.config(API_PASSWORD, "[widgets]", "")?;
        let (code, out) = greg(&["fix-hooks", "--config", &config])?;
        assert_eq!(code, 0, "{out}");
        assert_no_secret(&out);
        assert!(out.contains("0 created, 1 updated"), "{out}");
        let hooks = s.hooks("widgets");
        assert_eq!(hooks.len(), 1, "one greg hook, not two: {hooks:?}");
        assert_eq!(hooks[0].id, old.id, "the old hook is kept, in place");
        s.assert_greg_hook(&hooks[0]);
    }
    Ok(())
}

#[test]
fn rotate_secret_rewrites_a_secret_greg_cannot_read_back() -> anyhow::Result<()> {
    for flavor in FLAVORS {
        let s = setup(flavor)?;
        let events = s.events();
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        let planted = s.bb.add_hook(
            &s.repo("widgets"),
            &hook_url(),
            &events,
            Some("an-old-secret"),
        )?;
        let config = s.config(API_PASSWORD, "[widgets]", "")?;

        let (code, out) = greg(&["fix-hooks", "--config", &config])?;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("0 created, 0 updated, 1 unchanged"), "{out}");
        assert_eq!(
            s.hooks("widgets")[0].secret.as_deref(),
            Some("an-old-secret")
        );

        let (code, out) = greg(&["fix-hooks", "--rotate-secret", "--config", &config])?;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("set secret"), "{out}");
        assert_no_secret(&out);
        assert!(!out.contains("an-old-secret"), "{out}");
        let hooks = s.hooks("widgets");
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].id, planted.id);
        assert_eq!(hooks[0].secret.as_deref(), Some(HOOK_SECRET));
    }
    Ok(())
}

#[test]
fn dry_run_shows_a_masked_diff_and_changes_nothing() -> anyhow::Result<()> {
    for flavor in FLAVORS {
        let s = setup(flavor)?;
        s.bb.add_hook(
            &s.repo("widgets"),
            &format!("{GREG_URL}/repo?provider=bitbucket&token=older"),
            &["repo:push"],
            Some("a-stale-secret"),
        )?;
        let before = (s.hooks("widgets"), s.hooks("gadgets"));
        let config = s.config(API_PASSWORD, "[widgets, gadgets]", "")?;

        let (code, out) = greg(&["fix-hooks", "--dry-run", "--config", &config])?;
        assert_eq!(code, 0, "{out}");
        assert_no_secret(&out);
        assert!(!out.contains("a-stale-secret"), "{out}");
        for name in ["widgets", "gadgets"] {
            let header = format!("--- a/{}/{}/{name}/hooks", s.implementer(), s.org);
            assert!(out.contains(&header), "{header}:\n{out}");
        }
        assert!(out.contains("token=***"), "{out}");
        assert!(out.contains("\"secret\": \"********\""), "{out}");
        assert!(
            out.contains("1 would create, 1 would update, 0 unchanged, 0 failed (dry run"),
            "{out}"
        );
        assert_eq!(s.writes(), 0, "{flavor:?}: the dry run wrote");
        assert_eq!((s.hooks("widgets"), s.hooks("gadgets")), before);
    }
    Ok(())
}

#[test]
fn regex_names_are_skipped_with_their_reason() -> anyhow::Result<()> {
    for flavor in FLAVORS {
        let s = setup(flavor)?;
        let config = s.config(API_PASSWORD, "[widgets, \"/^gad/\"]", "")?;

        let (code, out) = greg(&["fix-hooks", "--config", &config])?;
        assert_eq!(code, 0, "{out}");
        let row = format!("repos repos[0] /^gad/ in {} ", s.org);
        assert!(
            out.lines()
                .any(|l| l.starts_with(&row) && l.contains(" skipped ")),
            "{row}:\n{out}"
        );
        assert!(
            out.contains("greg cannot list the repositories of a Bitbucket workspace or project"),
            "{out}"
        );
        assert!(
            out.contains("1 created, 0 updated, 0 unchanged, 1 skipped, 0 failed"),
            "{out}"
        );
        assert!(s.hooks("gadgets").is_empty());

        let (_, out) = greg(&["check-config", "--config", &config])?;
        let line = format!(
            "SKIP {}: repos[0] /^gad/ in {}: greg cannot list",
            s.implementer(),
            s.org
        );
        assert!(out.contains(&line), "{line}:\n{out}");
    }
    Ok(())
}

#[test]
fn refused_credentials_fail_the_run_and_name_no_secret() -> anyhow::Result<()> {
    for flavor in FLAVORS {
        let s = setup(flavor)?;
        let config = s.config("a-wrong-password", "[widgets]", "")?;
        let (code, out) = greg(&["fix-hooks", "--config", &config])?;
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("FAILED"), "{out}");
        assert!(out.contains("unauthenticated"), "{out}");
        assert!(!out.contains("a-wrong-password"), "{out}");
        assert_no_secret(&out);
        assert_eq!(s.writes(), 0);
    }
    Ok(())
}

#[test]
fn check_config_reports_credentials_and_each_repository() -> anyhow::Result<()> {
    for flavor in FLAVORS {
        let s = setup(flavor)?;
        let name = s.implementer();
        let config = s.config(API_PASSWORD, "[widgets, missing]", "")?;
        let (code, out) = greg(&["check-config", "--config", &config])?;
        // greg itself is not running at GREG_URL, and one repository is missing.
        assert_eq!(code, 1, "{out}");
        assert_no_secret(&out);
        let credentials = match flavor {
            Flavor::Cloud => format!("OK   {name}: credentials accepted (account "),
            Flavor::Server => format!("OK   {name}: credentials accepted (user greg-bot)"),
        };
        assert!(out.contains(&credentials), "{credentials}:\n{out}");
        let line = format!("OK   {name}: repository {}/widgets\n", s.org);
        assert!(out.contains(&line), "{line}:\n{out}");
        let line = format!(
            "FAIL {name}: repository {}/missing: not found, or the credentials cannot see it",
            s.org
        );
        assert!(out.contains(&line), "{line}:\n{out}");
        assert!(!out.contains("not wired"), "{out}");

        // Refused credentials: one FAIL line, and no repository probed after it.
        let config = s.config("a-wrong-password", "[widgets, missing]", "")?;
        let (code, out) = greg(&["check-config", "--config", &config])?;
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains(&format!("FAIL {name}: credentials: unauthenticated")),
            "{out}"
        );
        assert!(!out.contains(": repository "), "{out}");
        assert!(!out.contains("a-wrong-password"), "{out}");
        assert_no_secret(&out);
    }
    Ok(())
}

#[test]
fn github_and_bitbucket_are_wired_side_by_side() -> anyhow::Result<()> {
    let s = setup(Flavor::Server)?;
    s.world
        .update(|st| st.github.token = Some(GH_TOKEN.to_owned()));
    let github = FakeGithub::start(s.world.clone())?;
    let gh_repo = RepoName::new("acme", "widgets");
    s.world.create_repo(&gh_repo)?;
    let config = s.config(API_PASSWORD, "[widgets]", "")?;
    let yaml = std::fs::read_to_string(&config)?
        .replace(
            "providers:\n",
            &format!(
                "providers:\n  github:\n    username: greg-bot\n    password: {GH_TOKEN}\n    \
                 incoming_token: {GH_INCOMING}\n    source: \"git@github.com:\"\n    \
                 api_url: {}\n",
                github.url
            ),
        )
        .replace(
            "repos:\n",
            "repos:\n  - provider: github\n    organizations: [acme]\n    names: [widgets]\n",
        );
    std::fs::write(&config, yaml)?;

    let (code, out) = greg(&["fix-hooks", "--config", &config])?;
    assert_eq!(code, 0, "{out}");
    assert_no_secret(&out);
    assert!(
        out.contains("2 created, 0 updated, 0 unchanged, 0 failed"),
        "{out}"
    );
    let gh_hooks = s.world.hooks(&gh_repo);
    assert_eq!(gh_hooks.len(), 1);
    assert_eq!(
        gh_hooks[0].url,
        format!("{GREG_URL}/repo?provider=github&token={GH_INCOMING}")
    );
    let bb_hooks = s.hooks("widgets");
    assert_eq!(bb_hooks.len(), 1);
    s.assert_greg_hook(&bb_hooks[0]);

    let (code, out) = greg(&["check-config", "--config", &config])?;
    assert!(
        out.contains("OK   github: repository acme/widgets"),
        "{out}"
    );
    assert!(
        out.contains("OK   bitbucket-server: repository ACME/widgets"),
        "{out}"
    );
    assert_eq!(code, 1, "greg itself is not running:\n{out}");
    Ok(())
}
