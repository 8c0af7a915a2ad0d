//! Escaping and formatting for GitHub-flavored Markdown: user-provided text (test names,
//! messages, job names) must not break a table row, a `<details>` block or a code fence.

/// Text for a Markdown table cell or a list item: HTML special characters become entities,
/// Markdown punctuation is backslash-escaped, line breaks become spaces.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '!' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside an HTML element (`<summary>`, `<code>`): entities for `& < > "`, line breaks
/// become spaces. GitHub does not render Markdown inside `<summary>`.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An inline code span holding `s` verbatim: the delimiter is one backtick longer than the
/// longest run of backticks in `s` (CommonMark §6.1), padded with spaces when `s` starts or
/// ends with a backtick. Line breaks become spaces; `|` is escaped, since GitHub splits table
/// cells even inside code spans.
pub fn code(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let ticks = "`".repeat(longest_run(&flat, '`') + 1);
    let pad = if flat.starts_with('`') || flat.ends_with('`') || flat.trim().is_empty() {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{flat}{pad}{ticks}")
}

/// A fence for a code block holding `s`: at least three backticks, and more than the longest
/// run of backticks in `s`, so the content cannot close it.
pub fn fence(s: &str) -> String {
    "`".repeat((longest_run(s, '`') + 1).max(3))
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        if c == ch {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// A link destination in angle brackets (`[build](<…>)`): `|`, spaces and brackets are
/// percent-encoded so neither the table nor the link can be broken.
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('<');
    for c in s.chars() {
        match c {
            '|' => out.push_str("%7C"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            ' ' => out.push_str("%20"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('>');
    out
}

/// A job's summary, which is Markdown by design (HTML such as `<b>` stays): made safe to put
/// inside `<details>`. Its own `<details>` blocks are balanced (a `</details>` without an
/// opening one is neutralized, an unclosed one is closed), HTML comments are neutralized so the
/// report marker cannot be repeated, and an unclosed code fence is closed so it cannot swallow
/// the rest of the comment.
pub fn summary(s: &str) -> String {
    let mut out = s.replace("<!--", "&lt;!--");
    let mut open: Option<(char, usize)> = None;
    for line in out.lines() {
        let t = line.trim_start();
        if line.len() - t.len() > 3 {
            continue;
        }
        for ch in ['`', '~'] {
            let n = t.chars().take_while(|c| *c == ch).count();
            if n < 3 {
                continue;
            }
            match open {
                None => open = Some((ch, n)),
                Some((och, on)) if och == ch && n >= on && t[n..].trim().is_empty() => open = None,
                Some(_) => {}
            }
        }
    }
    if let Some((ch, n)) = open {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&ch.to_string().repeat(n));
    }
    balance_details(&out)
}

fn balance_details(s: &str) -> String {
    // ASCII lower-casing keeps byte offsets, so positions in `lower` index `s`.
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut copied = 0;
    for (i, _) in lower.match_indices('<') {
        let rest = &lower[i..];
        if rest.starts_with("</details") {
            if depth == 0 {
                out.push_str(&s[copied..i]);
                out.push_str("&lt;");
                copied = i + 1;
            } else {
                depth -= 1;
            }
        } else if rest.starts_with("<details") {
            depth += 1;
        }
    }
    out.push_str(&s[copied..]);
    for _ in 0..depth {
        out.push_str("\n\n</details>");
    }
    out
}

/// A count with thousands separators: `1,204`.
pub fn number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration for people: `850ms`, `12s`, `4m 12s`, `1h 3m`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{s}s"),
        60_000..3_600_000 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

/// At most `max` characters of `s`, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The first 7 characters of a sha.
pub fn short_sha(sha: &str) -> &str {
    match sha.char_indices().nth(7) {
        Some((i, _)) => &sha[..i],
        None => sha,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks_and_pipes() {
        assert_eq!(code("a::b"), "`a::b`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code("a|b"), "`a|b`");
    }

    #[test]
    fn fences_are_longer_than_the_content_runs() {
        assert_eq!(fence("plain"), "```");
        assert_eq!(fence("has ``` inside"), "````");
        assert_eq!(fence("has ````` inside"), "``````");
    }

    #[test]
    fn text_escapes_tables_and_html() {
        assert_eq!(text("a|b <i>*x*</i>"), "a\\|b &lt;i&gt;\\*x\\*&lt;/i&gt;");
        assert_eq!(html("<b>\"&\"</b>"), "&lt;b&gt;&quot;&amp;&quot;&lt;/b&gt;");
        assert_eq!(url("https://ci/a|b c"), "<https://ci/a%7Cb%20c>");
    }

    #[test]
    fn summaries_cannot_escape_their_block() {
        assert_eq!(summary("a\n```rust\nlet x;"), "a\n```rust\nlet x;\n```");
        assert_eq!(summary("```\nok\n```"), "```\nok\n```");
        assert_eq!(summary("x</details>"), "x&lt;/details>");
        let own = "<details><summary>a</summary>\n\nb\n</DETAILS>";
        assert_eq!(summary(own), own);
        assert_eq!(summary("<details>\nopen"), "<details>\nopen\n\n</details>");
        assert_eq!(summary("<!-- greg:report -->"), "&lt;!-- greg:report -->");
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(number(0), "0");
        assert_eq!(number(1204), "1,204");
        assert_eq!(number(1234567), "1,234,567");
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(12_400), "12s");
        assert_eq!(duration(252_000), "4m 12s");
        assert_eq!(duration(3_780_000), "1h 3m");
        assert_eq!(short_sha("0123456789"), "0123456");
    }
}
