//! Property tests of the comment grammar (`parse_comment`): it never panics on any text;
//! text without a `g` (every name of the bot has one) commands nothing; the bot's own
//! comments command nothing; and a valid command line among random prose lines is found,
//! exactly once. The cargo-fuzz target `command` (fuzz/, docs/fuzzing.md) checks the first
//! three for longer.

use greg_command::{Addressing, Command, parse_comment};
use greg_core::Login;
use proptest::prelude::*;

fn addressing() -> Addressing {
    Addressing {
        bot_name: "greg".to_owned(),
        bot_login: Some(Login::from("greg-bot[bot]")),
    }
}

fn alice() -> Login {
    Login::from("alice")
}

/// A command line and the command it must parse to.
fn command_line() -> impl Strategy<Value = (String, Command)> {
    let merge = |branch: Option<&str>, priority| Command::Merge {
        branch: branch.map(str::to_owned),
        priority,
    };
    prop_oneof![
        Just(("@greg r+".to_owned(), merge(None, None))),
        Just(("@greg please".to_owned(), merge(None, None))),
        Just(("@greg-bot r+".to_owned(), merge(None, None))),
        Just(("Thanks! @greg try".to_owned(), Command::Try)),
        Just(("@GREG retest".to_owned(), Command::Retest)),
        Just(("@greg cancel".to_owned(), Command::Cancel)),
        Just(("@greg lgtm".to_owned(), Command::Lgtm)),
        Just(("@greg help".to_owned(), Command::Help)),
        (0u32..1000).prop_map(|p| (format!("@greg p={p}"), Command::Priority { priority: p })),
        (0u32..1000, "[a-z][a-z0-9-]{0,8}(/[a-z][a-z0-9-]{0,8}){0,2}").prop_map(
            move |(p, branch)| (
                format!("@greg r+ p={p} branch={branch}"),
                merge(Some(&branch), Some(p)),
            )
        ),
    ]
}

/// Plain prose lines (letters, spaces, a little punctuation): no Markdown block syntax that
/// could hide the next line, no `@`.
fn prose_lines() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-zA-Z][a-zA-Z ,!?]{0,40}", 0..6)
}

/// Markdown-ish text: fragments of block and inline syntax mixed with words and mentions.
fn markdownish() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("\n".to_owned()),
        Just("\n\n".to_owned()),
        Just("```".to_owned()),
        Just("`".to_owned()),
        Just("> ".to_owned()),
        Just("    ".to_owned()),
        Just("<!-- ".to_owned()),
        Just(" -->".to_owned()),
        Just("- [ ] ".to_owned()),
        Just("| a | b |\n|---|---|\n".to_owned()),
        Just("~~".to_owned()),
        Just("@".to_owned()),
        Just("@greg ".to_owned()),
        Just("r+ ".to_owned()),
        Just("p=".to_owned()),
        Just("branch=".to_owned()),
        Just("review @".to_owned()),
        "\\PC{0,8}",
        "[0-9]{1,12}",
    ];
    prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_does_not_panic(body in "\\PC{0,300}|(.|\n){0,300}") {
        for result in parse_comment(&body, &alice(), &addressing()) {
            match result {
                Ok(command) => drop(format!("{command:?}")),
                Err(e) => drop(e.to_string()),
            }
        }
    }

    #[test]
    fn markdownish_text_does_not_panic(body in markdownish()) {
        let _ = parse_comment(&body, &alice(), &addressing());
    }

    /// Every name of the bot has a `g`, and hidden Markdown only removes text (or an entity
    /// decodes to one: `&#103;`), so without `g` and `&` there is no name to find. (Without
    /// the name spelled out is not enough: `gre~~x~~g please` reads as `greg please`.)
    #[test]
    fn text_without_a_g_commands_nothing(body in "\\PC{0,200}|(.|\n){0,200}") {
        prop_assume!(!body.contains(['g', 'G', '&']));
        prop_assert_eq!(parse_comment(&body, &alice(), &addressing()), vec![]);
    }

    #[test]
    fn the_bots_own_comments_command_nothing(body in markdownish()) {
        let me = Login::from("greg-bot[bot]");
        prop_assert_eq!(parse_comment(&body, &me, &addressing()), vec![]);
    }

    #[test]
    fn a_command_among_prose_lines_is_found(
        before in prose_lines(),
        (line, expected) in command_line(),
        after in prose_lines(),
        crlf in any::<bool>(),
    ) {
        let prose = before.iter().chain(&after).any(|l| l.to_lowercase().contains("greg"));
        prop_assume!(!prose);
        let mut lines = before;
        lines.push(line);
        lines.extend(after);
        let body = lines.join(if crlf { "\r\n" } else { "\n" });
        prop_assert_eq!(parse_comment(&body, &alice(), &addressing()), vec![Ok(expected)]);
    }
}
