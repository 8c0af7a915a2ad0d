//! Finds the commands addressed to the bot in a pull-request comment (SPEC §4).
//!
//! # Grammar
//!
//! ```text
//! line     = … mention command | name command          (name: only as the line's first word)
//! mention  = "@" (bot_name | bot_login) [",:;.!?"]       (case-insensitive, whole word)
//! command  = word [argument …]                          (one command per line)
//! word     = "ok" | "please" | ":+1:" | "r+" | "+1" | "help" | "review" | "lgtm"
//!          | "not lgtm" | "try" | "test" | "retest" | "cancel" | ":-1:" | "r-" | "-1" | "p=N"
//!          | "treeclosed=N" | "treeopen" | "treeclosed-"          (N: 0 to 4294967295)
//! argument = "branch=" NAME | "p=" N                     (please)  |  "@" LOGIN …  (review)
//! ```
//!
//! The comment is first read as Markdown (pulldown-cmark, with GitHub's tables, task lists and
//! strikethrough) and only the text people see as their own prose is kept, rebuilt into lines
//! at every soft or hard break and block boundary. Ignored, because in them a command is
//! quoted, shown or retracted rather than issued: fenced and indented code blocks, inline code
//! (kept as the opaque token `` `…` ``, so it can be neither a mention nor a command), block
//! quotes (a reply that quotes "greg please" must not merge again, as it did in Greg, which
//! searched the raw body for the text), HTML (comments included), link and image text, and
//! struck-through text. Comments by the bot's own login are skipped whole, so its help text
//! and replies never command it.
//!
//! A mention is a whole word: `@gregory` and `@greg-bot2` are other users. The word right
//! after the mention is the command; trailing `.,!?;:` on it is dropped (`@greg please.`).
//! The spelling of Greg's README, `Greg please`, counts only as the first word of a line, so
//! "I told greg please stop" is prose.
//!
//! Silence versus error: a mention with nothing after it (`thanks @greg`) is no command. An
//! unknown word is an error when the mention opens the line, or when the word is a likely typo
//! of a command (with its "did you mean"; for `key=value` words the key is compared with the
//! keys of `p=N` and `treeclosed=N`); otherwise (`I asked @greg about it`, `Greg is
//! away`) the line is prose and yields nothing. `ok` and `help` only read state, so they
//! ignore the rest of the line (`@greg ok, what is missing?`). Every other command changes
//! state, so each word after it must be an argument it takes: `@greg please don't merge yet`
//! is an error, never a merge. A word starting with `@` ends a command's arguments (except for
//! `review`), as it begins a mention of someone else.

use crate::command::{Addressing, Argument, Command, CommandError, CommandKind};
use crate::suggest::{suggest, suggest_key};
use greg_core::Login;
use pulldown_cmark::{Event, Options, Parser, TagEnd};

/// What an inline code span becomes in the rebuilt text: one opaque token.
const CODE_SPAN: &str = "`…`";

/// Punctuation dropped from the end of a mention, a command word or an option value.
const TRAILING: &[char] = &['.', ',', '!', '?', ';', ':'];

/// Parses every command addressed to the bot in a comment `body` (GitHub-flavoured Markdown),
/// in the order written, one per line.
///
/// Returns an empty vector when `author` is the bot's own login (compared case-insensitively)
/// or when no line addresses the bot. Each `Err` is a user error to answer with its `Display`.
/// Never panics on any input.
///
/// ```
/// use greg_command::{Addressing, Command, parse_comment};
/// use greg_core::Login;
///
/// let me = Addressing { bot_name: "greg".into(), bot_login: Some(Login::from("greg-bot")) };
/// let body = "> @greg please\n\nThanks! @greg r+ p=2";
/// let commands = parse_comment(body, &Login::from("alice"), &me);
/// assert_eq!(commands, vec![Ok(Command::Merge { branch: None, priority: Some(2) })]);
/// ```
pub fn parse_comment(
    body: &str,
    author: &Login,
    addressing: &Addressing,
) -> Vec<Result<Command, CommandError>> {
    if addressing.bot_login.as_ref() == Some(author) {
        return Vec::new();
    }
    let names = names(addressing);
    if names.is_empty() {
        return Vec::new();
    }
    prose_lines(body)
        .iter()
        .filter_map(|line| parse_line(line, &names))
        .collect()
}

/// The names the bot answers to, without `@`: the bot name, the bot login, and the login
/// without a GitHub App's `[bot]` suffix.
fn names(addressing: &Addressing) -> Vec<&str> {
    let mut names = vec![addressing.bot_name.trim().trim_start_matches('@')];
    if let Some(login) = &addressing.bot_login {
        names.push(login.as_str());
        if let Some(stem) = login.as_str().strip_suffix("[bot]") {
            names.push(stem);
        }
    }
    names.retain(|name| !name.is_empty());
    names
}

