//! Real JUnit XML files of each flavor (tests/data/junit/SOURCES.md says where each comes
//! from), with totals counted by hand from their `<testcase>` elements; then bad input.

use greg_report::{FailureKind, Outcome, TestRun, Totals, parse_junit};

fn parse_file(name: &str) -> TestRun {
    let path = format!("{}/tests/data/junit/{name}", env!("CARGO_MANIFEST_DIR"));
    let xml = std::fs::read_to_string(&path).unwrap();
    parse_junit(name, &xml).unwrap()
}

fn totals(tests: u64, passed: u64, failed: u64, errors: u64, skipped: u64) -> Totals {
    Totals {
        tests,
        passed,
        failed,
        errors,
        skipped,
    }
}

#[test]
fn surefire_error_with_properties() {
    let run = parse_file("surefire-TEST-surefire.MyTest.xml");
    // One <testcase> with an <error>.
    assert_eq!(run.totals, totals(1, 0, 0, 1, 0));
    let f = &run.failures[0];
    assert_eq!(f.id, "surefire.MyTest::test");
    assert_eq!(f.kind, FailureKind::Error);
    assert_eq!(
        f.message.as_deref(),
        Some("java.lang.IndexOutOfBoundsException: msg")
    );
    let output = f.output.as_deref().unwrap();
    assert!(
        output.starts_with("java.lang.RuntimeException: java.lang.IndexOutOfBoundsException: msg")
    );
    assert_eq!(
        output.lines().count(),
        20,
        "the first 20 lines of a 33-line trace"
    );
    assert!(run.flaky.is_empty());
}

#[test]
fn nextest_rerun_and_flaky() {
    let run = parse_file("nextest-tests-junit.xml");
    // test_cwd passed; test_failure_assert failed (two <rerunFailure>, still failing);
    // test_flaky_mod_4 passed after three <flakyFailure>.
    assert_eq!(run.totals, totals(3, 2, 1, 0, 0));
    assert_eq!(run.duration_ms, Some(23));
    assert_eq!(
        run.flaky,
        vec!["nextest-tests::basic::test_flaky_mod_4".to_string()]
    );
    assert_eq!(run.failures.len(), 1);
    let f = &run.failures[0];
    assert_eq!(f.id, "nextest-tests::basic::test_failure_assert");
    assert_eq!(f.kind, FailureKind::Failure);
    assert_eq!(
        f.message.as_deref(),
        Some("thread 'test_failure_assert' panicked at tests/basic.rs:19:5:")
    );
    let output = f.output.as_deref().unwrap();
    assert!(
        output.contains("assertion `left == right` failed"),
        "{output}"
    );
    assert!(
        output.contains("running 1 test"),
        "system-out follows: {output}"
    );
    let outcomes: Vec<Outcome> = run.cases.iter().map(|c| c.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Passed, Outcome::Failed, Outcome::Passed]
    );
}

#[test]
fn pytest_one_suite_in_testsuites() {
    let run = parse_file("pytest-report-tb-short.xml");
    assert_eq!(run.totals, totals(1, 0, 1, 0, 0));
    assert_eq!(run.duration_ms, Some(316));
    let f = &run.failures[0];
    assert_eq!(
        f.id,
        "product_changes.tests.first_test.MyTestCase::test_something"
    );
    assert_eq!(f.message.as_deref(), Some("assert False"));
}

#[test]
fn pytest_counts_come_from_testcases_not_attributes() {
    let run = parse_file("python-xunit-pytest.xml");
    // The suite says tests="15"; it holds 10 <testcase>: 6 pass, 2 <failure>, 2 <skipped>
    // (one of them pytest's xfail).
    assert_eq!(run.totals, totals(10, 6, 2, 0, 2));
    assert_eq!(run.duration_ms, Some(19));
    let ids: Vec<&str> = run.failures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "tests.test_lib::test_always_fail",
            "tests.test_lib::test_error"
        ]
    );
    assert_eq!(run.failures[1].message.as_deref(), Some("Exception: error"));
    assert!(
        run.failures[0]
            .output
            .as_deref()
            .unwrap()
            .contains("> assert False")
    );
    assert_eq!(
        run.cases.last().map(|c| c.id.as_str()),
        Some("custom_classname::test_with_record_xml_attribute")
    );
}

#[test]
fn gradle_testsuite_root() {
    let run = parse_file("gradle-spring-failure.xml");
    assert_eq!(run.totals, totals(3, 2, 1, 0, 0));
    assert_eq!(run.duration_ms, Some(2638));
    let f = &run.failures[0];
    assert_eq!(
        f.id,
        "com.victor.paymentreporting.app.PowerDroidControllerTest::failsToDemonstrateJUnitAnnotations()"
    );
    let message = f.message.as_deref().unwrap();
    assert!(message.starts_with(
        "java.lang.AssertionError: Response content\nExpected: a string containing \"NOT_GONK\""
    ));
    assert!(
        f.output
            .as_deref()
            .unwrap()
            .contains("\tat org.gradle.api.internal.tasks.testing.worker.TestWorker.execute")
    );
}

