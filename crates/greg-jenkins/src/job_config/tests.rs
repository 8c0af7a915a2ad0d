//! Tests of the config.xml editor against the Jenkins Job Builder fixtures
//! (tests/data/jenkins/config/, legacy `<url>` form), hand-written jobs in Jenkins' shape
//! (crates/greg-jenkins/tests/data/job_config/) and small inline documents.

use super::dom::Document;
use super::*;

const JJB_001: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/jenkins/config/notification-endpoint.jjb-001.xml"
));
const JJB_002: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/jenkins/config/notification-endpoint.jjb-002.xml"
));
const FREESTYLE_FULL: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/job_config/freestyle-full.xml"
));

const TOKEN: &str = "t0k3n-s3cret";

fn greg() -> EndpointSpec {
    EndpointSpec::callback("https://greg.example.com", "jenkins", TOKEN).expect("valid URL")
}

/// The JJB fixture with its endpoint moved to greg's host and path: a job wired by an old
/// Greg (`http://example.com/build`, no token) in the legacy form.
fn legacy_greg(fixture: &str) -> (String, EndpointSpec) {
    let xml = fixture.replace(
        "http://example.com/jenkins_endpoint",
        "http://example.com/build?builder=jenkins&amp;token=old",
    );
    assert_ne!(xml, fixture, "the fixture has the endpoint URL");
    let spec = EndpointSpec::callback("http://example.com", "jenkins", TOKEN).expect("valid");
    (xml, spec)
}

/// Runs the editor, checks the second run changes nothing and that the token never shows in
/// an action, and renders actions + XML for a snapshot.
fn ensure(xml: &str, spec: &EndpointSpec) -> (JobConfigChange, String) {
    let first = ensure_greg_job_config(xml, spec).expect("edits");
    assert_eq!(first.changed, first.xml != xml);
    assert_eq!(first.changed, !first.actions.is_empty());
    let second = ensure_greg_job_config(&first.xml, spec).expect("edits its own output");
    assert!(!second.changed, "second run changed: {:?}", second.actions);
    assert!(second.actions.is_empty());
    assert_eq!(second.xml, first.xml);
    for action in &first.actions {
        assert!(!action.contains(TOKEN), "token in action {action}");
    }
    let rendered = format!("{}\n---\n{}", first.actions.join("\n"), first.xml);
    (first, rendered)
}

/// The endpoint greg wants, read back from the output.
fn assert_wired(xml: &str, spec: &EndpointSpec) -> JobConfigSummary {
    let summary = inspect(xml).expect("inspects");
    let ours = summary.greg_endpoints(spec);
    assert_eq!(ours.len(), 1, "exactly one greg endpoint: {summary:?}");
    assert!(ours[0].is_correct_for(spec), "{:?}", ours[0]);
    assert_eq!(summary.missing_parameters(), Vec::<&str>::new());
    summary
}

/// True when the lines of `old` appear in `new` in order, each unchanged.
fn is_line_subsequence(old: &str, new: &str) -> bool {
    let mut new_lines = new.split_inclusive('\n');
    old.split_inclusive('\n')
        .all(|line| new_lines.any(|candidate| candidate == line))
}

#[test]
fn the_legacy_jjb_endpoint_of_another_host_is_kept_and_greg_is_added() {
    let spec = greg();
    let (change, rendered) = ensure(JJB_001, &spec);
    insta::assert_snapshot!(rendered);
    assert!(is_line_subsequence(JJB_001, &change.xml));
    let summary = assert_wired(&change.xml, &spec);
    assert_eq!(summary.endpoints.len(), 2);
    assert_eq!(
        summary.endpoints[0].url,
        "http://example.com/jenkins_endpoint"
    );
    assert!(summary.endpoints[0].legacy);
}

#[test]
fn a_legacy_greg_endpoint_is_converted_to_url_info() {
    let (xml, spec) = legacy_greg(JJB_001);
    let (change, rendered) = ensure(&xml, &spec);
    insta::assert_snapshot!(rendered);
    assert!(
        change
            .actions
            .contains(&"converted legacy <url> endpoint".to_owned())
    );
    assert!(!change.xml.contains("<url>"));
    let summary = assert_wired(&change.xml, &spec);
    assert_eq!(summary.endpoints.len(), 1);
}