/// The visible prose of a Markdown document as trimmed, non-empty lines (see the module
/// documentation for what is left out).
fn prose_lines(body: &str) -> Vec<String> {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS | Options::ENABLE_STRIKETHROUGH;
    let mut lines = Vec::new();
    let mut line = String::new();
    // Depth of the elements whose content is not prose; balanced by pulldown-cmark.
    let mut hidden = 0usize;
    for event in Parser::new_ext(body, options) {
        match event {
            Event::Start(tag) => {
                let end = tag.to_end();
                if hides(end) {
                    if hidden == 0 && is_inline(end) {
                        // Hidden text separates what is around it: `@gre~~x~~g` is not `@greg`.
                        line.push(' ');
                    }
                    hidden += 1;
                }
                if !is_inline(end) {
                    flush(&mut line, &mut lines);
                }
            }
            Event::End(end) => {
                if hides(end) {
                    hidden = hidden.saturating_sub(1);
                    if hidden == 0 && is_inline(end) {
                        line.push(' ');
                    }
                }
                if !is_inline(end) {
                    flush(&mut line, &mut lines);
                }
            }
            _ if hidden > 0 => {}
            Event::Text(text) => {
                for (i, part) in text.split('\n').enumerate() {
                    if i > 0 {
                        flush(&mut line, &mut lines);
                    }
                    line.push_str(part);
                }
            }
            Event::Code(_) => line.push_str(CODE_SPAN),
            Event::SoftBreak | Event::HardBreak | Event::Rule => flush(&mut line, &mut lines),
            // Inline HTML and math separate the text around them, as hidden text does.
            Event::InlineHtml(_) | Event::InlineMath(_) => line.push(' '),
            Event::Html(_)
            | Event::DisplayMath(_)
            | Event::FootnoteReference(_)
            | Event::TaskListMarker(_) => {}
        }
    }
    flush(&mut line, &mut lines);
    lines
}

/// True for the elements whose content is not the author's own prose.
fn hides(end: TagEnd) -> bool {
    matches!(
        end,
        TagEnd::CodeBlock
            | TagEnd::BlockQuote(_)
            | TagEnd::HtmlBlock
            | TagEnd::Link
            | TagEnd::Image
            | TagEnd::Strikethrough
            | TagEnd::MetadataBlock(_)
    )
}

/// True for span-level elements, which do not break a line.
fn is_inline(end: TagEnd) -> bool {
    matches!(
        end,
        TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Link
            | TagEnd::Image
    )
}

fn flush(line: &mut String, lines: &mut Vec<String>) {
    let trimmed = line.trim();
    if !trimmed.is_empty() {
        lines.push(trimmed.to_owned());
    }
    line.clear();
}

/// The command of one line, if the line addresses the bot.
fn parse_line(line: &str, names: &[&str]) -> Option<Result<Command, CommandError>> {
    let words: Vec<&str> = line.split_whitespace().collect();
    // Greg's README spelling, "Greg please": only as the first word.
    if words.first().is_some_and(|first| is_name(first, names))
        && let Some(command) = parse_command(&words[1..], false)
    {
        return Some(command);
    }
    let at = words.iter().position(|word| is_mention(word, names))?;
    parse_command(&words[at + 1..], at == 0)
}

fn is_name(word: &str, names: &[&str]) -> bool {
    names.iter().any(|name| word.eq_ignore_ascii_case(name))
}

fn is_mention(word: &str, names: &[&str]) -> bool {
    word.strip_prefix('@')
        .is_some_and(|name| is_name(name.trim_end_matches(TRAILING), names))
}

/// Parses the words after the mention. `opens_line` is true when the mention was the first
/// word of the line, so an unknown word is surely meant as a command.
fn parse_command(words: &[&str], opens_line: bool) -> Option<Result<Command, CommandError>> {
    let (&word, mut rest) = words.split_first()?;
    if word.starts_with('@') || word.contains(CODE_SPAN) {
        // `cc @greg @alice`, or a command shown as inline code: not issued.
        return None;
    }
    let lower = word.to_lowercase();
    // The value of a command written as `key=value` (`p=N`, `treeclosed=N`).
    let mut value = "";
    let kind = match lookup(&lower) {
        Some(kind) => kind,
        None if lower.trim_end_matches(TRAILING) == "not" => match rest.split_first() {
            Some((next, after)) if lookup(&next.to_lowercase()) == Some(CommandKind::Lgtm) => {
                rest = after;
                CommandKind::NotLgtm
            }
            next => return unknown_not(next.map(|(next, _)| *next), opens_line),
        },
        None => match lower.split_once('=').and_then(|(key, _)| keyed(key)) {
            Some(kind) => {
                value = word.split_once('=').map_or("", |(_, value)| value);
                kind
            }
            None => return unknown(word.trim_end_matches(TRAILING), opens_line),
        },
    };
    Some(arguments(kind, value, rest))
}

