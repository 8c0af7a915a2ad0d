//! Valid configurations: Greg's original config.yaml read unchanged, the full extended
//! config, and the repository's `config.yaml.example`.

use greg_config::{BitbucketFlavor, Config, MergeMode, NamePattern};
use greg_core::{Login, RepoName};
use std::cell::RefCell;
use std::time::Duration;

const GREG_ORIGINAL: &str = include_str!("data/greg_original.yaml");
const FULL: &str = include_str!("data/full.yaml");
const EXAMPLE: &str = include_str!("../../../config.yaml.example");

/// No environment at all: a Greg file must not need one.
fn no_env(_: &str) -> Option<String> {
    None
}

fn full_env(name: &str) -> Option<String> {
    let value = match name {
        "GITHUB_TOKEN" => "ghp_fulltoken",
        "GREG_INCOMING" => "incoming-from-env",
        "GH_HOOK_SECRET" => "gh-hook-secret",
        "BB_TOKEN" => "bb-token",
        "BB_HOOK_SECRET" => "bb-hook-secret",
        "JENKINS_API_TOKEN" => "jenkins-api-token",
        "JENKINS_INCOMING" => "jenkins-incoming",
        "APPROVALS" => "2",
        "STORE_SECRET" => "store-secret-from-env",
        _ => return None,
    };
    Some(value.to_owned())
}

fn repo(owner: &str, name: &str) -> RepoName {
    RepoName::new(owner, name)
}

fn names(patterns: &[NamePattern]) -> Vec<String> {
    patterns.iter().map(ToString::to_string).collect()
}

