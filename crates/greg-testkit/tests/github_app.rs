//! GitHub App authentication end to end: greg_github::GithubProvider configured with an app
//! (the TEST-ONLY key of crates/greg-github/tests/data) finds the repository's installation,
//! exchanges its JWT for an installation token, and sets the commit status and posts the
//! comment with that token on the fake GitHub.

mod common;

use common::{repo, start};
use greg_core::{CommitState, CommitStatus, Provider, Secret};
use greg_github::{GithubAppConfig, GithubConfig, GithubProvider};
use greg_testkit::{FakeApp, NewPr, Server, fake_sha};

/// TEST-ONLY RSA key, see crates/greg-github/tests/data/README.md.
const APP_KEY: &str = include_str!("../../greg-github/tests/data/test-only-github-app-key.pem");
const INSTALLATION_TOKEN: &str = "ghs_installation_token";

#[tokio::test]
async fn an_app_sets_statuses_and_comments_with_its_installation_token() {
    let f = start();
    f.world.update(|s| {
        s.github.app = Some(FakeApp {
            id: 4242,
            installation_id: 99,
            token: INSTALLATION_TOKEN.to_owned(),
        });
        s.github.token = Some(INSTALLATION_TOKEN.to_owned());
    });
    let head = fake_sha("app-1");
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", head.clone()))
        .expect("open");
    let mut cfg = GithubConfig::new("greg-app[bot]", Secret::new(""));
    cfg.api_url = f.github.url.clone();
    cfg.app = Some(GithubAppConfig {
        id: 4242,
        private_key: Secret::new(APP_KEY),
        installation_id: None,
    });
    let p = GithubProvider::new(cfg).expect("provider");

    let status = CommitStatus {
        state: CommitState::Pending,
        context: "greg/test".into(),
        description: "Build queued".into(),
        target_url: None,
    };
    p.set_status(&repo(), &head, &status).await.expect("status");
    p.post_comment(&repo(), pr.number, "Not ready to merge")
        .await
        .expect("comment");
    let latest = f
        .world
        .latest_status(&repo(), &head, "greg/test")
        .expect("status");
    assert_eq!(latest.state, CommitState::Pending);

    let calls: Vec<(String, String, u16)> = f
        .world
        .requests()
        .into_iter()
        .filter(|r| r.server == Server::Github)
        .map(|r| (r.method, r.path, r.status))
        .collect();
    let path = |p: &str| p.replace("{repo}", &format!("/repos/{}", repo()));
    assert_eq!(
        calls,
        [
            ("GET".into(), path("{repo}/installation"), 200),
            (
                "POST".into(),
                "/app/installations/99/access_tokens".into(),
                201
            ),
            (
                "POST".into(),
                path(&format!("{{repo}}/statuses/{head}")),
                201
            ),
            (
                "POST".into(),
                path(&format!("{{repo}}/issues/{}/comments", pr.number)),
                201
            ),
        ]
    );
}

#[tokio::test]
async fn an_app_not_accepted_by_github_fails_without_reaching_other_routes() {
    let f = start();
    f.world.update(|s| {
        s.github.app = Some(FakeApp {
            id: 1,
            installation_id: 99,
            token: INSTALLATION_TOKEN.to_owned(),
        });
        s.github.token = Some(INSTALLATION_TOKEN.to_owned());
    });
    let mut cfg = GithubConfig::new("greg-app[bot]", Secret::new(""));
    cfg.api_url = f.github.url.clone();
    cfg.app = Some(GithubAppConfig {
        id: 4242,
        private_key: Secret::new(APP_KEY),
        installation_id: Some(99),
    });
    let p = GithubProvider::new(cfg).expect("provider");
    let status = CommitStatus {
        state: CommitState::Pending,
        context: "greg/test".into(),
        description: "Build queued".into(),
        target_url: None,
    };
    let err = p
        .set_status(&repo(), &fake_sha("app-2"), &status)
        .await
        .expect_err("wrong app id");
    assert!(!err.to_string().contains("PRIVATE"), "{err}");
    let statuses = f
        .world
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/statuses/"))
        .count();
    assert_eq!(statuses, 0);
}
