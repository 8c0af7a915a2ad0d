//! Rejected configurations: every error names the key and the right line, and never a
//! secret. Each case edits a valid Greg-style document and marks the line the error must
//! point at with `# <-`; the message itself is an insta snapshot.

use greg_config::{Config, ConfigError, ConfigErrorKind};

/// A valid document in Greg's schema; the cases edit it. Its literal secrets (`hunter2...`)
/// and the environment's must never appear in an error.
const BASE: &str = r#"providers:
  github:
    username: greg
    password: hunter2-github
    incoming_token: hunter2-incoming
    source: "git@github.com:"
builders:
  jenkins:
    url: https://ci.example.com
    username: greg
    password: hunter2-jenkins
    incoming_token: hunter2-jenkins-incoming
repos:
  - provider: github
    organizations: [acme]
    names: [demo]
    jobs:
      test: {name: demo-test, builder: jenkins}
"#;

/// Values that must never be printed.
const SECRETS: &[&str] = &["hunter2", "s3cr3t-from-env"];

fn env(name: &str) -> Option<String> {
    match name {
        "SECRET" => Some("s3cr3t-from-env".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// `BASE` with `from` replaced by `to`; `from` must occur.
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE lacks {from:?}");
    BASE.replacen(from, to, 1)
}

/// Parses `yaml`, expecting an error, and checks its line against the `# <-` marker.
fn reject(name: &str, yaml: &str) -> ConfigError {
    assert!(
        Config::from_yaml_str(BASE, &env).is_ok(),
        "BASE must be valid"
    );
    let err = match Config::from_yaml_str(yaml, &env) {
        Ok(_) => panic!("{name}: accepted:\n{yaml}"),
        Err(err) => err,
    };
    let marked = yaml.lines().position(|l| l.contains("# <-")).map(|i| i + 1);
    assert_eq!(
        err.line, marked,
        "{name}: wrong line for `{err}` in:\n{yaml}"
    );
    let shown = format!("{err} {err:?}");
    for secret in SECRETS {
        assert!(!shown.contains(secret), "{name}: secret leaked: {shown}");
    }
    err
}

/// The snapshot of one case: the message, its kind and key path.
fn report(err: &ConfigError) -> String {
    format!(
        "{err}\nkind: {:?}\nkey: {}",
        err.kind,
        err.key.as_deref().unwrap_or("-")
    )
}

/// `BASE` plus a Bitbucket provider of `flavor` without `api_url`, flavor line marked.
fn with_bitbucket(flavor: &str) -> String {
    let bitbucket = format!(
        r#"  bitbucket:
    flavor: {flavor}  # <-
    username: greg
    password: hunter2-bitbucket
    incoming_token: hunter2-bitbucket-incoming
    source: "git@bitbucket.example.com:"
builders:
"#
    );
    edit("builders:\n", &bitbucket)
}

macro_rules! case {
    ($name:ident, $yaml:expr) => {
        #[test]
        fn $name() {
            let err = reject(stringify!($name), &$yaml);
            insta::assert_snapshot!(report(&err));
        }
    };
}

// Unknown keys.
case!(
    unknown_server_key,
    format!("server:\n  listne: 127.0.0.1:8080  # <-\n{BASE}")
);
case!(
    unknown_top_level_key,
    format!("{BASE}notifications: {{}}  # <-\n")
);
case!(
    unknown_job_key,
    edit(
        "test: {name: demo-test, builder: jenkins}",
        "test: {name: demo-test, buidler: jenkins}  # <-"
    )
);
case!(
    unknown_provider,
    edit(
        "builders:\n",
        "  gitlab:  # <-\n    username: greg\nbuilders:\n"
    )
);
case!(
    duplicate_key,
    format!("server:\n  listen: 127.0.0.1:1  # <-\n  listen: 127.0.0.1:2\n{BASE}")
);

// Missing keys and empty sections.
case!(
    github_without_incoming_token,
    edit(
        "    username: greg\n    password: hunter2-github\n    incoming_token: hunter2-incoming\n",
        "    username: greg  # <-\n    password: hunter2-github\n"
    )
);
case!(
    jenkins_without_incoming_token,
    edit(
        "    url: https://ci.example.com\n",
        "    url: https://ci.example.com  # <-\n"
    )
    .replace("    incoming_token: hunter2-jenkins-incoming\n", "")
);
case!(
    job_without_name,
    edit(
        "test: {name: demo-test, builder: jenkins}",
        "test: {builder: jenkins}  # <-"
    )
);
case!(
    no_providers,
    format!(
        "providers: {{}}  # <-\n{}",
        &BASE[BASE.find("builders:").unwrap_or(0)..]
    )
);
case!(
    provider_section_left_empty,
    format!(
        "providers:\n  github:  # <-\n{}",
        &BASE[BASE.find("builders:").unwrap_or(0)..]
    )
);
case!(
    no_providers_key,
    String::from("server:  # <-\n  listen: 127.0.0.1:8080\n")
);
case!(
    empty_incoming_token,
    edit(
        "incoming_token: hunter2-incoming",
        "incoming_token: ''  # <-"
    )
);
case!(
    empty_webhook_secret_from_env,
    edit(
        "    source: \"git@github.com:\"\n",
        "    source: \"git@github.com:\"\n    webhook_secret: ${EMPTY}  # <-\n"
    )
);

// Environment variables.
case!(
    unset_variable,
    edit(
        "password: hunter2-github",
        "password: ${GITHUB_TOKEN}  # <-"
    )
);
case!(
    unset_variable_inside_a_url,
    edit(
        "url: https://ci.example.com",
        "url: https://${JENKINS_HOST}/  # <-"
    )
);
case!(
    unterminated_reference,
    edit("password: hunter2-github", "password: hunter2${OOPS  # <-")
);
case!(
    bad_variable_name,
    edit("password: hunter2-github", "password: ${1X}hunter2  # <-")
);

// Secrets next to, or inside, a value of the wrong type.
case!(
    secret_next_to_wrong_type,
    edit(
        "incoming_token: hunter2-incoming",
        "incoming_token: [hunter2-incoming]  # <-"
    )
);
case!(
    secret_in_a_number_field,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    required_approvals: ${SECRET}  # <-\n"
    )
);
case!(
    secret_literal_in_a_number_field,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    required_approvals: hunter2  # <-\n"
    )
);
case!(
    secret_as_a_section,
    format!("server: hunter2  # <-\n{BASE}")
);
case!(
    secret_in_listen,
    format!("server:\n  listen: ${{SECRET}}  # <-\n{BASE}")
);
case!(
    credentials_in_api_url,
    edit(
        "    source: \"git@github.com:\"\n",
        concat!(
            "    source: \"git@github.com:\"\n",
            "    api_url: https://greg:hunter2@github.example.com  # <-\n"
        )
    )
);
case!(
    credentials_in_database_url,
    format!("server:\n  database: mysql://greg:hunter2@db/greg  # <-\n{BASE}")
);