#[test]
fn a_legacy_greg_endpoint_with_other_settings_gets_gregs() {
    let (xml, spec) = legacy_greg(JJB_002);
    let (change, rendered) = ensure(&xml, &spec);
    insta::assert_snapshot!(rendered);
    for expected in [
        "set endpoint format to JSON (was XML)",
        "set endpoint event to all (was completed)",
        "set endpoint timeout to 30000 (was 40000)",
        "set endpoint loglines to 0 (was -1)",
        "set endpoint branch to .*",
    ] {
        assert!(
            change.actions.iter().any(|a| a == expected),
            "{expected} in {:?}",
            change.actions
        );
    }
    assert_wired(&change.xml, &spec);
}

const CURRENT_FORM: &str = r#"<?xml version='1.1' encoding='UTF-8'?>
<flow-definition plugin="workflow-job@1385.vb_58b_86ea_fff1">
  <actions/>
  <description></description>
  <keepDependencies>false</keepDependencies>
  <properties>
    <com.tikal.hudson.plugins.notification.HudsonNotificationProperty plugin="notification@1.17">
      <endpoints>
        <com.tikal.hudson.plugins.notification.Endpoint>
          <protocol>HTTP</protocol>
          <format>JSON</format>
          <urlInfo>
            <urlOrId>https://greg.example.com/build?builder=jenkins&amp;token=rotated-away</urlOrId>
            <urlType>PUBLIC</urlType>
          </urlInfo>
          <event>completed</event>
          <timeout>30000</timeout>
          <loglines>0</loglines>
          <buildNotes>nightly</buildNotes>
          <retries>3</retries>
          <branch>.*</branch>
        </com.tikal.hudson.plugins.notification.Endpoint>
      </endpoints>
    </com.tikal.hudson.plugins.notification.HudsonNotificationProperty>
  </properties>
  <definition class="org.jenkinsci.plugins.workflow.cps.CpsScmFlowDefinition" plugin="workflow-cps@3894.vd0f0248b_a_fc4">
    <scriptPath>Jenkinsfile</scriptPath>
    <lightweight>true</lightweight>
  </definition>
  <triggers/>
  <disabled>false</disabled>
</flow-definition>
"#;

#[test]
fn a_current_form_endpoint_gets_the_new_token_and_event_and_keeps_its_other_fields() {
    let spec = greg();
    let (change, rendered) = ensure(CURRENT_FORM, &spec);
    insta::assert_snapshot!(rendered);
    assert_eq!(
        change.actions[..2],
        [
            "updated endpoint URL".to_owned(),
            "set endpoint event to all (was completed)".to_owned()
        ]
    );
    assert!(change.xml.contains("<buildNotes>nightly</buildNotes>"));
    assert!(change.xml.contains("<retries>3</retries>"));
    assert!(!change.xml.contains("rotated-away"));
    assert_wired(&change.xml, &spec);
}

#[test]
fn duplicate_greg_endpoints_are_removed_and_the_first_is_kept() {
    let spec = greg();
    let endpoint = |url: &str| {
        format!(
            "        <com.tikal.hudson.plugins.notification.Endpoint>\n          <protocol>HTTP</protocol>\n          <format>JSON</format>\n          <urlInfo>\n            <urlOrId>{url}</urlOrId>\n            <urlType>PUBLIC</urlType>\n          </urlInfo>\n          <event>all</event>\n          <timeout>30000</timeout>\n          <loglines>0</loglines>\n          <retries>0</retries>\n          <branch>.*</branch>\n        </com.tikal.hudson.plugins.notification.Endpoint>\n"
        )
    };
    let xml = format!(
        "<?xml version='1.1' encoding='UTF-8'?>\n<project>\n  <properties>\n    <com.tikal.hudson.plugins.notification.HudsonNotificationProperty>\n      <endpoints>\n{}{}{}{}      </endpoints>\n    </com.tikal.hudson.plugins.notification.HudsonNotificationProperty>\n  </properties>\n</project>\n",
        endpoint(&spec.url.replace('&', "&amp;")),
        endpoint("https://chat.example.com/hooks/jenkins"),
        // Same scheme, host, default port and path: greg's, though written differently.
        endpoint("HTTPS://Greg.Example.com:443/build/?builder=jenkins&amp;token=old"),
        endpoint("http://greg.example.com/build?builder=jenkins"),
    );
    let (change, rendered) = ensure(&xml, &spec);
    insta::assert_snapshot!(rendered);
    // The plain-http endpoint has greg's path and builder: a stale greg endpoint (SPEC §7),
    // so a duplicate too.
    assert_eq!(change.actions[0], "removed 2 duplicate endpoints");
    assert_eq!(change.actions.len(), 1 + GREG_PARAMETERS.len());
    let summary = assert_wired(&change.xml, &spec);
    let urls: Vec<&str> = summary.endpoints.iter().map(|e| e.url.as_str()).collect();
    assert_eq!(
        urls,
        [spec.url.as_str(), "https://chat.example.com/hooks/jenkins"]
    );
}

