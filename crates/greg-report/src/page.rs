//! The full report as an HTML page (`GET /report/{provider}/{owner}/{repo}/{pr}`, the page the
//! comment links to when sections were left out): [`crate::render_full`]'s Markdown through
//! pulldown-cmark, in a small self-contained document (no script, one inline stylesheet, light
//! and dark).
//!
//! Safety: job summaries are Markdown written by CI jobs and may hold raw HTML. Every raw HTML
//! fragment is shown as text, except the exact tags the report itself uses (`<details>`,
//! `</details>`, `<summary>`, `</summary>`), so a summary cannot inject markup or script.

use pulldown_cmark::{Event, Options, Parser, html};

use crate::comment::{CommentInput, render_full};
use crate::markdown as md;

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:1rem auto;\
padding:0 1rem;color:#1f2328;background:#fff}table{border-collapse:collapse}\
td,th{border:1px solid #d0d7de;padding:.2rem .5rem}pre{overflow-x:auto;background:#f6f8fa;\
padding:.5rem}@media (prefers-color-scheme:dark){body{color:#e6edf3;background:#0d1117}\
td,th{border-color:#30363d}pre{background:#161b22}a{color:#4493f8}}";

const ALLOWED_TAGS: [&str; 4] = ["<details>", "</details>", "<summary>", "</summary>"];

/// True when `raw` holds no markup but the allowed tags: with them removed, no `<` is left
/// (the text between them was escaped by the renderer, or is shown as text).
fn only_allowed_tags(raw: &str) -> bool {
    let mut rest = raw.to_ascii_lowercase();
    for tag in ALLOWED_TAGS {
        rest = rest.replace(tag, "");
    }
    !rest.contains('<')
}

/// The full report of `input` as a complete HTML document (UTF-8), titled
/// `Report: <repo>#<pr>`.
pub fn render_full_html(input: &CommentInput) -> String {
    let markdown = render_full(input);
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let events = Parser::new_ext(&markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => {
            if only_allowed_tags(&raw) {
                Event::Html(raw)
            } else {
                Event::Text(raw)
            }
        }
        other => other,
    });
    let mut body = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut body, events);
    let title = md::html(&format!("Report: {}#{}", input.repo, input.pr));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::JobStatus;
    use crate::model::JobReport;

    fn report(job: &str, summary: &str) -> JobReport {
        JobReport {
            job: job.to_owned(),
            status: JobStatus::Failure,
            build_url: Some("https://ci.example/job/unit/7/".to_owned()),
            duration_ms: Some(61_000),
            summary_md: Some(summary.to_owned()),
            tests: None,
            received_ms: 0,
            files: Vec::new(),
        }
    }

    #[test]
    fn the_page_shows_the_report_and_no_markup_from_a_summary() {
        let reports = [report(
            "unit <b>",
            "**bold** <script>alert(1)</script>\n\n<img src=x onerror=alert(2)>",
        )];
        let input = CommentInput {
            repo: "acme/widgets",
            pr: 7,
            head_sha: "0123456789abcdef0123456789abcdef01234567",
            reports: &reports,
            expected: &[],
            baseline: None,
            full_report_url: None,
        };
        let page = render_full_html(&input);
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(
            page.contains("<title>Report: acme/widgets#7</title>"),
            "{page}"
        );
        assert!(page.contains("<strong>bold</strong>"), "{page}");
        assert!(page.contains("<details>"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
    }
}
