//! The one living report comment per pull request (SPEC §8), the full report it links to, and
//! the commit-status summary for repositories with `comments: false`.
//!
//! Rendering goes through a minijinja template (`templates/comment.md.j2`, embedded); every
//! user-provided value is escaped here before it reaches the template (`src/markdown.rs`).
//!
//! Budget: GitHub refuses a comment over 65,536 characters
//! (<https://docs.github.com/en/rest/issues/comments#create-an-issue-comment>, "body" limit).
//! When the body is over `limit_chars`, sections are dropped in this fixed order until it fits:
//! failed tests' output, job summaries, flaky details, failed tests beyond the first 50, the
//! failed tests list, then rows of the jobs table; a last line links the full report. The
//! result is never over `limit_chars` (for any `limit_chars` ≥ 200) and always starts with
//! [`MARKER`].

use minijinja::value::Serde;
use minijinja::{Environment, Value, syntax::SyntaxConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};

use greg_core::provider::CommitState;

use crate::markdown as md;
use crate::model::{JobReport, Totals};
use crate::view::{Flaky, View, latest_per_job, status_emoji};

/// The hidden marker the comment starts with, to find it again.
pub const MARKER: &str = "<!-- greg:report -->";

/// GitHub's limit on a comment's body, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// Failed tests listed before "and N more" once the budget is tight.
pub const FAILED_HEAD: usize = 50;

/// Expected-but-missing job names listed before "and N more".
const WAITING_HEAD: usize = 20;
/// Characters of a test id or message shown in the comment.
const ID_CHARS: usize = 300;
const MESSAGE_CHARS: usize = 300;

const TEMPLATE: &str = include_str!("../templates/comment.md.j2");

/// Everything a comment is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct CommentInput<'a> {
    /// `owner/name`.
    pub repo: &'a str,
    /// Pull request number.
    pub pr: u64,
    /// The pull request's head commit.
    pub head_sha: &'a str,
    /// Every report received for `head_sha`, in arrival order; a job may appear several times
    /// (re-runs), and its latest report is its state.
    pub reports: &'a [JobReport],
    /// Expected job names (`repos[].report.expect`, else the jobs seen on the target's last
    /// commit); may be empty.
    pub expected: &'a [String],
    /// The target branch's latest reports, to show the change in test totals.
    pub baseline: Option<Baseline<'a>>,
    /// The full report page (SPEC §9), linked when sections were left out.
    pub full_report_url: Option<&'a str>,
}

/// The target branch's latest test totals ([`baseline_totals`] of its reports).
#[derive(Debug, Clone, Copy)]
pub struct Baseline<'a> {
    /// The target branch, e.g. `master`.
    pub branch: &'a str,
    /// The commit the totals are of.
    pub sha: &'a str,
    /// Latest report per job, summed.
    pub totals: Totals,
}

/// A rendered comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedComment {
    /// Markdown, starting with [`MARKER`], at most `limit_chars` characters.
    pub body: String,
    /// SHA-256 of `body`, lower-case hex: an edit is skipped when it did not change.
    pub hash: String,
    /// Sections left out to fit, in the order they were dropped: `failed_output`,
    /// `summaries`, `flaky_details`, `failed_tail`, `failed_tests`, `jobs_tail`, `truncated`.
    pub dropped: Vec<&'static str>,
}

/// The commit status greg sets instead of a comment (`comments: false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSummary {
    /// Failure if a job's latest report failed, else error if one errored, else pending while
    /// a job is pending or missing, else success.
    pub state: CommitState,
    /// One line, at most 140 characters: `3/4 jobs, 1,204 tests, 2 failed`.
    pub description: String,
}

/// The latest report of each job, summed: the totals a branch's commit is compared against.
pub fn baseline_totals(reports: &[JobReport]) -> Totals {
    latest_per_job(reports)
        .iter()
        .filter_map(|r| r.tests.as_ref())
        .map(|t| t.totals)
        .sum()
}

/// What a render includes; the budget turns these off one by one.
#[derive(Debug, Clone, Copy)]
struct Options {
    marker: bool,
    output: bool,
    summaries: bool,
    flaky_details: bool,
    failed_tail: bool,
    failed: bool,
    job_rows: Option<usize>,
    footer: bool,
}