/// The actions of a change but the parameters added.
fn endpoint_actions(change: &JobConfigChange) -> Vec<&str> {
    change
        .actions
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("added parameter "))
        .collect()
}

/// A job wired by greg when it lived elsewhere: `endpoints` in the current form, each
/// `(url, event)`, around a chat tool's endpoint.
fn with_endpoints(endpoints: &[(&str, &str)]) -> String {
    let endpoint = |(url, event): &(&str, &str)| {
        format!(
            "        <com.tikal.hudson.plugins.notification.Endpoint>\n          <protocol>HTTP</protocol>\n          <format>JSON</format>\n          <urlInfo>\n            <urlOrId>{url}</urlOrId>\n            <urlType>PUBLIC</urlType>\n          </urlInfo>\n          <event>{event}</event>\n          <timeout>30000</timeout>\n          <loglines>0</loglines>\n          <retries>2</retries>\n          <branch>.*</branch>\n        </com.tikal.hudson.plugins.notification.Endpoint>\n"
        )
    };
    let list: String = endpoints.iter().map(endpoint).collect();
    format!(
        "<?xml version='1.1' encoding='UTF-8'?>\n<project>\n  <properties>\n    <com.tikal.hudson.plugins.notification.HudsonNotificationProperty>\n      <endpoints>\n{list}      </endpoints>\n    </com.tikal.hudson.plugins.notification.HudsonNotificationProperty>\n  </properties>\n</project>\n"
    )
}

#[test]
fn a_greg_endpoint_on_an_old_host_with_an_old_token_is_updated_not_duplicated() {
    let spec = greg();
    let chat = "https://chat.example.com/hooks/jenkins?token=chat-s3cret";
    let xml = with_endpoints(&[
        (
            "https://chat.example.com/hooks/jenkins?token=chat-s3cret",
            "all",
        ),
        (
            "http://old-greg.internal:8080/build?builder=jenkins&amp;token=old-s3cret",
            "completed",
        ),
    ]);
    let (change, rendered) = ensure(&xml, &spec);
    insta::assert_snapshot!(rendered);
    assert_eq!(
        endpoint_actions(&change),
        [
            "updated endpoint URL",
            "set endpoint event to all (was completed)"
        ]
    );
    assert!(!change.xml.contains("old-greg"), "{}", change.xml);
    // The kept endpoint keeps its own fields.
    assert!(change.xml.contains("<retries>2</retries>"));
    let summary = assert_wired(&change.xml, &spec);
    let urls: Vec<&str> = summary.endpoints.iter().map(|e| e.url.as_str()).collect();
    assert_eq!(
        urls,
        [chat, spec.url.as_str()],
        "the chat tool is untouched"
    );
    // Only the old endpoint's lines changed.
    assert!(is_line_subsequence(
        &xml.lines()
            .filter(|l| !l.contains("old-greg") && !l.contains("completed"))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
        &change.xml
    ));
}

#[test]
fn among_stale_and_current_greg_endpoints_the_current_one_is_kept() {
    let spec = greg();
    let current = spec.url.replace('&', "&amp;");
    let xml = with_endpoints(&[
        (
            "http://old-greg.internal/ci/build/?builder=jenkins&amp;token=old",
            "all",
        ),
        ("https://chat.example.com/hooks/jenkins", "all"),
        (&current, "all"),
        (
            "https://greg.example.com/build?token=x&amp;builder=jenkins",
            "all",
        ),
    ]);
    let (change, _) = ensure(&xml, &spec);
    assert_eq!(endpoint_actions(&change), ["removed 2 duplicate endpoints"]);
    let summary = assert_wired(&change.xml, &spec);
    let urls: Vec<&str> = summary.endpoints.iter().map(|e| e.url.as_str()).collect();
    assert_eq!(
        urls,
        ["https://chat.example.com/hooks/jenkins", spec.url.as_str()]
    );
    // The kept endpoint is untouched, byte for byte.
    assert!(change.xml.contains(&current));
}

