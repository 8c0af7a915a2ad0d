//! JUnit XML into a [`TestRun`].
//!
//! There is no single JUnit XML standard; greg reads what the common tools write:
//! - Maven Surefire: `<testsuite>` root, `<flakyFailure>`/`<flakyError>` on a test that passed
//!   on a rerun, `<rerunFailure>`/`<rerunError>` on one that kept failing
//!   (<https://maven.apache.org/surefire/maven-surefire-plugin/xsd/surefire-test-report-3.0.2.xsd>).
//! - pytest `--junitxml`: `<testsuites>` root with one `<testsuite name="pytest">`.
//! - cargo-nextest: `<testsuites>` root, the same flaky/rerun elements for retries
//!   (<https://nexte.st/docs/machine-readable/junit/>).
//! - Gradle: one `<testsuite>` file per class, `<system-out>` at the suite level.
//! - jest-junit: `<testsuites>` root with counts as attributes.
//!
//! Parsing goes through the `junit-parser` crate (see docs/dependencies.md), which handles all
//! of the above including the flaky and rerun elements; this module maps its tree to greg's
//! model. Counts come from the `<testcase>` elements, not from the `tests=`/`failures=`
//! attributes, which some writers get wrong.
//!
//! One pass of greg's own comes first ([`entities_to_cdata`]): junit-parser 1.7 on quick-xml
//! 0.42 drops entity references in element text (`&lt;`, `&apos;`, `&#10;` arrive as separate
//! `GeneralRef` events it ignores) and splits the text around them, so a failure text with an
//! entity is turned into a CDATA section holding the resolved text before junit-parser reads it.
//! The same pass finds malformed XML.

use std::borrow::Cow;
use std::io::Cursor;

use quick_xml::events::Event;

use junit_parser::{TestCase, TestStatus, TestSuite};

use crate::model::{CaseOutcome, FailedTest, FailureKind, Outcome, TestRun};

/// Lines of output kept per failed test.
pub const OUTPUT_LINES: usize = 20;
/// Bytes of output kept per failed test.
pub const OUTPUT_BYTES: usize = 4 * 1024;
/// Characters of a failure message kept.
pub const MESSAGE_CHARS: usize = 1000;

/// A JUnit file that could not be read (a 400 naming the file, SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: not JUnit XML: {reason}")]
pub struct JunitError {
    /// The file's name ([`crate::JunitFile::name`]).
    pub file: String,
    /// What is wrong, one line.
    pub reason: String,
}

/// Parses one JUnit XML file named `file_name` (for the error only).
///
/// # Errors
/// [`JunitError`] when `xml` is empty, not well-formed XML, or has no `<testsuites>` or
/// `<testsuite>` root.
pub fn parse_junit(file_name: &str, xml: &str) -> Result<TestRun, JunitError> {
    let fail = |reason: String| JunitError {
        file: file_name.to_string(),
        reason,
    };
    if xml.trim().is_empty() {
        return Err(fail("empty file".to_string()));
    }
    let xml = entities_to_cdata(xml).map_err(|e| fail(one_line(&format!("malformed XML: {e}"))))?;
    let suites =
        junit_parser::from_reader(Cursor::new(xml.as_bytes())).map_err(|e| fail(reason(&e)))?;
    let mut run = TestRun::default();
    let mut seconds = if suites.time > 0.0 {
        Some(suites.time)
    } else {
        None
    };
    let top_level_time: f64 = suites
        .suites
        .iter()
        .map(|s| s.time)
        .filter(|t| *t > 0.0)
        .sum();
    if seconds.is_none() && top_level_time > 0.0 {
        seconds = Some(top_level_time);
    }
    for suite in &suites.suites {
        walk_suite(suite, &mut run);
    }
    run.duration_ms = seconds.and_then(seconds_to_ms);
    Ok(run)
}

/// Rewrites every run of element text that holds an entity or character reference as one CDATA
/// section of the resolved text (`]]>` split across sections); everything else is copied byte
/// for byte. Unknown named entities are kept as written. Borrowed when there is no reference.
pub fn entities_to_cdata(xml: &str) -> Result<Cow<'_, str>, quick_xml::Error> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = String::new();
    // (start of the text run in `xml`, its resolved text, whether it holds a reference)
    let mut run: Option<(usize, String, bool)> = None;
    let mut copied = 0usize;
    let mut any_ref = false;
    loop {
        let start = offset(&reader);
        let event = reader.read_event()?;
        match event {
            Event::Text(t) => {
                let raw = t.into_inner();
                match &mut run {
                    Some((_, text, _)) => text.push_str(&raw),
                    None => run = Some((start, raw.into_owned(), false)),
                }
            }
            Event::GeneralRef(r) => {
                any_ref = true;
                let resolved = match r.resolve_char_ref()? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.into_inner();
                        match quick_xml::escape::resolve_xml_entity(&name) {
                            Some(s) => s.to_string(),
                            None => format!("&{name};"),
                        }
                    }
                };
                match &mut run {
                    Some((_, text, has_ref)) => {
                        text.push_str(&resolved);
                        *has_ref = true;
                    }
                    None => run = Some((start, resolved, true)),
                }
            }
            other => {
                if let Some((run_start, text, has_ref)) = run.take()
                    && has_ref
                {
                    out.push_str(&xml[copied..run_start]);
                    out.push_str("<![CDATA[");
                    out.push_str(&text.replace("]]>", "]]]]><![CDATA[>"));
                    out.push_str("]]>");
                    copied = start;
                }
                if matches!(other, Event::Eof) {
                    break;
                }
            }
        }
    }
    if !any_ref {
        return Ok(Cow::Borrowed(xml));
    }
    out.push_str(&xml[copied..]);
    Ok(Cow::Owned(out))
}

