//! The report comment, the full report and the status summary: snapshots of the text people
//! read, the budget's drop order, and a property test of the limit.

use greg_core::provider::CommitState;
use greg_report::{
    Baseline, CaseOutcome, CommentInput, FailedTest, FailureKind, GITHUB_COMMENT_LIMIT, JobReport,
    JobStatus, MARKER, Outcome, TestRun, Totals, baseline_totals, render_comment, render_full,
    summarize,
};
use proptest::prelude::*;

fn totals(tests: u64, passed: u64, failed: u64, errors: u64, skipped: u64) -> Totals {
    Totals {
        tests,
        passed,
        failed,
        errors,
        skipped,
    }
}

fn report(job: &str, status: JobStatus, received_ms: u64) -> JobReport {
    JobReport {
        job: job.to_string(),
        status,
        build_url: Some(format!("https://ci.example/job/{job}/7/")),
        duration_ms: Some(252_000),
        summary_md: None,
        tests: None,
        received_ms,
        files: Vec::new(),
    }
}

fn case(id: &str, outcome: Outcome) -> CaseOutcome {
    CaseOutcome {
        id: id.to_string(),
        outcome,
    }
}

fn failure(id: &str, message: &str, output: Option<&str>) -> FailedTest {
    FailedTest {
        id: id.to_string(),
        kind: FailureKind::Failure,
        message: Some(message.to_string()),
        output: output.map(str::to_string),
    }
}

/// unit: failed (2 failing tests with output; `net::retry` failed in a first run, then passed
/// in the re-run); lint: success with a summary; integration: pending; docs: expected, missing.
fn three_jobs() -> Vec<JobReport> {
    let mut unit_first = report("unit", JobStatus::Failure, 1);
    unit_first.tests = Some(TestRun {
        totals: totals(3, 2, 1, 0, 0),
        duration_ms: Some(1000),
        failures: vec![failure("net::retry", "timed out", None)],
        cases: vec![
            case("net::retry", Outcome::Failed),
            case("a::ok", Outcome::Passed),
            case("b::ok", Outcome::Passed),
        ],
        flaky: vec![],
    });
    let mut unit = report("unit", JobStatus::Failure, 3);
    unit.summary_md = Some("Coverage: **83%** <sub>(+1%)</sub>\n\n```\nunclosed fence".to_string());
    unit.tests = Some(TestRun {
        totals: totals(1204, 1189, 2, 1, 12),
        duration_ms: Some(250_000),
        failures: vec![
            failure(
                "parser::tests::pipes|and`ticks`",
                "expected `a|b`, got <none>",
                Some("thread 'pipes' panicked\n```\nleft: 1\nright: 2"),
            ),
            FailedTest {
                id: "db::migrate".to_string(),
                kind: FailureKind::Error,
                message: Some("connection refused\nsecond line".to_string()),
                output: Some("Error: connection refused (os error 111)".to_string()),
            },
            failure("ui::snapshot_*header*", "snapshot differs", None),
        ],
        cases: vec![
            case("net::retry", Outcome::Passed),
            case("parser::tests::pipes|and`ticks`", Outcome::Failed),
            case("db::migrate", Outcome::Error),
            case("ui::snapshot_*header*", Outcome::Failed),
        ],
        flaky: vec!["cache::evict".to_string()],
    });
    let mut lint = report("lint", JobStatus::Success, 2);
    lint.duration_ms = Some(12_400);
    lint.summary_md = Some("No warnings. </details> <!-- greg:report -->".to_string());
    let mut integration = report("integration", JobStatus::Pending, 4);
    integration.duration_ms = None;
    integration.build_url = None;
    vec![unit_first, lint, unit, integration]
}

fn expected() -> Vec<String> {
    ["unit", "lint", "integration", "docs"]
        .map(String::from)
        .to_vec()
}

fn input<'a>(reports: &'a [JobReport], expected: &'a [String]) -> CommentInput<'a> {
    CommentInput {
        repo: "acme/widgets",
        pr: 42,
        head_sha: "0123456789abcdef0123456789abcdef01234567",
        reports,
        expected,
        baseline: Some(Baseline {
            branch: "master",
            sha: "fedcba9876543210fedcba9876543210fedcba98",
            totals: totals(1192, 1180, 0, 0, 12),
        }),
        full_report_url: Some("https://greg.example/reports/acme/widgets/42"),
    }
}

#[test]
fn comment_with_three_jobs_flaky_baseline_and_summaries() {
    let reports = three_jobs();
    let expected = expected();
    let rendered = render_comment(&input(&reports, &expected), GITHUB_COMMENT_LIMIT);
    assert!(rendered.body.starts_with(MARKER));
    assert!(rendered.dropped.is_empty());
    assert_eq!(rendered.hash.len(), 64);
    insta::assert_snapshot!(rendered.body);
}