/// The kind a lower-case word selects, tolerating trailing punctuation (`ok?`, `:+1:!`).
fn lookup(lower: &str) -> Option<CommandKind> {
    let mut word = lower;
    loop {
        if let Some(kind) = CommandKind::ALL
            .into_iter()
            .find(|kind| kind.words().contains(&word))
        {
            return Some(kind);
        }
        word = word.strip_suffix(TRAILING)?;
    }
}

/// The kind written as `key=N`, for a lower-case `key`.
fn keyed(key: &str) -> Option<CommandKind> {
    CommandKind::ALL
        .into_iter()
        .find(|kind| kind.keyed().is_some_and(|(k, _)| k == key))
}

fn unknown(word: &str, opens_line: bool) -> Option<Result<Command, CommandError>> {
    let suggestion = match word.split_once('=') {
        Some((key, _)) => suggest_key(key),
        None => suggest(word),
    };
    (opens_line || suggestion.is_some()).then(|| {
        Err(CommandError::Unknown {
            word: word.to_owned(),
            suggestion,
        })
    })
}

/// `not` followed by something other than `lgtm`.
fn unknown_not(next: Option<&str>, opens_line: bool) -> Option<Result<Command, CommandError>> {
    match next {
        None => Some(Err(CommandError::Unknown {
            word: "not".to_owned(),
            suggestion: Some("not lgtm"),
        })),
        Some(next) => unknown(
            &format!("not {}", next.trim_end_matches(TRAILING)),
            opens_line,
        ),
    }
}

/// Reads the arguments of `kind` from its own `value` (`p=N`) and the rest of the line.
fn arguments(kind: CommandKind, value: &str, rest: &[&str]) -> Result<Command, CommandError> {
    match kind {
        // Read-only: the rest of the line is prose.
        CommandKind::Ok => Ok(Command::Ok),
        CommandKind::Help => Ok(Command::Help),
        CommandKind::Merge => merge_options(rest),
        CommandKind::Review => reviewers(rest).map(|reviewers| Command::Review { reviewers }),
        CommandKind::Lgtm => no_arguments(kind, rest).map(|()| Command::Lgtm),
        CommandKind::NotLgtm => no_arguments(kind, rest).map(|()| Command::NotLgtm),
        CommandKind::Try => no_arguments(kind, rest).map(|()| Command::Try),
        CommandKind::Retest => no_arguments(kind, rest).map(|()| Command::Retest),
        CommandKind::Cancel => no_arguments(kind, rest).map(|()| Command::Cancel),
        CommandKind::Priority => {
            let priority = number(kind, Argument::Priority, value)?;
            no_arguments(kind, rest)?;
            Ok(Command::Priority { priority })
        }
        CommandKind::TreeClosed => {
            let priority = number(kind, Argument::TreeClosed, value)?;
            no_arguments(kind, rest)?;
            Ok(Command::TreeClosed { priority })
        }
        CommandKind::TreeOpen => no_arguments(kind, rest).map(|()| Command::TreeOpen),
    }
}

/// The words that are arguments: up to the next mention of someone, without words made only
/// of punctuation (`:)`, `-`).
fn argument_words<'a>(rest: &[&'a str]) -> impl Iterator<Item = &'a str> {
    rest.iter()
        .copied()
        .take_while(|word| !word.starts_with('@'))
        .filter(|word| !word.chars().all(|c| c.is_ascii_punctuation()))
}

fn no_arguments(kind: CommandKind, rest: &[&str]) -> Result<(), CommandError> {
    match argument_words(rest).next() {
        Some(word) => Err(CommandError::UnexpectedArgument {
            command: kind,
            argument: word.to_owned(),
        }),
        None => Ok(()),
    }
}

/// `please [branch=NAME] [p=N]`, options in any order, each at most once.
fn merge_options(rest: &[&str]) -> Result<Command, CommandError> {
    let command = CommandKind::Merge;
    let mut branch = None;
    let mut priority = None;
    for word in argument_words(rest) {
        let unexpected = || CommandError::UnexpectedArgument {
            command,
            argument: word.to_owned(),
        };
        let (key, value) = word.split_once('=').ok_or_else(unexpected)?;
        let argument = match key.to_ascii_lowercase().as_str() {
            "branch" => Argument::Branch,
            "p" => Argument::Priority,
            _ => return Err(unexpected()),
        };
        let duplicate = match argument {
            Argument::Branch => branch.replace(branch_name(command, value)?).is_some(),
            _ => priority
                .replace(number(command, Argument::Priority, value)?)
                .is_some(),
        };
        if duplicate {
            return Err(CommandError::DuplicateArgument { command, argument });
        }
    }
    Ok(Command::Merge { branch, priority })
}

