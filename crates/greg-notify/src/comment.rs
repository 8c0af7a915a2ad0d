//! The text `greg notify` posts: the summary file's Markdown, then the links to the uploaded
//! files (or to their index page), in greg's voice. Built in one place, like the engine's
//! `texts.rs`.

use crate::Published;

/// Hidden marker at the end of every greg comment (the engine's `texts::MARKER`).
pub const MARKER: &str = "<!-- greg -->";

/// Escapes the characters that would end or change a Markdown link text.
pub fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '[' | ']' | '(' | ')' | '*' | '_' | '`' | '<' | '>' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The comment: `summary` (Markdown, as written; omitted when `None` or blank), then one line
/// naming the commit, how many files were kept and until when (UTC), then each file's link, or
/// the index page's link when there is one.
pub fn comment(summary: Option<&str>, commit: &str, published: &Published) -> String {
    let mut body = String::new();
    if let Some(s) = summary.map(str::trim).filter(|s| !s.is_empty()) {
        body.push_str(s);
        body.push_str("\n\n");
    }
    let short: String = commit.chars().take(10).collect();
    let until = published.expires.format("%Y-%m-%d %H:%M UTC");
    let n = published.links.len();
    match (&published.index, n) {
        (_, 0) => body.push_str(&format!(
            ":information_source: The CI run of `{short}` uploaded no detail files."
        )),
        (Some(index), _) => body.push_str(&format!(
            ":file_folder: The CI run of `{short}` uploaded {n} files, kept until {until}: \
             [index of the files]({}).",
            index.url
        )),
        (None, _) => {
            let files = if n == 1 { "file" } else { "files" };
            body.push_str(&format!(
                ":file_folder: The CI run of `{short}` uploaded {n} {files}, kept until {until}:\n"
            ));
            for (name, link) in &published.links {
                body.push_str(&format!("\n- [{}]({})", markdown_escape(name), link.url));
            }
        }
    }
    body.push_str("\n\n");
    body.push_str(MARKER);
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Link;
    use chrono::{TimeZone as _, Utc};

    fn published(n: usize, index: bool) -> Published {
        let links = (0..n)
            .map(|i| {
                let name = format!("logs/part_{i}.txt");
                let link = Link {
                    key: format!("o/r/c/{name}"),
                    url: format!("https://store.example/o/r/c/{name}"),
                };
                (name, link)
            })
            .collect();
        Published {
            links,
            index: index.then(|| Link {
                key: "o/r/c/index.html".to_owned(),
                url: "https://store.example/o/r/c/index.html".to_owned(),
            }),
            expires: Utc
                .timestamp_opt(1_700_000_000, 0)
                .single()
                .unwrap_or_default(),
        }
    }

    #[test]
    fn comment_with_links() {
        insta::assert_snapshot!(comment(Some("## Tests\n\n12 passed\n"), "0123456789abcdef", &published(2, false)), @r"
        ## Tests

        12 passed

        :file_folder: The CI run of `0123456789` uploaded 2 files, kept until 2023-11-14 22:13 UTC:

        - [logs/part\_0.txt](https://store.example/o/r/c/logs/part_0.txt)
        - [logs/part\_1.txt](https://store.example/o/r/c/logs/part_1.txt)

        <!-- greg -->
        ");
    }

    #[test]
    fn comment_with_index() {
        insta::assert_snapshot!(comment(None, "0123456789abcdef", &published(21, true)), @r"
        :file_folder: The CI run of `0123456789` uploaded 21 files, kept until 2023-11-14 22:13 UTC: [index of the files](https://store.example/o/r/c/index.html).

        <!-- greg -->
        ");
    }

    #[test]
    fn comment_without_files() {
        insta::assert_snapshot!(comment(Some("  "), "abc1234", &published(0, false)), @r"
        :information_source: The CI run of `abc1234` uploaded no detail files.

        <!-- greg -->
        ");
    }
}