#[test]
fn a_legacy_greg_endpoint_on_an_old_host_is_converted_and_moved() {
    let xml = JJB_001.replace(
        "http://example.com/jenkins_endpoint",
        "http://greg-old.example.net/build?builder=jenkins&amp;token=old",
    );
    let spec = greg();
    let (change, _) = ensure(&xml, &spec);
    assert_eq!(change.actions[0], "converted legacy <url> endpoint");
    assert!(
        !change
            .actions
            .contains(&"added notification endpoint".to_owned()),
        "{:?}",
        change.actions
    );
    assert!(!change.xml.contains("greg-old"));
    assert_eq!(assert_wired(&change.xml, &spec).endpoints.len(), 1);
}

#[test]
fn stale_greg_endpoints_are_recognized_by_path_and_builder() {
    let spec =
        EndpointSpec::callback("https://tools.example.com/greg", "jenkins", TOKEN).expect("valid");
    for (candidate, expected) in [
        // In place.
        ("https://tools.example.com/greg/build", true),
        ("https://tools.example.com/greg/build?builder=other", true),
        // greg's path and builder elsewhere: an old host, port, scheme, prefix or token.
        ("http://old-greg:8080/build?builder=jenkins&token=old", true),
        (
            "https://ci-bots.example.org/greg/build/?token=x&builder=jenkins",
            true,
        ),
        ("http://10.0.0.7/build?builder=jenkins", true),
        // Not greg's: another builder, no builder, another path, not a URL.
        (
            "http://old-greg:8080/build?builder=jenkins-2&token=old",
            false,
        ),
        ("http://old-greg:8080/build?token=old", false),
        ("http://old-greg:8080/build-status?builder=jenkins", false),
        ("http://old-greg:8080/build/x?builder=jenkins", false),
        ("http://old-greg:8080/repo?builder=jenkins", false),
        ("ftp://old-greg/build?builder=jenkins", false),
        ("$GREG_URL/build?builder=jenkins", false),
        ("greg-credential-id", false),
        ("", false),
    ] {
        assert_eq!(spec.is_gregs(candidate), expected, "{candidate}");
    }
    // A spec without a builder in its URL recognizes only endpoints in place.
    let bare = EndpointSpec {
        url: "https://tools.example.com/greg/build".to_owned(),
    };
    assert!(!bare.is_gregs("http://old-greg/build?builder=jenkins"));
    assert!(bare.is_gregs("https://tools.example.com/greg/build?builder=jenkins"));
}

#[test]
fn check_config_names_a_stale_greg_endpoint_and_keeps_its_token_hidden() {
    let spec = greg();
    let xml = with_endpoints(&[(
        "http://old-greg.internal:8080/build?builder=jenkins&amp;token=old-s3cret",
        "all",
    )]);
    let summary = inspect(&xml).expect("inspects");
    assert!(!summary.endpoints[0].points_at(&spec));
    assert!(summary.endpoints[0].is_gregs(&spec));
    let problems = summary.problems(&spec);
    assert_eq!(
        problems[0],
        "greg's notification endpoint: URL is \
         http://old-greg.internal:8080/build?builder=jenkins&token=***, greg's is \
         https://greg.example.com/build?builder=jenkins&token=***"
    );
    for p in &problems {
        assert!(!p.contains("old-s3cret") && !p.contains(TOKEN), "{p}");
    }
}

const NO_PROPERTIES: &str = r#"<?xml version='1.1' encoding='UTF-8'?>
<project>
  <actions/>
  <description>Freestyle job created by hand.</description>
  <keepDependencies>false</keepDependencies>
  <scm class="hudson.scm.NullSCM"/>
  <canRoam>true</canRoam>
  <disabled>false</disabled>
  <triggers/>
  <concurrentBuild>false</concurrentBuild>
  <builders/>
  <publishers/>
  <buildWrappers/>
</project>"#;