#[test]
fn greg_original_config_parses_unchanged() {
    let config = Config::from_yaml_str(GREG_ORIGINAL, &no_env).expect("Greg's config parses");

    // No server section: every default.
    let server = &config.server;
    assert_eq!(server.listen, "127.0.0.1:8080");
    assert_eq!(server.public_url, None);
    assert_eq!(server.database, "sqlite://greg.db");
    assert_eq!(server.bot_name, "greg");
    assert!(!server.unstable_is_success);
    assert_eq!(server.build_poll_after, Duration::from_secs(300));
    assert_eq!(server.build_timeout, Duration::from_secs(7200));

    let github = config.providers.github.as_ref().expect("github");
    assert_eq!(github.username, "acme-greg");
    assert_eq!(
        github.password.expose(),
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(github.incoming_token.expose(), "9f8e7d6c5b4a");
    assert_eq!(github.source, "git@github.com:");
    assert!(github.webhook_secret.is_none());
    assert_eq!(github.api_url, "https://api.github.com");

    let bitbucket = config.providers.bitbucket.as_ref().expect("bitbucket");
    assert_eq!(bitbucket.flavor, BitbucketFlavor::Cloud);
    assert_eq!(bitbucket.password.expose(), "bbAppPassw0rd");
    // PyYAML read an all-digit token as a number; greg reads the text as written.
    assert_eq!(bitbucket.incoming_token.expose(), "1234567890");
    assert_eq!(bitbucket.source, "git@bitbucket.org:");
    assert_eq!(bitbucket.api_url, "https://api.bitbucket.org");

    let jenkins = config.builders.jenkins.as_ref().expect("jenkins");
    assert_eq!(jenkins.url, "http://jenkins.acme.internal:8080");
    assert_eq!(jenkins.username, "greg");
    assert_eq!(
        jenkins.password.expose(),
        "11aa22bb33cc44dd55ee66ff77aa88bb99"
    );
    assert_eq!(jenkins.incoming_token.expose(), "jenkins-to-greg");

    assert_eq!(config.repos.len(), 2);
    let gh = &config.repos[0];
    assert_eq!(gh.provider, "github");
    assert_eq!(gh.organizations, ["acme", "Acme-Labs"]);
    assert_eq!(names(&gh.names), ["website", "/^chef-/"]);
    assert!(matches!(gh.names[1], NamePattern::Regex(_)));
    let test = gh.jobs.test.as_ref().expect("test job");
    assert_eq!(
        (test.name.as_str(), test.builder.as_str()),
        ("acme-test", "jenkins")
    );
    let merge = gh.jobs.merge.as_ref().expect("merge job");
    assert_eq!(merge.name.as_str(), "acme-merge");
    // New keys absent: Greg's behaviour.
    assert_eq!(gh.merge_mode, MergeMode::Builder);
    assert_eq!(gh.target_branches, None);
    assert!(gh.reviewers.is_empty());
    assert_eq!(gh.required_approvals, 1);
    assert!(!gh.allow_forks);
    assert!(gh.comments);
    assert!(gh.report.expect.is_empty());
    assert_eq!(
        config.server.report_retention_days,
        greg_config::DEFAULT_REPORT_RETENTION_DAYS
    );
    assert_eq!(config.server.report_retention_days, 90);
    assert!(config.reports.store.is_none());

    let bb = &config.repos[1];
    assert_eq!(
        bb.jobs.test.as_ref().map(|j| j.name.as_str()),
        Some("bitbucket/test")
    );
    assert_eq!(bb.jobs.merge, None);
}

#[test]
fn greg_original_config_routes_repositories_like_greg() {
    let config = Config::from_yaml_str(GREG_ORIGINAL, &no_env).expect("parses");
    let provider_of = |p: &str, r: &RepoName| config.repo(p, r).map(|c| c.provider.as_str());
    assert_eq!(
        provider_of("github", &repo("acme", "website")),
        Some("github")
    );
    assert_eq!(
        provider_of("github", &repo("acme-labs", "chef-nginx")),
        Some("github")
    );
    assert_eq!(provider_of("github", &repo("acme", "my-chef-nginx")), None);
    assert_eq!(provider_of("github", &repo("other", "website")), None);
    assert_eq!(
        provider_of("bitbucket", &repo("ACME", "anything")),
        Some("bitbucket")
    );
    assert_eq!(
        provider_of("bitbucket", &repo("acme-labs", "website")),
        None
    );
    assert_eq!(
        config
            .providers
            .incoming_token("github")
            .map(|s| s.expose()),
        Some("9f8e7d6c5b4a")
    );
    assert_eq!(
        config.providers.source("bitbucket"),
        Some("git@bitbucket.org:")
    );
    assert_eq!(config.providers.source("gitlab"), None);
    assert_eq!(
        config
            .builders
            .incoming_token("jenkins")
            .map(|s| s.expose()),
        Some("jenkins-to-greg")
    );
    assert_eq!(config.builders.incoming_token("travis"), None);
}

#[test]
fn full_extended_config_parses_every_key() {
    let config = Config::from_yaml_str(FULL, &full_env).expect("full config parses");

    let server = &config.server;
    assert_eq!(server.listen, "0.0.0.0:9090");
    assert_eq!(
        server.public_url.as_deref(),
        Some("https://greg.example.com")
    );
    assert_eq!(server.database, "postgres://greg@db.example.com/greg");
    assert_eq!(server.bot_name, "gatekeeper");
    assert!(server.unstable_is_success);
    assert_eq!(server.build_poll_after, Duration::from_secs(120));
    assert_eq!(server.build_timeout, Duration::from_secs(3600));

    let github = config.providers.github.as_ref().expect("github");
    assert_eq!(github.password.expose(), "ghp_fulltoken");
    assert_eq!(github.incoming_token.expose(), "incoming-from-env");
    assert_eq!(
        github.webhook_secret.as_ref().map(|s| s.expose()),
        Some("gh-hook-secret")
    );
    assert_eq!(github.source, "git@github.example.com:");
    assert_eq!(github.api_url, "https://github.example.com/api/v3");

    let bitbucket = config.providers.bitbucket.as_ref().expect("bitbucket");
    assert_eq!(bitbucket.flavor, BitbucketFlavor::Server);
    // Expansion inside a longer string.
    assert_eq!(bitbucket.password.expose(), "Bearer bb-token");
    assert_eq!(bitbucket.incoming_token.expose(), "bb-incoming-from-env");
    assert_eq!(
        bitbucket.webhook_secret.as_ref().map(|s| s.expose()),
        Some("bb-hook-secret")
    );
    assert_eq!(bitbucket.source, "ssh://git@bitbucket.example.com:7999/");
    assert_eq!(bitbucket.api_url, "https://bitbucket.example.com");

    let jenkins = config.builders.jenkins.as_ref().expect("jenkins");
    assert_eq!(jenkins.url, "https://ci.example.com/jenkins");
    assert_eq!(jenkins.password.expose(), "jenkins-api-token");
    assert_eq!(jenkins.incoming_token.expose(), "jenkins-incoming");

    let demo = &config.repos[0];
    assert_eq!(demo.merge_mode, MergeMode::Staging);
    assert_eq!(
        demo.target_branches.as_deref(),
        Some(&["master".to_owned(), "release".to_owned()][..])
    );
    assert_eq!(demo.reviewers, [Login::from("alice"), Login::from("bob")]);
    assert_eq!(demo.reviewers[1].as_str(), "bob");
    assert_eq!(demo.required_approvals, 2);
    assert!(demo.allow_forks);
    assert!(!demo.comments);
    assert_eq!(
        demo.merge_queue,
        greg_config::MergeQueueConfig {
            batch_size: 4,
            window: 8,
            adaptive: true,
            window_min: 2,
            optimistic: true,
        }
    );
    assert_eq!(
        demo.jobs.merge.as_ref().map(|j| j.name.as_str()),
        Some("folder/demo-merge")
    );
    assert!(demo.target_allowed("release"));
    assert!(!demo.target_allowed("feature"));
    assert_eq!(
        demo.report.expect,
        ["unit", "lint", "folder/integration tests"]
    );
    assert_eq!(server.report_retention_days, 30);
    let store = config.reports.store.as_ref().expect("reports.store");
    assert_eq!(store.api, greg_config::ReportStoreApi::S3);
    assert_eq!(store.api.to_string(), "s3");
    assert_eq!(
        store.endpoint.as_deref(),
        Some("http://minio.example.com:9000")
    );
    assert_eq!(store.identity.as_deref(), Some("AKIAEXAMPLE"));
    assert_eq!(
        store.secret.as_ref().map(|s| s.expose()),
        Some("store-secret-from-env")
    );
    assert_eq!(store.bucket, "greg-reports");
    assert_eq!(store.region.as_deref(), Some("eu-west-1"));
    assert_eq!(store.prefix, "greg/reports");
    assert_eq!(
        store.public_url.as_deref(),
        Some("https://reports.example.com")
    );
    assert_eq!(store.retention_days, 45);

    let api = &config.repos[1];
    assert_eq!(api.jobs.test, None);
    assert_eq!(api.report, greg_config::ReportConfig::default());
    // Absent: the serial queue of bors.
    assert_eq!(api.merge_queue, greg_config::MergeQueueConfig::default());
    assert!(!api.merge_queue.is_parallel());
    assert_eq!(
        config
            .repo("bitbucket", &repo("proj", "api"))
            .map(|r| r.provider.as_str()),
        Some("bitbucket")
    );
}

#[test]
fn env_is_asked_once_per_referenced_variable_and_for_nothing_else() {
    let asked = RefCell::new(Vec::new());
    let env = |name: &str| {
        asked.borrow_mut().push(name.to_owned());
        full_env(name)
    };
    Config::from_yaml_str(FULL, &env).expect("parses");
    let mut asked = asked.into_inner();
    asked.sort();
    assert_eq!(
        asked,
        [
            "APPROVALS",
            "BB_HOOK_SECRET",
            "BB_TOKEN",
            "GH_HOOK_SECRET",
            "GITHUB_TOKEN",
            "GREG_INCOMING",
            "JENKINS_API_TOKEN",
            "JENKINS_INCOMING",
            "STORE_SECRET"
        ]
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let config = Config::from_yaml_str(FULL, &full_env).expect("parses");
    let debug = format!("{config:?}");
    for secret in [
        "ghp_fulltoken",
        "incoming-from-env",
        "gh-hook-secret",
        "bb-token",
        "bb-hook-secret",
        "jenkins-api-token",
        "jenkins-incoming",
        "store-secret-from-env",
    ] {
        assert!(
            !debug.contains(secret),
            "{secret} leaked into Debug: {debug}"
        );
    }
    assert!(debug.contains("Secret(***)"));
    let greg = Config::from_yaml_str(GREG_ORIGINAL, &no_env).expect("parses");
    assert!(!format!("{greg:?}").contains("0123456789abcdef"));
}

#[test]
fn dollar_escapes_and_lone_dollars_survive() {
    let yaml = r#"
providers:
  github:
    username: greg
    password: pa$word$$${X}
    incoming_token: $${NOT_A_VAR}
    source: "git@github.com:"
"#;
    let env = |name: &str| (name == "X").then(|| "x".to_owned());
    let config = Config::from_yaml_str(yaml, &env).expect("parses");
    let github = config.providers.github.expect("github");
    assert_eq!(github.password.expose(), "pa$word$x");
    assert_eq!(github.incoming_token.expose(), "${NOT_A_VAR}");
}

#[test]
fn example_config_parses_with_its_variables_supplied() {
    let env = |name: &str| Some(format!("example-{}", name.to_ascii_lowercase()));
    let config = Config::from_yaml_str(EXAMPLE, &env).expect("config.yaml.example parses");
    assert!(config.providers.github.is_some());
    assert!(config.providers.bitbucket.is_some());
    assert!(config.builders.jenkins.is_some());
    assert!(!config.repos.is_empty());
    let github = config.providers.github.as_ref().expect("github");
    assert!(github.password.expose().starts_with("example-"));
    // The example documents the defaults: spelling them out changes nothing.
    let server = &config.server;
    assert_eq!(server.listen, greg_config::DEFAULT_LISTEN);
    assert_eq!(server.database, greg_config::DEFAULT_DATABASE);
    assert_eq!(server.bot_name, greg_config::DEFAULT_BOT_NAME);
    assert_eq!(
        server.build_poll_after,
        greg_config::DEFAULT_BUILD_POLL_AFTER
    );
    assert_eq!(server.build_timeout, greg_config::DEFAULT_BUILD_TIMEOUT);
}

#[test]
fn example_config_needs_its_variables() {
    let err = Config::from_yaml_str(EXAMPLE, &no_env).expect_err("variables are unset");
    assert_eq!(err.kind, greg_config::ConfigErrorKind::UnsetVariable);
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = std::env::temp_dir().join(format!("greg-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.yaml");
    std::fs::write(&good, GREG_ORIGINAL).expect("write");
    let config = Config::load(&good).expect("loads");
    assert_eq!(config.repos.len(), 2);

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "server:\n  listne: x\nproviders: {}\n").expect("write");
    let err = Config::load(&bad).expect_err("unknown key");
    assert_eq!(err.file, bad.display().to_string());
    assert!(
        err.to_string()
            .starts_with(&format!("{} line 2: ", bad.display()))
    );

    let missing = dir.join("missing.yaml");
    let err = Config::load(&missing).expect_err("no file");
    assert_eq!(err.kind, greg_config::ConfigErrorKind::Io);
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read the file: ", missing.display()))
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn anchors_and_aliases_share_values_and_expand_once_each() {
    let yaml = r#"
providers:
  github:
    username: greg
    password: &token ${GITHUB_TOKEN}
    incoming_token: *token
    source: "git@github.com:"
builders:
  jenkins:
    url: https://ci.example.com
    username: greg
    password: ${JENKINS_API_TOKEN}
    incoming_token: j3nk1ns
repos:
  - provider: github
    organizations: &orgs [acme, acme-labs]
    names: [demo]
    jobs: &jobs
      test: {name: shared-test, builder: jenkins}
  - provider: github
    organizations: *orgs
    names: [/^chef-/]
    jobs: *jobs
"#;
    let config = Config::from_yaml_str(yaml, &full_env).expect("parses");
    let github = config.providers.github.as_ref().expect("github");
    assert_eq!(github.incoming_token.expose(), "ghp_fulltoken");
    assert_eq!(config.repos[1].organizations, ["acme", "acme-labs"]);
    assert_eq!(config.repos[1].jobs, config.repos[0].jobs);
}

/// One owner/name under two providers is parsed (fix-hooks may wire both), and reported for
/// `greg serve`, which refuses it; different names, or a regex, are not reported.
#[test]
fn one_repository_name_on_two_providers_is_reported() {
    let yaml = |bb_names: &str| {
        format!(
            r#"providers:
  github: {{username: greg, password: p, incoming_token: t, source: "git@github.com:"}}
  bitbucket: {{username: greg, password: p, incoming_token: t, source: "git@bitbucket.org:"}}
repos:
  - provider: github
    organizations: [acme]
    names: [widgets]
  - provider: bitbucket
    organizations: [ACME]
    names: {bb_names}
"#
        )
    };
    let env = |_: &str| None;
    let both = Config::from_yaml_str(&yaml("[Widgets]"), &env).expect("parses");
    let (key, message) = both.repository_on_two_providers().expect("reported");
    assert_eq!(key, "repos[1].names");
    assert!(
        message.contains("also configured for provider github (repos[0])"),
        "{message}"
    );
    for other in ["[gadgets]", "[\"/^widg/\"]"] {
        let config = Config::from_yaml_str(&yaml(other), &env).expect("parses");
        assert_eq!(config.repository_on_two_providers(), None, "{other}");
    }
}

/// A minimal valid document with `extra` appended, for the report keys.
fn minimal(extra: &str) -> String {
    format!(
        r#"providers:
  github:
    username: greg
    password: p
    incoming_token: t
    source: "git@github.com:"
repos:
  - provider: github
    organizations: [acme]
    names: [demo]
{extra}"#
    )
}

#[test]
fn a_file_store_needs_only_its_folder_and_takes_the_defaults() {
    let yaml = minimal("reports:\n  store:\n    api: file\n    endpoint: /var/lib/greg/reports\n");
    let config = Config::from_yaml_str(&yaml, &no_env).expect("parses");
    let store = config.reports.store.expect("store");
    assert_eq!(store.api, greg_config::ReportStoreApi::File);
    assert_eq!(store.endpoint.as_deref(), Some("/var/lib/greg/reports"));
    assert_eq!(store.bucket, "");
    assert_eq!(store.prefix, "");
    assert_eq!(store.identity, None);
    assert!(store.secret.is_none());
    assert_eq!(store.region, None);
    assert_eq!(store.public_url, None);
    assert_eq!(
        store.retention_days,
        greg_config::DEFAULT_REPORT_STORE_RETENTION_DAYS
    );
    assert_eq!(store.retention_days, 90);
}

#[test]
fn every_store_api_is_read() {
    for (api, extra, expected) in [
        ("s3", "    bucket: b\n", greg_config::ReportStoreApi::S3),
        ("gcs", "    bucket: b\n", greg_config::ReportStoreApi::Gcs),
        (
            "azure",
            "    bucket: c\n    identity: account\n",
            greg_config::ReportStoreApi::Azure,
        ),
        (
            "file",
            "    endpoint: file:///tmp/r\n",
            greg_config::ReportStoreApi::File,
        ),
    ] {
        let yaml = minimal(&format!("reports:\n  store:\n    api: {api}\n{extra}"));
        let config = Config::from_yaml_str(&yaml, &no_env).expect(api);
        assert_eq!(config.reports.store.map(|s| s.api), Some(expected), "{api}");
        assert_eq!(expected.as_str(), api);
    }
    // No store section: no store, and `reports:` alone is fine.
    let config = Config::from_yaml_str(&minimal("reports: {}\n"), &no_env).expect("empty");
    assert!(config.reports.store.is_none());
}

#[test]
fn report_retention_and_expected_jobs_accept_their_limits() {
    let long = "j".repeat(greg_config::MAX_EXPECTED_JOB_CHARS);
    let yaml = format!(
        "server:\n  report_retention_days: 3650\n{}",
        minimal("").replace(
            "names: [demo]\n",
            &format!("names: [demo]\n    report:\n      expect: [{long}, Unit, unit]\n")
        )
    );
    let config = Config::from_yaml_str(&yaml, &no_env).expect("parses");
    assert_eq!(config.server.report_retention_days, 3650);
    // Case matters, as Jenkins job names are case-sensitive.
    assert_eq!(
        config.repos[0].report.expect,
        [long.as_str(), "Unit", "unit"]
    );
    let yaml = minimal("").replace("names: [demo]\n", "names: [demo]\n    report: {}\n");
    let config = Config::from_yaml_str(&yaml, &no_env).expect("parses");
    assert!(config.repos[0].report.expect.is_empty());
}

#[test]
fn sign_in_keys_parse_with_their_defaults() {
    let yaml = r#"server:
  session_secret: ${SESSION}
providers:
  github:
    username: greg-bot
    password: t
    incoming_token: i
    source: "git@github.com:"
    oauth:
      client_id: Iv1.abc
      client_secret: ${OAUTH}
"#;
    let env = |name: &str| match name {
        "SESSION" => Some("s".repeat(32)),
        "OAUTH" => Some("oauth-secret".to_owned()),
        _ => None,
    };
    let config = Config::from_yaml_str(yaml, &env).expect("parses");
    let github = config.providers.github.expect("github");
    let oauth = github.oauth.expect("oauth");
    assert_eq!(oauth.client_id, "Iv1.abc");
    assert_eq!(oauth.client_secret.expose(), "oauth-secret");
    assert_eq!(github.web_url, greg_config::DEFAULT_GITHUB_WEB_URL);
    assert_eq!(
        config.server.session_secret.map(|s| s.expose().len()),
        Some(32)
    );
    assert!(!config.server.public_pages);

    let yaml = yaml
        .replace(
            "  session_secret: ${SESSION}\n",
            "  session_secret: ${SESSION}\n  public_pages: true\n",
        )
        .replace(
            "    source:",
            "    web_url: https://github.example.com/\n    source:",
        );
    let config = Config::from_yaml_str(&yaml, &env).expect("parses");
    assert!(config.server.public_pages);
    assert_eq!(
        config.providers.github.expect("github").web_url,
        "https://github.example.com"
    );
}

#[test]
fn notify_targets_and_delete_commands_are_read_with_their_defaults() {
    let yaml = minimal("").replace(
        "names: [demo]\n",
        "names: [demo]\n    delete_commands: true\n    notify:\n      \
         - url: https://hooks.slack.com/services/T0/B0/XYZ\n        \
         events: [landed, failed, landed]\n      \
         - url: https://prod.westus.logic.azure.com:443/workflows/1/triggers/manual/paths/invoke?api-version=2016-06-01&sig=s3cr3t\n        \
         events: [tree_closed]\n      \
         - url: http://127.0.0.1:9000/greg\n        \
         events: [left_queue]\n        format: json\n        secret: ${HOOK_SECRET}\n",
    );
    let env = |name: &str| (name == "HOOK_SECRET").then(|| "sesame".to_owned());
    let config = Config::from_yaml_str(&yaml, &env).expect("parses");
    let repo = &config.repos[0];
    assert!(repo.delete_commands);
    let [slack, teams, json] = repo.notify.as_slice() else {
        panic!("three targets: {:?}", repo.notify);
    };
    use greg_config::{NotifyEvent, NotifyFormat};
    assert_eq!(slack.events, [NotifyEvent::Landed, NotifyEvent::Failed]);
    assert_eq!(slack.format, NotifyFormat::Text);
    assert_eq!(slack.host, "hooks.slack.com");
    assert!(slack.secret.is_none());
    assert_eq!(
        slack.url.expose(),
        "https://hooks.slack.com/services/T0/B0/XYZ"
    );
    // Teams' workflow URLs carry their signature in the query: kept.
    assert!(teams.url.expose().ends_with("&sig=s3cr3t"));
    assert_eq!(teams.host, "prod.westus.logic.azure.com");
    assert!(teams.wants(NotifyEvent::TreeClosed));
    assert!(!teams.wants(NotifyEvent::Landed));
    assert_eq!(json.format, NotifyFormat::Json);
    assert_eq!(json.host, "127.0.0.1:9000");
    assert_eq!(json.secret.as_ref().map(|s| s.expose()), Some("sesame"));
    // The URL is a credential: not in the Debug output.
    let shown = format!("{repo:?}");
    assert!(
        !shown.contains("XYZ") && !shown.contains("s3cr3t"),
        "{shown}"
    );

    let config = Config::from_yaml_str(&minimal(""), &no_env).expect("parses");
    assert!(config.repos[0].notify.is_empty());
    assert!(!config.repos[0].delete_commands);
}
