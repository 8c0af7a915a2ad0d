//! greg's report model (SPEC §8, "kome"): CI jobs send their results to greg, and greg keeps one
//! living comment per pull request.
//!
//! This crate is pure: no network, no files, no clock, no database. The server and the
//! `greg report` CLI do the IO and call into it:
//!
//! - [`body`]: the JSON body of `POST /api/reports` ([`ReportBody`], [`parse_body`]).
//! - [`junit`]: JUnit XML of the common flavors into a [`TestRun`] ([`parse_junit`]).
//! - [`model`]: what the server stores per received report ([`JobReport`], [`job_report`]).
//! - [`page`]: the full report as an HTML page ([`render_full_html`]).
//! - [`comment`]: the pull-request comment, its budget, the full report and the commit-status
//!   summary ([`render_comment`], [`render_full`], [`summarize`]).
//!
//! Architecture invariant: nothing here reads the time; `received_ms` is passed in by the caller.
#![warn(missing_docs)]

pub mod body;
pub mod comment;
pub mod junit;
mod markdown;
pub mod model;
pub mod page;
mod view;

pub use body::{BodyError, JobStatus, JunitFile, MAX_BODY_BYTES, ReportBody, parse_body};
pub use comment::{
    Baseline, CommentInput, GITHUB_COMMENT_LIMIT, MARKER, RenderedComment, StatusSummary,
    baseline_totals, render_comment, render_full, summarize,
};
pub use junit::{JunitError, parse_junit};
pub use model::{
    CaseOutcome, FailedTest, FailureKind, JobReport, Outcome, StoredFile, TestRun, Totals,
    job_report,
};
pub use page::render_full_html;