#[test]
fn a_freestyle_job_without_properties_gets_them_after_keep_dependencies() {
    let spec = greg();
    let (change, rendered) = ensure(NO_PROPERTIES, &spec);
    insta::assert_snapshot!(rendered);
    assert!(is_line_subsequence(NO_PROPERTIES, &change.xml));
    assert!(
        change
            .xml
            .contains("<keepDependencies>false</keepDependencies>\n  <properties>\n")
    );
    assert!(
        change.xml.ends_with("</project>"),
        "no newline added at the end"
    );
    assert_eq!(change.actions.len(), 1 + GREG_PARAMETERS.len());
    assert_wired(&change.xml, &spec);
}

#[test]
fn a_self_closing_properties_element_is_opened() {
    let spec = greg();
    let xml = "<?xml version='1.1' encoding='UTF-8'?>\n<project>\n  <actions/>\n  <description></description>\n  <keepDependencies>false</keepDependencies>\n  <properties/>\n  <scm class=\"hudson.scm.NullSCM\"/>\n</project>\n";
    let (change, rendered) = ensure(xml, &spec);
    insta::assert_snapshot!(rendered);
    assert!(!change.xml.contains("<properties/>"));
    assert_wired(&change.xml, &spec);
}

#[test]
fn a_job_with_a_bare_root_gets_properties_first() {
    let spec = greg();
    let (change, _) = ensure("<project/>", &spec);
    assert!(
        change
            .xml
            .starts_with("<project>\n  <properties>\n    <com.tikal")
    );
    assert!(change.xml.ends_with("  </properties>\n</project>"));
    assert_wired(&change.xml, &spec);
}

#[test]
fn declared_parameters_are_kept_and_the_missing_ones_added() {
    let spec = greg();
    let (change, rendered) = ensure(FREESTYLE_FULL, &spec);
    let added: Vec<&str> = change
        .actions
        .iter()
        .filter_map(|a| a.strip_prefix("added parameter "))
        .collect();
    // SOURCE (string), CONTEXT (choice) and REPORT (boolean) are declared already.
    assert_eq!(added, ["COMMIT", "BRANCH", "PR", "TARGET", "TARGET_BRANCH"]);
    let summary = assert_wired(&change.xml, &spec);
    assert_eq!(
        summary.parameters,
        [
            "SOURCE",
            "CONTEXT",
            "REPORT",
            "EXTRA_FLAGS",
            "COMMIT",
            "BRANCH",
            "PR",
            "TARGET",
            "TARGET_BRANCH"
        ]
    );
    insta::assert_snapshot!(rendered);
}

#[test]
fn a_full_freestyle_config_keeps_every_untouched_byte() {
    let spec = greg();
    let change = ensure_greg_job_config(FREESTYLE_FULL, &spec).expect("edits");
    assert!(change.changed);
    // Only insertions: every input line is still there, unchanged and in order, so plugin
    // elements, attributes, entity references and the XML 1.1 declaration survive as written.
    assert!(is_line_subsequence(FREESTYLE_FULL, &change.xml));
    let diff = unified_diff(FREESTYLE_FULL, &change.xml, "config.xml");
    let removed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .collect();
    assert_eq!(removed, Vec::<&str>::new());
    // The other host's endpoint is exactly as it was.
    let before = inspect(FREESTYLE_FULL).expect("inspects");
    let after = inspect(&change.xml).expect("inspects");
    assert_eq!(after.endpoints[0], before.endpoints[0]);
    assert_eq!(after.endpoints.len(), 2);
    insta::assert_snapshot!(diff);
}

#[test]
fn an_already_wired_job_is_returned_unchanged() {
    let spec = greg();
    let wired = ensure_greg_job_config(FREESTYLE_FULL, &spec)
        .expect("edits")
        .xml;
    let again = ensure_greg_job_config(&wired, &spec).expect("edits");
    assert!(!again.changed);
    assert!(again.actions.is_empty());
    assert_eq!(again.xml, wired);
    assert_eq!(unified_diff(&wired, &again.xml, "config.xml"), "");
}

