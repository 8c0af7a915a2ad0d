//! Property tests of the untrusted input of `POST /api/reports`: `parse_body` never panics on
//! any bytes, `parse_junit` never panics on any text or on JUnit-shaped XML with random
//! names, text and numbers, and whatever passes renders a comment within the limit. The
//! cargo-fuzz target `report_body` (fuzz/, docs/fuzzing.md) checks the same for longer.

use greg_report::{CommentInput, GITHUB_COMMENT_LIMIT, parse_body, parse_junit, render_comment};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_a_body_or_a_refusal(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_body(&bytes).map_err(|e| e.to_string());
    }

    #[test]
    fn any_text_is_junit_or_a_refusal(xml in ".{0,300}") {
        let _ = parse_junit("x.xml", &xml).map_err(|e| e.to_string());
    }

    #[test]
    fn junit_shaped_input_renders_within_the_limit(
        name in ".{0,40}",
        message in ".{0,200}",
        output in ".{0,400}",
        tests in "[0-9-]{0,6}",
        time in "[0-9.,e-]{0,8}",
    ) {
        let attr = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;");
        let text = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
        let xml = format!(
            "<testsuite name=\"s\" tests=\"{}\" time=\"{}\"><testcase name=\"{}\" classname=\"c\">\
             <failure message=\"{}\">{}</failure><system-out>{}</system-out></testcase></testsuite>",
            attr(&tests), attr(&time), attr(&name), attr(&message), text(&output), text(&output)
        );
        let body = serde_json::json!({
            "repo": "acme/widgets",
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "job": "unit",
            "status": "failure",
            "junit": [xml],
        });
        let bytes = serde_json::to_vec(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Ok(body) = parse_body(&bytes) else { return Ok(()); };
        let Ok(report) = greg_report::job_report(&body, 0) else { return Ok(()); };
        let reports = [report];
        let input = CommentInput {
            repo: "acme/widgets",
            pr: 1,
            head_sha: &body.sha,
            reports: &reports,
            expected: &[],
            baseline: None,
            full_report_url: None,
        };
        let rendered = render_comment(&input, GITHUB_COMMENT_LIMIT);
        prop_assert!(rendered.body.chars().count() <= GITHUB_COMMENT_LIMIT);
        prop_assert!(rendered.body.starts_with(greg_report::MARKER));
    }
}