/// A section the budget can drop: its name in [`RenderedComment::dropped`], whether this
/// comment has it, and how to turn it off.
type DropStep = (&'static str, bool, fn(&mut Options));

impl Options {
    const ALL: Options = Options {
        marker: true,
        output: true,
        summaries: true,
        flaky_details: true,
        failed_tail: true,
        failed: true,
        job_rows: None,
        footer: false,
    };
}

/// Renders the comment within `limit_chars` characters (normally [`GITHUB_COMMENT_LIMIT`]),
/// dropping sections in the fixed order of the module documentation.
pub fn render_comment(input: &CommentInput, limit_chars: usize) -> RenderedComment {
    let view = View::new(input);
    let fits = |s: &str| s.chars().count() <= limit_chars;
    let mut opts = Options::ALL;
    let mut dropped = Vec::new();
    let mut body = render(input, &view, opts);
    if !fits(&body) {
        opts.footer = true;
        let has_output = view.failed.iter().any(|(_, f)| f.output.is_some());
        let has_summaries = view.latest.iter().any(|r| r.summary_md.is_some());
        let steps: [DropStep; 5] = [
            ("failed_output", has_output, |o| o.output = false),
            ("summaries", has_summaries, |o| o.summaries = false),
            ("flaky_details", !view.flaky.is_empty(), |o| {
                o.flaky_details = false
            }),
            ("failed_tail", view.failed.len() > FAILED_HEAD, |o| {
                o.failed_tail = false
            }),
            ("failed_tests", !view.failed.is_empty(), |o| {
                o.failed = false
            }),
        ];
        let mut done = false;
        for (name, relevant, apply) in steps {
            if !relevant {
                continue;
            }
            apply(&mut opts);
            dropped.push(name);
            body = render(input, &view, opts);
            if fits(&body) {
                done = true;
                break;
            }
        }
        if !done && !view.latest.is_empty() {
            // The largest number of job rows that fits (rendered size grows with rows).
            dropped.push("jobs_tail");
            let (mut lo, mut hi) = (0usize, view.latest.len() - 1);
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                opts.job_rows = Some(mid);
                if fits(&render(input, &view, opts)) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            opts.job_rows = Some(lo);
            body = render(input, &view, opts);
        }
        if !fits(&body) {
            dropped.push("truncated");
            body = hard_truncate(&body, &footer(input), limit_chars);
        }
    }
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    RenderedComment {
        body,
        hash,
        dropped,
    }
}

/// The whole report as Markdown, nothing left out (the "full report" page).
pub fn render_full(input: &CommentInput) -> String {
    let view = View::new(input);
    let opts = Options {
        marker: false,
        ..Options::ALL
    };
    render(input, &view, opts)
}

/// The commit status for repositories with `comments: false`.
pub fn summarize(input: &CommentInput) -> StatusSummary {
    let view = View::new(input);
    let mut parts = vec![format!("{}/{} jobs", view.reported, view.expected_total)];
    if let Some(t) = view.totals {
        parts.push(format!("{} tests", md::number(t.tests)));
        if t.failed > 0 {
            parts.push(format!("{} failed", md::number(t.failed)));
        }
        if t.errors > 0 {
            parts.push(format!("{} errored", md::number(t.errors)));
        }
    }
    if !view.flaky.is_empty() {
        parts.push(format!("{} flaky", md::number(view.flaky.len() as u64)));
    }
    StatusSummary {
        state: view.overall.commit_state(),
        description: md::truncate(&parts.join(", "), 139),
    }
}

/// Files linked in a job's row before "+N more".
const FILES_IN_ROW: usize = 3;

/// A job's row links: its build, then its stored files by their base name (at most
/// [`FILES_IN_ROW`], then `+N`).
fn job_links(r: &JobReport) -> String {
    let mut links: Vec<String> = r
        .build_url
        .as_deref()
        .map(|u| format!("[build]({})", md::url(u)))
        .into_iter()
        .collect();
    for f in r.files.iter().take(FILES_IN_ROW) {
        let base = f.name.rsplit('/').next().unwrap_or(&f.name);
        links.push(format!(
            "[{}]({})",
            md::text(&md::truncate(base, 60)),
            md::url(&f.url)
        ));
    }
    if r.files.len() > FILES_IN_ROW {
        links.push(format!("+{}", r.files.len() - FILES_IN_ROW));
    }
    links.join(" · ")
}

/// The last line when sections were left out; it names GitHub's limit whatever `limit_chars`
/// the caller chose (a smaller one leaves room for a margin).
fn footer(input: &CommentInput) -> String {
    let limit = md::number(GITHUB_COMMENT_LIMIT as u64);
    match input.full_report_url {
        Some(url) => format!(
            "Some sections were left out to fit GitHub's {limit}-character limit: see the [full report]({}).",
            md::url(url)
        ),
        None => format!("Some sections were left out to fit GitHub's {limit}-character limit."),
    }
}

/// The last resort: cut the body so that it and the footer fit; the marker stays first.
fn hard_truncate(body: &str, footer: &str, limit: usize) -> String {
    let footer_chars = footer.chars().count() + 2;
    if limit > footer_chars + MARKER.len() + 1 {
        let keep = limit - footer_chars - 1;
        let head: String = body.chars().take(keep).collect();
        format!("{head}…\n\n{footer}")
    } else {
        body.chars().take(limit).collect()
    }
}

#[derive(Serialize)]
struct Ctx {
    marker: Option<&'static str>,
    emoji: &'static str,
    title: &'static str,
    sha: String,
    jobs: Vec<JobRow>,
    jobs_more: usize,
    reported_line: String,
    totals: Option<TotalsRow>,
    change: Option<String>,
    failed: Option<FailedSection>,
    flaky: Vec<String>,
    summaries: Vec<SummaryRow>,
    footer: Option<String>,
}

#[derive(Serialize)]
struct JobRow {
    name: String,
    emoji: &'static str,
    status: &'static str,
    duration: String,
    link: String,
}

#[derive(Serialize)]
struct TotalsRow {
    tests: String,
    passed: String,
    failed: String,
    errors: String,
    skipped: String,
}

#[derive(Serialize)]
struct FailedSection {
    count: String,
    items: Vec<FailedRow>,
    more: usize,
}

#[derive(Serialize)]
struct FailedRow {
    summary: String,
    bullet: String,
    output: Option<String>,
    fence: String,
    gap: bool,
}

#[derive(Serialize)]
struct SummaryRow {
    job: String,
    body: String,
}

fn render(input: &CommentInput, view: &View, opts: Options) -> String {
    let ctx = context(input, view, opts);
    let mut env = Environment::new();
    let mut syntax = SyntaxConfig::builder();
    syntax.trim_blocks(true).lstrip_blocks(true);
    // The template and its syntax are fixed and tested: failures here are bugs, and the
    // fallback below still gives a body with the marker rather than a panic in the server.
    if let Ok(syntax) = syntax.build() {
        env.set_syntax(syntax);
    }
    let rendered = env
        .template_from_str(TEMPLATE)
        .and_then(|t| t.render(Value::from(Serde(&ctx))));
    match rendered {
        Ok(s) => s,
        Err(e) => format!("{MARKER}\ngreg could not render this report: {e}\n"),
    }
}

fn context(input: &CommentInput, view: &View, opts: Options) -> Ctx {
    let shown = opts
        .job_rows
        .unwrap_or(view.latest.len())
        .min(view.latest.len());
    let jobs = view.latest[..shown]
        .iter()
        .map(|r| JobRow {
            name: md::text(&md::truncate(&r.job, 200)),
            emoji: status_emoji(r.status),
            status: r.status.as_str(),
            duration: r.duration_ms.map(md::duration).unwrap_or_default(),
            link: job_links(r),
        })
        .collect();
    let mut reported_line = format!(
        "**{} of {} expected jobs reported.**",
        view.reported, view.expected_total
    );
    if !view.missing.is_empty() {
        let names: Vec<String> = view
            .missing
            .iter()
            .take(WAITING_HEAD)
            .map(|j| md::code(&md::truncate(j, 200)))
            .collect();
        reported_line.push_str(" Waiting for: ");
        reported_line.push_str(&names.join(", "));
        if view.missing.len() > WAITING_HEAD {
            reported_line.push_str(&format!(" and {} more", view.missing.len() - WAITING_HEAD));
        }
        reported_line.push('.');
    }
    let totals = view.totals.map(|t| TotalsRow {
        tests: md::number(t.tests),
        passed: md::number(t.passed),
        failed: md::number(t.failed),
        errors: md::number(t.errors),
        skipped: md::number(t.skipped),
    });
    let change = match (view.totals, input.baseline) {
        (Some(now), Some(b)) => Some(change_line(now, &b)),
        _ => None,
    };
    Ctx {
        marker: opts.marker.then_some(MARKER),
        emoji: view.overall.emoji(),
        title: view.overall.title(),
        sha: md::code(md::short_sha(input.head_sha)),
        jobs,
        jobs_more: view.latest.len() - shown,
        reported_line,
        totals,
        change,
        failed: failed_section(view, opts),
        flaky: view.flaky.iter().map(|f| flaky_line(f, opts)).collect(),
        summaries: if opts.summaries {
            view.latest
                .iter()
                .filter_map(|r| {
                    r.summary_md.as_deref().map(|s| SummaryRow {
                        job: md::html(&r.job),
                        body: md::summary(s.trim_end()),
                    })
                })
                .collect()
        } else {
            Vec::new()
        },
        footer: opts.footer.then(|| footer(input)),
    }
}

fn change_line(now: Totals, b: &Baseline) -> String {
    let mut parts = Vec::new();
    let delta = now.tests as i128 - b.totals.tests as i128;
    if delta != 0 {
        let sign = if delta > 0 { "+" } else { "−" };
        parts.push(format!(
            "{sign}{} tests",
            md::number(delta.unsigned_abs() as u64)
        ));
    }
    for (name, before, after) in [
        ("failed", b.totals.failed, now.failed),
        ("errors", b.totals.errors, now.errors),
        ("skipped", b.totals.skipped, now.skipped),
    ] {
        if before != after {
            parts.push(format!(
                "{name} {} → {}",
                md::number(before),
                md::number(after)
            ));
        }
    }
    if parts.is_empty() {
        parts.push("no change".to_string());
    }
    format!(
        "{} at {}: {}",
        md::code(&md::truncate(b.branch, 100)),
        md::code(md::short_sha(b.sha)),
        parts.join(", ")
    )
}

fn failed_section(view: &View, opts: Options) -> Option<FailedSection> {
    if !opts.failed || view.failed.is_empty() {
        return None;
    }
    let take = if opts.failed_tail {
        view.failed.len()
    } else {
        FAILED_HEAD.min(view.failed.len())
    };
    let mut items: Vec<FailedRow> = view.failed[..take]
        .iter()
        .map(|(job, f)| {
            let id = md::truncate(&f.id, ID_CHARS);
            let message = f
                .message
                .as_deref()
                .map(|m| md::truncate(m.lines().next().unwrap_or_default(), MESSAGE_CHARS));
            let kind = match f.kind {
                crate::model::FailureKind::Failure => "",
                crate::model::FailureKind::Error => " (error)",
            };
            let summary = format!(
                "<code>{}</code> · {}{kind}{}",
                md::html(&id),
                md::html(job),
                message
                    .as_deref()
                    .map(|m| format!(": {}", md::html(m)))
                    .unwrap_or_default()
            );
            let bullet = format!(
                "{} · {}{kind}{}",
                md::code(&id),
                md::text(job),
                message
                    .as_deref()
                    .map(|m| format!(": {}", md::text(m)))
                    .unwrap_or_default()
            );
            let output = f
                .output
                .as_deref()
                .filter(|o| opts.output && !o.trim().is_empty())
                .map(str::to_string);
            FailedRow {
                fence: output.as_deref().map(md::fence).unwrap_or_default(),
                summary,
                bullet,
                output,
                gap: false,
            }
        })
        .collect();
    for i in 0..items.len() {
        let next_is_block = items.get(i + 1).is_none_or(|n| n.output.is_some());
        items[i].gap = items[i].output.is_none() && next_is_block;
    }
    Some(FailedSection {
        count: md::number(view.failed.len() as u64),
        items,
        more: view.failed.len() - take,
    })
}

fn flaky_line(f: &Flaky, opts: Options) -> String {
    let id = md::code(&md::truncate(&f.id, ID_CHARS));
    if !opts.flaky_details {
        return id;
    }
    let how = if f.within_run {
        "passed on retry"
    } else {
        "failed, then passed in a later run"
    };
    let jobs: Vec<String> = f.jobs.iter().map(|j| md::text(j)).collect();
    format!("{id}: {how} ({})", jobs.join(", "))
}