#[test]
fn secret_and_unparsable_endpoints_are_not_gregs() {
    let spec = greg();
    let xml = "<project><properties><com.tikal.hudson.plugins.notification.HudsonNotificationProperty><endpoints><com.tikal.hudson.plugins.notification.Endpoint><urlInfo><urlOrId>greg-callback-credential</urlOrId><urlType>SECRET</urlType></urlInfo></com.tikal.hudson.plugins.notification.Endpoint><com.tikal.hudson.plugins.notification.Endpoint><urlInfo><urlOrId>$GREG_URL/build</urlOrId><urlType>PUBLIC</urlType></urlInfo></com.tikal.hudson.plugins.notification.Endpoint></endpoints></com.tikal.hudson.plugins.notification.HudsonNotificationProperty></properties></project>";
    let change = ensure_greg_job_config(xml, &spec).expect("edits");
    assert_eq!(change.actions[0], "added notification endpoint");
    let summary = inspect(&change.xml).expect("inspects");
    assert_eq!(summary.endpoints.len(), 3);
    assert_eq!(summary.endpoints[0].url, "greg-callback-credential");
    assert_eq!(summary.endpoints[0].url_type.as_deref(), Some("SECRET"));
    assert_eq!(summary.endpoints[1].url, "$GREG_URL/build");
    assert!(summary.endpoints[2].points_at(&spec));
}

#[test]
fn malformed_xml_is_a_clear_error_with_a_position() {
    let spec = greg();
    let cases = [
        (
            "<project>\n  <properties>\n  </project>",
            "line 3, column 3",
            "properties",
        ),
        (
            "<project>\n  <properties>\n",
            "line 2, column 3",
            "never closed",
        ),
        ("<project>&nbsp;</project>", "line 1, column 10", "&nbsp;"),
        (
            "<project/>\n<project/>",
            "line 2, column 1",
            "more than one root element",
        ),
        ("just text", "line 1", "text outside the root element"),
        ("", "line 1, column 1", "no root element"),
        (
            "<project>\n <a x=\"1\" x=\"2\"/></project>",
            "line 2, column 2",
            "x",
        ),
        (
            "<project>a & b</project>",
            "line 1, column 12",
            "reference not closed",
        ),
    ];
    let mut messages = Vec::new();
    for (xml, position, detail) in cases {
        let err = ensure_greg_job_config(xml, &spec).expect_err(xml);
        let text = err.to_string();
        messages.push(text.clone());
        assert!(
            matches!(err, JobConfigError::Malformed { .. }),
            "{xml}: {text}"
        );
        assert!(
            text.starts_with("config.xml is not well-formed XML: "),
            "{text}"
        );
        assert!(text.contains(position), "{xml}: {text}");
        assert!(text.contains(detail), "{xml}: {text}");
        assert_eq!(inspect(xml).expect_err(xml), err);
    }
    insta::assert_snapshot!(messages.join("\n"));
}

#[test]
fn folders_and_login_pages_are_refused() {
    let spec = greg();
    for root in [
        "com.cloudbees.hudson.plugins.folder.Folder",
        "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject",
        "html",
    ] {
        let xml = format!("<{root}><properties/></{root}>");
        let err = ensure_greg_job_config(&xml, &spec).expect_err(root);
        assert_eq!(
            err,
            JobConfigError::NotAJob {
                root: root.to_owned()
            }
        );
        assert!(matches!(
            greg_core::Error::from(err),
            greg_core::Error::InvalidConfig { key, .. } if key == "jobs"
        ));
    }
}

#[test]
fn an_invalid_callback_url_is_refused_without_showing_the_token() {
    let spec = EndpointSpec {
        url: format!("/build?builder=jenkins&token={TOKEN}"),
    };
    let err = ensure_greg_job_config("<project/>", &spec).expect_err("relative URL");
    assert!(matches!(err, JobConfigError::InvalidEndpoint { .. }));
    assert!(!err.to_string().contains(TOKEN), "{err}");
    for bad in [
        "greg.example.com",
        "ftp://greg.example.com",
        "https://greg.example.com/?a=1",
    ] {
        let err = EndpointSpec::callback(bad, "jenkins", TOKEN).expect_err(bad);
        assert!(
            matches!(err, JobConfigError::InvalidEndpoint { .. }),
            "{bad}"
        );
    }
}