// Bad values.
case!(
    bad_regex,
    edit("names: [demo]", "names: [demo, /^chef-(/]  # <-")
);
case!(
    name_with_owner,
    edit("names: [demo]", "names: [acme/demo]  # <-")
);
case!(
    negative_required_approvals,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    required_approvals: -1  # <-\n"
    )
);
case!(
    fractional_required_approvals,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    required_approvals: 1.5  # <-\n"
    )
);
case!(
    bad_listen,
    format!("server:\n  listen: localhost  # <-\n{BASE}")
);
case!(
    relative_public_url,
    format!("server:\n  public_url: greg.example.com  # <-\n{BASE}")
);
case!(
    ftp_jenkins_url,
    edit(
        "url: https://ci.example.com",
        "url: ftp://ci.example.com  # <-"
    )
);
case!(
    bot_name_with_space,
    format!("server:\n  bot_name: greg bot  # <-\n{BASE}")
);
case!(
    empty_bot_name,
    format!("server:\n  bot_name: ''  # <-\n{BASE}")
);
case!(
    zero_poll_seconds,
    format!("server:\n  build_poll_after_secs: 0  # <-\n{BASE}")
);
case!(
    yes_is_not_a_boolean,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    comments: yes  # <-\n"
    )
);
case!(
    unknown_merge_mode,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    merge_mode: squash  # <-\n"
    )
);
case!(
    merge_queue_window_zero,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    merge_queue:\n      window: 0  # <-\n"
    )
);
// A check across keys is reported at the repository entry, naming the keys.
case!(
    merge_queue_window_min_above_window,
    edit(
        "  - provider: github\n    organizations: [acme]\n    names: [demo]\n",
        "  - provider: github  # <-\n    organizations: [acme]\n    names: [demo]\n    merge_queue:\n      window: 2\n      window_min: 4\n"
    )
);
case!(
    merge_queue_unknown_key,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    merge_queue:\n      windows: 2  # <-\n"
    )
);
case!(unknown_bitbucket_flavor, with_bitbucket("datacenter"));
case!(bitbucket_server_without_api_url, with_bitbucket("server"));
case!(
    builder_not_configured,
    edit(
        "test: {name: demo-test, builder: jenkins}",
        "test: {name: demo-test, builder: travis}  # <-"
    )
);
case!(
    builder_without_builders_section,
    format!(
        "{}{}",
        &BASE[..BASE.find("builders:").unwrap_or(0)],
        r#"repos:
  - provider: github
    organizations: [acme]
    names: [demo]
    jobs:
      merge:
        name: m
        builder: jenkins  # <-
"#
    )
);
case!(
    provider_not_configured,
    edit("- provider: github", "- provider: bitbucket  # <-")
);
case!(
    empty_organizations,
    edit("organizations: [acme]", "organizations: []  # <-")
);
case!(empty_names, edit("names: [demo]", "names: []  # <-"));
case!(
    empty_target_branches,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    target_branches: []  # <-\n"
    )
);