#[test]
fn the_hash_changes_only_with_the_body() {
    let reports = three_jobs();
    let expected = expected();
    let a = render_comment(&input(&reports, &expected), GITHUB_COMMENT_LIMIT);
    let b = render_comment(&input(&reports, &expected), GITHUB_COMMENT_LIMIT);
    assert_eq!(a, b);
    let c = render_comment(&input(&reports[..2], &expected), GITHUB_COMMENT_LIMIT);
    assert_ne!(a.hash, c.hash);
}

#[test]
fn full_report() {
    let reports = three_jobs();
    let expected = expected();
    insta::assert_snapshot!(render_full(&input(&reports, &expected)));
}

#[test]
fn status_summary() {
    let reports = three_jobs();
    let expected = expected();
    let summary = summarize(&input(&reports, &expected));
    assert_eq!(summary.state, CommitState::Failure);
    insta::assert_snapshot!(summary.description, @"3/4 jobs, 1,204 tests, 2 failed, 1 errored, 2 flaky");

    let green = [report("unit", JobStatus::Success, 1)];
    let s = summarize(&input(&green, &[]));
    assert_eq!(s.state, CommitState::Success);
    assert_eq!(s.description, "1/1 jobs");
    let s = summarize(&input(&green, &expected));
    assert_eq!(
        s.state,
        CommitState::Pending,
        "lint, integration and docs are missing"
    );
    let s = summarize(&input(&[], &[]));
    assert_eq!(
        (s.state, s.description.as_str()),
        (CommitState::Pending, "0/0 jobs")
    );
    let errored = [report("unit", JobStatus::Error, 1)];
    assert_eq!(summarize(&input(&errored, &[])).state, CommitState::Error);
}

#[test]
fn baseline_totals_sum_the_latest_report_of_each_job() {
    let reports = three_jobs();
    // unit's second report replaces its first; lint and integration have no tests.
    assert_eq!(baseline_totals(&reports), totals(1204, 1189, 2, 1, 12));
    assert_eq!(baseline_totals(&[]), Totals::default());
}

/// A commit with many failing tests with long outputs, and long summaries.
fn big(jobs: usize, failures_per_job: usize, output_lines: usize) -> Vec<JobReport> {
    (0..jobs)
        .map(|j| {
            let mut r = report(&format!("job-{j:03}"), JobStatus::Failure, j as u64);
            r.summary_md = Some(format!(
                "summary of job {j}\n\n{}",
                "lorem ipsum ".repeat(300)
            ));
            let failures: Vec<FailedTest> = (0..failures_per_job)
                .map(|i| {
                    let output = (0..output_lines)
                        .map(|l| format!("line {l} of the output of test {i}"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    failure(
                        &format!("suite{j}::test_{i:04}"),
                        "assertion failed",
                        Some(&output),
                    )
                })
                .collect();
            r.tests = Some(TestRun {
                totals: totals(failures_per_job as u64, 0, failures_per_job as u64, 0, 0),
                duration_ms: None,
                cases: failures
                    .iter()
                    .map(|f| case(&f.id, Outcome::Failed))
                    .collect(),
                failures,
                flaky: vec![format!("suite{j}::sometimes")],
            });
            r
        })
        .collect()
}

#[test]
fn over_budget_drops_output_then_summaries() {
    let reports = big(3, 20, 20);
    let no_expected: Vec<String> = Vec::new();
    let input = input(&reports, &no_expected);
    assert!(render_full(&input).chars().count() > 20_000);
    let rendered = render_comment(&input, 12_000);
    assert!(rendered.body.chars().count() <= 12_000);
    assert_eq!(rendered.dropped, ["failed_output", "summaries"]);
    insta::assert_snapshot!(rendered.body);
}

#[test]
fn far_over_budget_drops_in_the_fixed_order() {
    let reports = big(1500, 2, 1);
    let no_expected: Vec<String> = Vec::new();
    let rendered = render_comment(&input(&reports, &no_expected), GITHUB_COMMENT_LIMIT);
    assert!(rendered.body.chars().count() <= GITHUB_COMMENT_LIMIT);
    assert_eq!(
        rendered.dropped,
        [
            "failed_output",
            "summaries",
            "flaky_details",
            "failed_tail",
            "failed_tests",
            "jobs_tail"
        ]
    );
    assert!(rendered.body.contains("more jobs* |"));
    assert!(rendered.body.ends_with(
        "Some sections were left out to fit GitHub's 65,536-character limit: see the [full report](<https://greg.example/reports/acme/widgets/42>).\n"
    ));
}

#[test]
fn failed_tests_beyond_50_are_counted() {
    let reports = big(1, 120, 1);
    let no_expected: Vec<String> = Vec::new();
    let mut input = input(&reports, &no_expected);
    input.full_report_url = None;
    // Room for 50 bullets but not 120.
    let rendered = render_comment(&input, 4_000);
    assert_eq!(
        rendered.dropped,
        ["failed_output", "summaries", "flaky_details", "failed_tail"]
    );
    assert!(rendered.body.contains("*…and 70 more.*"));
    assert!(
        rendered
            .body
            .ends_with("Some sections were left out to fit GitHub's 65,536-character limit.\n")
    );
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z:|`<>*_ \\n]{0,40}",
        any::<String>(),
        ("[a-z`|]{1,5}", 0usize..3000).prop_map(|(s, n)| s.repeat(n)),
    ]
}