/// The value `N` of `p=N` or `treeclosed=N`: a whole number from 0 to `u32::MAX` (as
/// `u32::from_str` reads it); trailing sentence punctuation is dropped.
fn number(command: CommandKind, argument: Argument, value: &str) -> Result<u32, CommandError> {
    let value = value.trim_end_matches(TRAILING);
    if value.is_empty() {
        return Err(CommandError::MissingArgument { command, argument });
    }
    value
        .parse::<u32>()
        .map_err(|_| CommandError::InvalidArgument {
            command,
            argument,
            value: value.to_owned(),
        })
}

/// A branch name greg will pass to the merge job: the rules of `git check-ref-format
/// --branch` (<https://git-scm.com/docs/git-check-ref-format>) over the portable characters
/// `A-Z a-z 0-9 - _ . / +`, and no leading `-` (it would read as a command-line option).
/// Trailing `.,!?;:` is sentence punctuation, not part of the name (git forbids a trailing
/// `.` anyway).
fn branch_name(command: CommandKind, value: &str) -> Result<String, CommandError> {
    let value = value.trim_end_matches(TRAILING);
    if value.is_empty() {
        return Err(CommandError::MissingArgument {
            command,
            argument: Argument::Branch,
        });
    }
    let portable = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./+".contains(c));
    let well_formed = value.len() <= 255
        && !value.starts_with(['-', '/'])
        && !value.ends_with('/')
        && !value.contains("..")
        && !value.contains("//")
        && value != "HEAD"
        && value
            .split('/')
            .all(|part| !part.starts_with('.') && !part.ends_with(".lock"));
    if portable && well_formed {
        Ok(value.to_owned())
    } else {
        Err(CommandError::InvalidArgument {
            command,
            argument: Argument::Branch,
            value: value.to_owned(),
        })
    }
}

/// `review @a @b` (also `@a, @b`): at least one login, in order, without duplicates. Here
/// `@` words are the arguments, so they do not end the command.
fn reviewers(rest: &[&str]) -> Result<Vec<Login>, CommandError> {
    let command = CommandKind::Review;
    let mut reviewers: Vec<Login> = Vec::new();
    let parts = rest.iter().flat_map(|word| word.split(','));
    for part in parts.filter(|part| !part.chars().all(|c| c.is_ascii_punctuation())) {
        let Some(name) = part.strip_prefix('@') else {
            return Err(CommandError::UnexpectedArgument {
                command,
                argument: part.to_owned(),
            });
        };
        let name = name.trim_end_matches(TRAILING);
        let valid = (1..=100).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            return Err(CommandError::InvalidArgument {
                command,
                argument: Argument::Reviewer,
                value: part.to_owned(),
            });
        }
        let login = Login::from(name);
        if !reviewers.contains(&login) {
            reviewers.push(login);
        }
    }
    if reviewers.is_empty() {
        return Err(CommandError::MissingArgument {
            command,
            argument: Argument::Reviewer,
        });
    }
    Ok(reviewers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_lines_keep_only_visible_prose() {
        let body = "Hello *there* @greg\nsecond line  \nhard break\n\n> quoted\n\n```\ncode\n```\n\n    indented\n\n- item `x` <b>y</b>\n- [ ] task\n\n| a | b |\n|---|---|\n| c | d |\n\n[link text](https://x) ~~gone~~ kept\n<!-- hidden -->\n";
        insta::assert_debug_snapshot!(prose_lines(body), @r#"
        [
            "Hello there @greg",
            "second line",
            "hard break",
            "item `…`  y",
            "task",
            "a",
            "b",
            "c",
            "d",
            "kept",
        ]
        "#);
    }

    #[test]
    fn branch_names_follow_git_rules() {
        let ok = |v: &str| branch_name(CommandKind::Merge, v).is_ok();
        for good in ["main", "release-1.0", "feature/x_y", "v1+build", "a.b/c"] {
            assert!(ok(good), "{good}");
        }
        for bad in [
            "-f", "/a", "a/", "a/.", "a..b", "a//b", ".hidden", "a/.b", "x.lock", "HEAD", "a b",
            "a~1", "a^", "a:b", "a*", "a[b", "a\\b", "`…`", "a$b", "é", "a@{1}",
        ] {
            assert!(!ok(bad), "{bad}");
        }
        assert_eq!(
            branch_name(CommandKind::Merge, "release."),
            Ok("release".to_owned()),
            "trailing sentence punctuation is not part of the name"
        );
        assert!(ok(&"a".repeat(255)));
        assert!(!ok(&"a".repeat(256)));
    }
}