// Reports (SPEC §8): server.report_retention_days, repos[].report, reports.store.
case!(
    report_retention_days_zero,
    format!("server:\n  report_retention_days: 0  # <-\n{BASE}")
);
case!(
    report_retention_days_too_many,
    format!("server:\n  report_retention_days: 3651  # <-\n{BASE}")
);
case!(
    report_expect_empty_name,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    report:\n      expect: [unit, '']  # <-\n"
    )
);
case!(
    report_expect_name_too_long,
    edit(
        "    names: [demo]\n",
        &format!(
            "    names: [demo]\n    report:\n      expect: [{}]  # <-\n",
            "j".repeat(201)
        )
    )
);
case!(
    report_expect_control_character,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    report:\n      expect: [\"unit\\ttests\"]  # <-\n"
    )
);
// A repeated name is reported at the start of the list.
case!(
    report_expect_duplicate,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    report:\n      expect:\n        - unit  # <-\n        - lint\n        - unit\n"
    )
);
case!(
    report_expect_not_a_list,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    report:\n      expect: unit  # <-\n"
    )
);
case!(
    report_unknown_key,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    report:\n      expected: [unit]  # <-\n"
    )
);
case!(
    reports_store_unknown_api,
    format!("{BASE}reports:\n  store:\n    api: ftp  # <-\n    bucket: b\n")
);
case!(
    reports_store_without_bucket,
    format!("{BASE}reports:\n  store:\n    api: s3  # <-\n    region: eu-west-1\n")
);
case!(
    reports_store_file_without_endpoint,
    format!("{BASE}reports:\n  store:\n    api: file  # <-\n")
);
case!(
    reports_store_s3_identity_without_secret,
    format!("{BASE}reports:\n  store:\n    api: s3  # <-\n    bucket: b\n    identity: AKIA\n")
);
case!(
    reports_store_azure_without_identity,
    format!("{BASE}reports:\n  store:\n    api: azure  # <-\n    bucket: c\n")
);
case!(
    reports_store_endpoint_not_a_url,
    format!(
        "{BASE}reports:\n  store:\n    api: s3  # <-\n    bucket: b\n    endpoint: minio:9000\n"
    )
);
case!(
    reports_store_prefix_leading_slash,
    format!("{BASE}reports:\n  store:\n    api: s3\n    bucket: b\n    prefix: /greg  # <-\n")
);
case!(
    reports_store_prefix_trailing_slash,
    format!(
        "{BASE}reports:\n  store:\n    api: s3\n    bucket: b\n    prefix: greg/reports/  # <-\n"
    )
);
case!(
    reports_store_public_url_not_http,
    format!(
        "{BASE}reports:\n  store:\n    api: s3\n    bucket: b\n    public_url: ftp://files.example.com  # <-\n"
    )
);
case!(
    reports_store_retention_zero,
    format!("{BASE}reports:\n  store:\n    api: s3\n    bucket: b\n    retention_days: 0  # <-\n")
);
case!(
    reports_store_empty_secret,
    format!(
        "{BASE}reports:\n  store:\n    api: s3\n    bucket: b\n    identity: AKIA\n    secret: ${{EMPTY}}  # <-\n"
    )
);
case!(
    reports_store_unknown_key,
    format!("{BASE}reports:\n  store:\n    api: s3\n    bucket: b\n    buckets: c  # <-\n")
);
case!(
    reports_unknown_key,
    format!("{BASE}reports:\n  stores: {{}}  # <-\n")
);
case!(
    reports_store_empty,
    format!("{BASE}reports:\n  store:  # <-\n")
);

