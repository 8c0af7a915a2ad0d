//! The body of `POST /api/reports` (`greg_report::parse_body`) and the JUnit files it carries
//! (`greg_report::job_report`) must not panic on any input; a body that passes renders a
//! comment within GitHub's limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = greg_report::parse_body(data) else {
        return;
    };
    let Ok(report) = greg_report::job_report(&body, 0) else {
        return;
    };
    let reports = [report];
    let input = greg_report::CommentInput {
        repo: &body.repo,
        pr: 1,
        head_sha: &body.sha,
        reports: &reports,
        expected: &[],
        baseline: None,
        full_report_url: None,
    };
    let rendered = greg_report::render_comment(&input, greg_report::GITHUB_COMMENT_LIMIT);
    assert!(rendered.body.chars().count() <= greg_report::GITHUB_COMMENT_LIMIT);
    let _ = greg_report::render_full_html(&input);
});