#[test]
fn the_callback_url_is_built_under_gregs_public_url() {
    let cases = [
        (
            "https://greg.example.com",
            "https://greg.example.com/build?builder=jenkins&token=a%26b+c",
        ),
        (
            "https://greg.example.com/",
            "https://greg.example.com/build?builder=jenkins&token=a%26b+c",
        ),
        (
            "https://tools.example.com:8443/greg/",
            "https://tools.example.com:8443/greg/build?builder=jenkins&token=a%26b+c",
        ),
    ];
    for (public_url, expected) in cases {
        let spec = EndpointSpec::callback(public_url, "jenkins", "a&b c").expect(public_url);
        assert_eq!(spec.url, expected);
    }
    let spec = greg();
    assert!(!format!("{spec:?}").contains(TOKEN));
}

#[test]
fn greg_endpoints_match_by_scheme_host_port_and_path() {
    let spec =
        EndpointSpec::callback("https://tools.example.com/greg", "jenkins", TOKEN).expect("valid");
    for (candidate, expected) in [
        ("https://tools.example.com/greg/build", true),
        ("https://TOOLS.example.com:443/greg/build/?token=old", true),
        (" https://tools.example.com/greg/build?builder=other ", true),
        ("http://tools.example.com/greg/build", false),
        ("https://tools.example.com:8443/greg/build", false),
        ("https://tools.example.com/other-bot/build", false),
        ("https://tools.example.com/build", false),
        ("https://greg.example.com/greg/build", false),
        ("greg-credential-id", false),
        ("", false),
    ] {
        assert_eq!(spec.matches(candidate), expected, "{candidate}");
    }
}

#[test]
fn inspect_reads_both_url_forms() {
    let legacy = inspect(JJB_002).expect("inspects");
    let current = inspect(CURRENT_FORM).expect("inspects");
    insta::assert_debug_snapshot!((legacy, current));
}

#[test]
fn unedited_documents_read_back_byte_for_byte() {
    for xml in [
        JJB_001,
        JJB_002,
        FREESTYLE_FULL,
        CURRENT_FORM,
        NO_PROPERTIES,
        "\u{feff}<?xml version=\"1.0\"?>\r\n<!-- a comment -->\r\n<project a='1'  b = \"&lt;2&gt;\" >\r\n  <x><![CDATA[<raw> & stuff]]></x>\r\n  <?pi target?>\r\n  <y>&#x41;&amp;&#66;</y >\r\n</project>\r\n<!-- trailing -->\r\n",
    ] {
        let doc = Document::parse(xml).expect("parses");
        assert_eq!(doc.to_xml(), xml);
    }
}

#[test]
fn text_is_read_with_entities_and_cdata_resolved() {
    let doc = Document::parse("<p><a> x &amp; &#x41;<![CDATA[<b>]]> </a></p>").expect("parses");
    assert_eq!(doc.root().child_text("a").as_deref(), Some("x & A<b>"));
}

#[test]
fn the_diff_masks_tokens_but_shows_that_they_changed() {
    let old = CURRENT_FORM;
    let change = ensure_greg_job_config(old, &greg()).expect("edits");
    let diff = unified_diff(old, &change.xml, "job/demo-test/config.xml");
    assert!(!diff.contains(TOKEN), "{diff}");
    assert!(!diff.contains("rotated-away"), "{diff}");
    assert!(diff.contains("-            <urlOrId>https://greg.example.com/build?builder=jenkins&amp;token=***1</urlOrId>"), "{diff}");
    assert!(diff.contains("+            <urlOrId>https://greg.example.com/build?builder=jenkins&amp;token=***2</urlOrId>"), "{diff}");
    insta::assert_snapshot!(diff);
}

#[test]
fn mask_token_hides_tokens_passwords_and_secret_elements() {
    for (text, expected) in [
        (
            "https://greg.example.com/build?builder=jenkins&token=s3cret",
            "https://greg.example.com/build?builder=jenkins&token=***",
        ),
        (
            "<urlOrId>https://g/build?builder=jenkins&amp;token=s3cret</urlOrId>",
            "<urlOrId>https://g/build?builder=jenkins&amp;token=***</urlOrId>",
        ),
        (
            "https://g/build?token=s3cret&builder=jenkins#x",
            "https://g/build?token=***&builder=jenkins#x",
        ),
        (
            "https://g/?access_token=abc def",
            "https://g/?access_token=*** def",
        ),
        ("https://g/build?token=", "https://g/build?token="),
        (
            "https://greg:pa55@g.example.com/build",
            "https://greg:***@g.example.com/build",
        ),
        (
            "<authToken>remote-trigger-secret</authToken>",
            "<authToken>***</authToken>",
        ),
        (
            "<password>{AQAAABAAAAAQ}</password>",
            "<password>***</password>",
        ),
        (
            "<name>TOKEN</name><description>x</description>",
            "<name>TOKEN</name><description>x</description>",
        ),
        ("no secrets here", "no secrets here"),
    ] {
        assert_eq!(mask_token(text), expected, "{text}");
    }
}

