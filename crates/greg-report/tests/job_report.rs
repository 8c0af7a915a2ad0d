//! A body with several JUnit files into the stored [`JobReport`], and its JSON round trip.

use greg_report::{JobReport, JobStatus, Totals, job_report, parse_body};

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/junit/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

fn body_with(junit: serde_json::Value) -> Vec<u8> {
    serde_json::json!({
        "repo": "acme/widgets", "sha": "abc1234", "pr": 3, "job": "unit",
        "status": "failure", "duration_ms": 61_000, "summary_md": "hi",
        "junit": junit,
    })
    .to_string()
    .into_bytes()
}

#[test]
fn files_are_merged_in_order() {
    let bytes = body_with(serde_json::json!([
        {"name": "target/nextest/ci/junit.xml", "xml": data("nextest-tests-junit.xml")},
        data("jest-junit.xml"),
    ]));
    let body = parse_body(&bytes).unwrap();
    let report = job_report(&body, 1_700_000_000_000).unwrap();
    assert_eq!(report.job, "unit");
    assert_eq!(report.status, JobStatus::Failure);
    assert_eq!(report.received_ms, 1_700_000_000_000);
    let tests = report.tests.as_ref().unwrap();
    // nextest 3 (2 pass, 1 fail) + jest-junit 6 (1 pass, 4 fail, 1 skipped).
    assert_eq!(
        tests.totals,
        Totals {
            tests: 9,
            passed: 3,
            failed: 5,
            errors: 0,
            skipped: 1
        }
    );
    assert_eq!(tests.duration_ms, Some(23 + 1349));
    assert_eq!(tests.failures.len(), 5);
    assert_eq!(
        tests.failures[0].id,
        "nextest-tests::basic::test_failure_assert"
    );
    assert_eq!(tests.cases.len(), 9);
    assert_eq!(tests.flaky, ["nextest-tests::basic::test_flaky_mod_4"]);

    let json = serde_json::to_string(&report).unwrap();
    let back: JobReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn no_junit_means_no_tests() {
    let body = parse_body(&body_with(serde_json::json!([]))).unwrap();
    assert_eq!(job_report(&body, 5).unwrap().tests, None);
}

#[test]
fn a_bad_file_is_named() {
    let bytes = body_with(serde_json::json!([
        data("pytest-report-tb-short.xml"),
        "<html>nope</html>",
        {"name": "reports/TEST-x.xml", "xml": ""},
    ]));
    let body = parse_body(&bytes).unwrap();
    let err = job_report(&body, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "junit[1]: not JUnit XML: ends before a complete <testsuites> or <testsuite> element"
    );
    let body = parse_body(&body_with(
        serde_json::json!([{"name": "reports/TEST-x.xml", "xml": ""}]),
    ))
    .unwrap();
    assert_eq!(
        job_report(&body, 0).unwrap_err().to_string(),
        "reports/TEST-x.xml: not JUnit XML: empty file"
    );
}