// Not YAML, or nothing at all.
case!(
    mapping_value_in_a_plain_scalar,
    edit("username: greg", "username: greg: bot  # <-")
);
case!(
    tab_indentation,
    edit("    username: greg\n", "\tusername: greg  # <-\n")
);

#[test]
fn unclosed_quote_points_at_the_end_and_names_where_the_quote_started() {
    let yaml = edit("source: \"git@github.com:\"", "source: \"git@github.com:");
    let err = Config::from_yaml_str(&yaml, &env).expect_err("unclosed quote");
    // libyaml finds out at the end of the stream (line 19); the message says where the
    // unclosed scalar starts (line 6).
    assert_eq!(err.line, Some(19));
    assert_eq!(err.kind, ConfigErrorKind::Syntax);
    insta::assert_snapshot!(report(&err));
}
case!(empty_file, String::from("# nothing but a comment\n"));

#[test]
fn errors_expose_line_and_key_path() {
    let yaml = edit(
        "test: {name: demo-test, builder: jenkins}",
        "test: {name: demo-test, builder: travis}",
    );
    let err = Config::from_yaml_str(&yaml, &env).expect_err("travis is not configured");
    assert_eq!(err.kind, ConfigErrorKind::InvalidValue);
    assert_eq!(err.line, Some(18));
    assert_eq!(err.key.as_deref(), Some("repos[0].jobs.test.builder"));
    assert_eq!(err.file, "config.yaml");
}

// Sign-in (SPEC §9).
case!(
    oauth_without_session_secret,
    // A whole-section check: the error points at the section's first key.
    edit(
        "    source: \"git@github.com:\"\n",
        "    source: \"git@github.com:\"\n    oauth: {client_id: greg-app, client_secret: hunter2-oauth}\n"
    )
    .replacen("    username: greg\n", "    username: greg  # <-\n", 1)
);
case!(
    short_session_secret,
    format!("server:\n  session_secret: hunter2-too-short  # <-\n{BASE}")
);
// Notifications (SPEC §9): repos[].notify, repos[].delete_commands.
case!(
    notify_unknown_event,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    notify:\n      - url: https://hooks.slack.com/services/T0/B0/hunter2\n        events: [landed, merged]  # <-\n"
    )
);
case!(
    notify_no_events,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    notify:\n      - url: https://hooks.slack.com/services/T0/B0/hunter2\n        events: []  # <-\n"
    )
);
case!(
    notify_url_not_http,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    notify:\n      - url: ftp://hooks.example.com/hunter2  # <-\n        events: [landed]\n"
    )
);
case!(
    notify_json_without_secret,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    notify:\n      - url: https://hooks.example.com/greg/hunter2  # <-\n        events: [failed]\n        format: json\n"
    )
);
case!(
    notify_unknown_format,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    notify:\n      - url: https://hooks.example.com/greg/hunter2\n        events: [failed]\n        format: xml  # <-\n"
    )
);
case!(
    delete_commands_not_a_flag,
    edit(
        "    names: [demo]\n",
        "    names: [demo]\n    delete_commands: sometimes  # <-\n"
    )
);