#[test]
fn check_config_problems_name_each_fault_without_the_token() {
    let (legacy, legacy_spec) = legacy_greg(JJB_002);
    let spec = greg();
    let wired = ensure_greg_job_config(FREESTYLE_FULL, &spec)
        .expect("edits")
        .xml;
    let doubled = wired.replace(
        "      </endpoints>",
        &format!(
            "        <com.tikal.hudson.plugins.notification.Endpoint>\n          <urlInfo>\n            <urlOrId>{}</urlOrId>\n            <urlType>PUBLIC</urlType>\n          </urlInfo>\n        </com.tikal.hudson.plugins.notification.Endpoint>\n      </endpoints>",
            spec.url.replace('&', "&amp;")
        ),
    );
    let problems = |xml: &str, spec: &EndpointSpec| inspect(xml).expect("inspects").problems(spec);
    assert_eq!(problems(&wired, &spec), Vec::<String>::new());
    let rotated =
        EndpointSpec::callback("https://greg.example.com", "jenkins", "new-token").expect("valid");
    assert_eq!(
        problems(&wired, &rotated),
        ["greg's notification endpoint: URL has another token"]
    );
    let report = [
        (
            "legacy greg endpoint (JJB 002)",
            problems(&legacy, &legacy_spec),
        ),
        ("no greg endpoint", problems(FREESTYLE_FULL, &spec)),
        ("two greg endpoints", problems(&doubled, &spec)),
    ];
    for (_, lines) in &report {
        for line in lines {
            assert!(!line.contains(TOKEN), "{line}");
        }
    }
    insta::assert_debug_snapshot!(report);
}

#[test]
fn self_closing_endpoints_and_parameter_definitions_are_filled() {
    let spec = greg();
    let xml = "<project>\n  <properties>\n    <com.tikal.hudson.plugins.notification.HudsonNotificationProperty plugin=\"notification@1.17\">\n      <endpoints/>\n    </com.tikal.hudson.plugins.notification.HudsonNotificationProperty>\n    <hudson.model.ParametersDefinitionProperty>\n      <parameterDefinitions/>\n    </hudson.model.ParametersDefinitionProperty>\n  </properties>\n</project>\n";
    let (change, _) = ensure(xml, &spec);
    assert!(change.xml.contains(
        "      <endpoints>\n        <com.tikal.hudson.plugins.notification.Endpoint>\n          <protocol>HTTP</protocol>\n"
    ));
    assert!(change.xml.contains(
        "      <parameterDefinitions>\n        <hudson.model.StringParameterDefinition>\n          <name>SOURCE</name>\n"
    ));
    assert!(change.xml.contains(
        "        </hudson.model.StringParameterDefinition>\n      </parameterDefinitions>\n"
    ));
    // One property of each kind: the existing ones were filled, none added.
    assert_eq!(
        change
            .xml
            .matches("<hudson.model.ParametersDefinitionProperty>")
            .count(),
        1
    );
    assert_eq!(
        change
            .xml
            .matches("<com.tikal.hudson.plugins.notification.HudsonNotificationProperty")
            .count(),
        1
    );
    assert_wired(&change.xml, &spec);
}

#[test]
fn every_truncation_of_a_config_is_an_error_or_an_edit_never_a_panic() {
    let spec = greg();
    for end in (0..FREESTYLE_FULL.len()).filter(|&i| FREESTYLE_FULL.is_char_boundary(i)) {
        let cut = &FREESTYLE_FULL[..end];
        match ensure_greg_job_config(cut, &spec) {
            Ok(change) => {
                assert!(cut.trim_end().ends_with("</project>"), "{cut}");
                assert!(change.changed);
            }
            Err(JobConfigError::Malformed { .. }) => {}
            Err(other) => panic!("{other} for a cut at {end}"),
        }
    }
}