#[test]
fn jest_junit_suites_with_counts() {
    let run = parse_file("jest-junit.xml");
    // Suite "Test 1": 1 pass, 3 <failure>; suite "undefined": 1 <failure>, 1 <skipped/>.
    assert_eq!(run.totals, totals(6, 1, 4, 0, 1));
    assert_eq!(run.duration_ms, Some(1349));
    // jest-junit repeats the title as classname: the id is the title alone.
    assert_eq!(run.cases[0].id, "Test 1 Passing test");
    // No `message` attribute: the first line of the text stands in.
    assert_eq!(
        run.failures[0].message.as_deref(),
        Some("Error: expect(received).toBeTruthy()")
    );
    assert!(
        run.failures[0]
            .output
            .as_deref()
            .unwrap()
            .contains("at new Promise (<anonymous>)")
    );
}

#[test]
fn surefire_flaky_failure_marks_a_passing_test_flaky() {
    // The shape of Surefire's TEST-org.acme.FlakyTest.xml fixture (see SOURCES.md), trimmed.
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuite version="3.0.2" name="org.acme.FlakyTest" time="1.324" tests="1" errors="0" skipped="0" failures="0">
  <testcase name="testFlaky" classname="org.acme.FlakyTest" time="0.034">
    <flakyFailure message="expected: &lt;1&gt; but was: &lt;0&gt;" type="org.opentest4j.AssertionFailedError">
      <stackTrace><![CDATA[org.opentest4j.AssertionFailedError: expected: <1> but was: <0>]]></stackTrace>
      <system-out><![CDATA[started]]></system-out>
    </flakyFailure>
  </testcase>
  <testcase name="testStable" classname="org.acme.FlakyTest" time="0.001">
    <failure message="boom" type="java.lang.AssertionError">trace</failure>
    <rerunFailure message="boom again" type="java.lang.AssertionError">trace</rerunFailure>
  </testcase>
</testsuite>"#;
    let run = parse_junit("TEST-org.acme.FlakyTest.xml", xml).unwrap();
    assert_eq!(run.totals, totals(2, 1, 1, 0, 0));
    assert_eq!(run.flaky, vec!["org.acme.FlakyTest::testFlaky".to_string()]);
    assert_eq!(run.failures[0].id, "org.acme.FlakyTest::testStable");
    assert_eq!(run.duration_ms, Some(1324));
}

#[test]
fn gradle_suite_output_is_used_when_the_case_has_none() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="a.BTest" tests="1" skipped="0" failures="1" errors="0" timestamp="2024-01-01T00:00:00" hostname="h" time="0.5">
  <properties/>
  <testcase name="fails()" classname="a.BTest" time="0.4">
    <failure message="nope" type="java.lang.AssertionError">java.lang.AssertionError: nope</failure>
  </testcase>
  <system-out><![CDATA[hello from the class
]]></system-out>
  <system-err><![CDATA[]]></system-err>
</testsuite>"#;
    let run = parse_junit("TEST-a.BTest.xml", xml).unwrap();
    assert_eq!(
        run.failures[0].output.as_deref(),
        Some("java.lang.AssertionError: nope\nhello from the class")
    );
}

#[test]
fn output_is_cut_to_4_kib_and_ansi_is_removed() {
    let long_line = "é".repeat(5000);
    let xml = format!(
        "<testsuite><testcase name=\"t\"><failure>\u{1b}[31mred\u{1b}[0m\n{long_line}</failure></testcase></testsuite>"
    );
    let run = parse_junit("f.xml", &xml).unwrap();
    let out = run.failures[0].output.as_deref().unwrap();
    assert!(out.len() <= 4096);
    assert!(out.starts_with("red\né"));
    assert_eq!(run.failures[0].message.as_deref(), Some("red"));
}

#[test]
fn bad_input_names_the_file() {
    for (xml, reason) in [
        ("", "empty file"),
        ("   \n", "empty file"),
        (
            "hello, world",
            "ends before a complete <testsuites> or <testsuite> element",
        ),
        (
            "<html><body>hi</body></html>",
            "ends before a complete <testsuites> or <testsuite> element",
        ),
        (
            "<testsuite><testcase name=\"a\">",
            "ends before a complete <testsuites> or <testsuite> element",
        ),
    ] {
        let err = parse_junit("build/junit.xml", xml).unwrap_err();
        assert_eq!(err.file, "build/junit.xml");
        assert_eq!(
            err.to_string(),
            format!("build/junit.xml: not JUnit XML: {reason}"),
            "{xml:?}"
        );
    }
    let err = parse_junit(
        "x.xml",
        "<testsuite><testcase name=\"a\"></testsuit></testsuite>",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("x.xml: not JUnit XML: malformed XML: "),
        "{err}"
    );
    let err = parse_junit("t.xml", "<testsuite tests=\"many\"></testsuite>").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("t.xml: not JUnit XML: an attribute is not a whole number"),
        "{err}"
    );
}