fn offset(reader: &quick_xml::Reader<&[u8]>) -> usize {
    usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX)
}

fn reason(e: &junit_parser::Error) -> String {
    match e {
        junit_parser::Error::UnexpectedEndOfFile(_) => {
            "ends before a complete <testsuites> or <testsuite> element".to_string()
        }
        junit_parser::Error::XMLError(inner) => one_line(&format!("malformed XML: {inner}")),
        junit_parser::Error::ParseFloatError(inner) => {
            format!("an attribute is not a number: {inner}")
        }
        junit_parser::Error::ParseIntError(inner) => {
            format!("an attribute is not a whole number: {inner}")
        }
        other => one_line(&other.to_string()),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn seconds_to_ms(s: f64) -> Option<u64> {
    if s.is_finite() && s >= 0.0 {
        // Saturating float-to-int cast: a huge `time` gives u64::MAX, not UB.
        Some((s * 1000.0).round() as u64)
    } else {
        None
    }
}

fn walk_suite(suite: &TestSuite, run: &mut TestRun) {
    for case in &suite.cases {
        add_case(case, suite, run);
    }
    for inner in &suite.suites {
        walk_suite(inner, run);
    }
}

fn case_id(case: &TestCase) -> String {
    match case.classname.as_deref().or(case.group.as_deref()) {
        Some(class) if !class.is_empty() && class.trim() != case.original_name.trim() => {
            format!("{class}::{}", case.original_name)
        }
        _ => case.original_name.clone(),
    }
}

fn add_case(case: &TestCase, suite: &TestSuite, run: &mut TestRun) {
    let id = case_id(case);
    run.totals.tests += 1;
    let outcome = match &case.status {
        TestStatus::Success => {
            run.totals.passed += 1;
            if !case.reruns.is_empty() && !run.flaky.contains(&id) {
                run.flaky.push(id.clone());
            }
            Outcome::Passed
        }
        TestStatus::Skipped(_) => {
            run.totals.skipped += 1;
            Outcome::Skipped
        }
        TestStatus::Failure(f) => {
            run.totals.failed += 1;
            run.failures.push(failed_test(
                &id,
                FailureKind::Failure,
                &f.message,
                &f.text,
                case,
                suite,
            ));
            Outcome::Failed
        }
        TestStatus::Error(e) => {
            run.totals.errors += 1;
            run.failures.push(failed_test(
                &id,
                FailureKind::Error,
                &e.message,
                &e.text,
                case,
                suite,
            ));
            Outcome::Error
        }
    };
    run.cases.push(CaseOutcome { id, outcome });
}

fn failed_test(
    id: &str,
    kind: FailureKind,
    message: &str,
    text: &str,
    case: &TestCase,
    suite: &TestSuite,
) -> FailedTest {
    let message = if message.trim().is_empty() {
        text.lines().map(str::trim).find(|l| !l.is_empty())
    } else {
        Some(message.trim())
    }
    .map(|m| truncate_chars(&clean(m), MESSAGE_CHARS));
    let own = [case.system_out.as_deref(), case.system_err.as_deref()];
    let streams = if own.iter().flatten().any(|s| !s.trim().is_empty()) {
        own
    } else {
        [suite.system_out.as_deref(), suite.system_err.as_deref()]
    };
    let parts: Vec<&str> = std::iter::once(text)
        .chain(streams.into_iter().flatten())
        .map(|s| s.trim_matches('\n').trim_end())
        .filter(|s| !s.trim().is_empty())
        .collect();
    let output = if parts.is_empty() {
        None
    } else {
        Some(head(&clean(&parts.join("\n"))))
    };
    FailedTest {
        id: id.to_string(),
        kind,
        message,
        output,
    }
}

/// The first [`OUTPUT_LINES`] lines, cut to [`OUTPUT_BYTES`] at a character boundary.
fn head(s: &str) -> String {
    let mut out = s.lines().take(OUTPUT_LINES).collect::<Vec<_>>().join("\n");
    if out.len() > OUTPUT_BYTES {
        let mut cut = OUTPUT_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// Removes ANSI escape sequences (`ESC [ … letter`) and control characters other than newline
/// and tab.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c == '\r' || (c.is_control() && c != '\n' && c != '\t') {
            continue;
        }
        out.push(c);
    }
    out
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_text_becomes_cdata_and_the_rest_is_kept() {
        let xml = "<a x=\"&lt;\"><b>it&apos;s ]]&gt; &#10;&nope;</b><c>plain</c></a>";
        assert_eq!(
            entities_to_cdata(xml).unwrap(),
            "<a x=\"&lt;\"><b><![CDATA[it's ]]]]><![CDATA[> \n&nope;]]></b><c>plain</c></a>"
        );
        assert!(matches!(
            entities_to_cdata("<a>plain</a>").unwrap(),
            Cow::Borrowed(_)
        ));
    }
}