fn arb_report() -> impl Strategy<Value = JobReport> {
    (
        "[a-z0-9 |`-]{1,30}",
        prop_oneof![
            Just(JobStatus::Success),
            Just(JobStatus::Failure),
            Just(JobStatus::Error),
            Just(JobStatus::Pending)
        ],
        proptest::option::of(arb_text()),
        proptest::collection::vec(
            (arb_text(), arb_text(), proptest::option::of(arb_text())),
            0..40,
        ),
        proptest::collection::vec(arb_text(), 0..5),
    )
        .prop_map(|(job, status, summary, fails, flaky)| {
            let failures: Vec<FailedTest> = fails
                .into_iter()
                .map(|(id, message, output)| FailedTest {
                    id,
                    kind: FailureKind::Failure,
                    message: Some(message),
                    output,
                })
                .collect();
            JobReport {
                job,
                status,
                build_url: Some("https://ci.example/b|1 2".to_string()),
                duration_ms: Some(1234),
                summary_md: summary,
                tests: Some(TestRun {
                    totals: totals(failures.len() as u64, 0, failures.len() as u64, 0, 0),
                    duration_ms: None,
                    cases: failures
                        .iter()
                        .map(|f| case(&f.id, Outcome::Failed))
                        .collect(),
                    failures,
                    flaky,
                }),
                received_ms: 0,
                files: Vec::new(),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn never_over_the_limit_and_always_marked(
        reports in proptest::collection::vec(arb_report(), 0..25),
        expected in proptest::collection::vec("[a-z|`]{1,300}", 0..200),
        branch in "[a-z/|`]{1,500}",
        limit in 200usize..70_000,
    ) {
        let input = CommentInput {
            repo: "acme/widgets",
            pr: 1,
            head_sha: "abc1234",
            reports: &reports,
            expected: &expected,
            baseline: Some(Baseline { branch: &branch, sha: "def5678", totals: Totals::default() }),
            full_report_url: Some("https://greg.example/r/1"),
        };
        let rendered = render_comment(&input, limit);
        prop_assert!(rendered.body.chars().count() <= limit, "{} > {limit}", rendered.body.chars().count());
        prop_assert!(rendered.body.starts_with(MARKER));
        let summary = summarize(&input);
        prop_assert!(summary.description.chars().count() <= 140);
    }
}

#[test]
fn hostile_names_keep_the_tables_and_blocks_intact() {
    use pulldown_cmark::{Event, Options as MdOptions, Parser, Tag, TagEnd};
    let mut a = report("a|b `x` <i>", JobStatus::Failure, 1);
    a.build_url = Some("https://ci.example/a|b/".to_string());
    a.summary_md = Some("</details>\n<details>\n```\nopen".to_string());
    a.tests = Some(TestRun {
        totals: totals(1, 0, 1, 0, 0),
        duration_ms: None,
        failures: vec![failure("t|1`", "m|</summary>", Some("````\n</details>"))],
        cases: vec![case("t|1`", Outcome::Failed)],
        flaky: vec![],
    });
    let reports = [a, report("c", JobStatus::Success, 2)];
    let no_expected: Vec<String> = Vec::new();
    let body = render_comment(&input(&reports, &no_expected), GITHUB_COMMENT_LIMIT).body;
    let mut rows = Vec::new();
    let mut cells = 0;
    let mut tables = 0;
    let (mut opens, mut closes) = (0, 0);
    for event in Parser::new_ext(&body, MdOptions::ENABLE_TABLES) {
        match event {
            // Outside code: the HTML GitHub would see.
            Event::Html(h) | Event::InlineHtml(h) => {
                opens += h.matches("<details>").count();
                closes += h.matches("</details>").count();
            }
            Event::Start(Tag::Table(_)) => tables += 1,
            Event::Start(Tag::TableCell) => cells += 1,
            Event::End(TagEnd::TableRow) | Event::End(TagEnd::TableHead) => {
                rows.push(cells);
                cells = 0;
            }
            _ => {}
        }
    }
    assert_eq!(tables, 2, "jobs and totals:\n{body}");
    assert_eq!(rows, [4, 4, 4, 5, 5], "every row keeps its cells:\n{body}");
    assert_eq!((opens, closes), (3, 3), "{body}");
}
