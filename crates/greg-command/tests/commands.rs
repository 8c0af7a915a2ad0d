//! Snapshot tests of the comment grammar (SPEC §4): accepted forms, rejected forms, prose that
//! must stay silent, and the original Greg's quirks that greg must not copy.
//!
//! Each snapshot shows one line per result: the command's `Debug`, or `error: ` and the
//! message greg would post; `(none)` when the comment commands nothing.

use greg_command::{Addressing, CommandKind, help_text, parse_comment};
use greg_core::Login;

fn addressing() -> Addressing {
    Addressing {
        bot_name: "greg".to_owned(),
        bot_login: Some(Login::from("greg-bot")),
    }
}

/// The commands in `body` written by `alice`.
fn parse(body: &str) -> String {
    parse_by(body, "alice")
}

fn parse_by(body: &str, author: &str) -> String {
    render(parse_comment(body, &Login::from(author), &addressing()))
}

fn render(results: Vec<Result<greg_command::Command, greg_command::CommandError>>) -> String {
    if results.is_empty() {
        return "(none)".to_owned();
    }
    results
        .into_iter()
        .map(|result| match result {
            Ok(command) => format!("{command:?}"),
            Err(error) => format!("error: {error}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

mod accepted {
    use super::*;

    #[test]
    fn every_command_word() {
        insta::assert_snapshot!(parse("@greg ok"), @"Ok");
        insta::assert_snapshot!(parse("@greg please"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@greg :+1:"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@greg r+"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@greg +1"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@greg help"), @"Help");
        insta::assert_snapshot!(parse("@greg lgtm"), @"Lgtm");
        insta::assert_snapshot!(parse("@greg not lgtm"), @"NotLgtm");
        insta::assert_snapshot!(parse("@greg try"), @"Try");
        insta::assert_snapshot!(parse("@greg test"), @"Try");
        insta::assert_snapshot!(parse("@greg retest"), @"Retest");
        insta::assert_snapshot!(parse("@greg cancel"), @"Cancel");
        insta::assert_snapshot!(parse("@greg :-1:"), @"Cancel");
        insta::assert_snapshot!(parse("@greg r-"), @"Cancel");
        insta::assert_snapshot!(parse("@greg -1"), @"Cancel");
        insta::assert_snapshot!(parse("@greg p=5"), @"Priority { priority: 5 }");
    }

    #[test]
    fn review_lists_reviewers_without_at_and_duplicates() {
        insta::assert_debug_snapshot!(
            parse_comment("@greg review @alice @bob", &Login::from("carol"), &addressing()),
            @r#"
        [
            Ok(
                Review {
                    reviewers: [
                        Login(
                            "alice",
                        ),
                        Login(
                            "bob",
                        ),
                    ],
                },
            ),
        ]
        "#
        );
        insta::assert_snapshot!(
            parse("@greg review @alice, @bob,@Carol @ALICE."),
            @r#"Review { reviewers: [Login("alice"), Login("bob"), Login("Carol")] }"#
        );
    }

    #[test]
    fn merge_options() {
        insta::assert_debug_snapshot!(
            parse_comment("@greg please branch=release-1.0 p=3", &Login::from("alice"), &addressing()),
            @r#"
        [
            Ok(
                Merge {
                    branch: Some(
                        "release-1.0",
                    ),
                    priority: Some(
                        3,
                    ),
                },
            ),
        ]
        "#
        );
        insta::assert_snapshot!(
            parse("@greg r+ p=0 Branch=Feature/X"),
            @r#"Merge { branch: Some("Feature/X"), priority: Some(0) }"#
        );
        insta::assert_snapshot!(
            parse("@greg please p=4294967295"),
            @"Merge { branch: None, priority: Some(4294967295) }"
        );
        insta::assert_snapshot!(
            parse("@greg please branch=release."),
            @r#"Merge { branch: Some("release"), priority: None }"#
        );
    }

    #[test]
    fn case_does_not_matter() {
        insta::assert_snapshot!(parse("@GREG Please"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@Greg OK"), @"Ok");
        insta::assert_snapshot!(parse("@greg NOT LGTM"), @"NotLgtm");
        insta::assert_snapshot!(parse("@greg R+ P=2"), @"Merge { branch: None, priority: Some(2) }");
    }

    #[test]
    fn the_bot_login_is_addressable_too() {
        insta::assert_snapshot!(parse("@greg-bot please"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@GREG-BOT ok"), @"Ok");
        insta::assert_snapshot!(parse("greg-bot ok"), @"Ok");
    }

    #[test]
    fn a_github_app_login_is_addressable_without_its_bot_suffix() {
        let app = Addressing {
            bot_name: "greg".to_owned(),
            bot_login: Some(Login::from("greg-app[bot]")),
        };
        let alice = Login::from("alice");
        let parse = |body| render(parse_comment(body, &alice, &app));
        insta::assert_snapshot!(parse("@greg-app please"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@greg-app[bot] ok"), @"Ok");
        insta::assert_snapshot!(parse("@greg ok"), @"Ok");
        let own = render(parse_comment(
            "@greg ok",
            &Login::from("Greg-App[bot]"),
            &app,
        ));
        insta::assert_snapshot!(own, @"(none)");
    }

    #[test]
    fn the_mention_may_come_anywhere_in_the_line() {
        insta::assert_snapshot!(parse("thanks! @greg r+"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("Looks good to me, @greg please"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@alice @greg retest"), @"Retest");
        insta::assert_snapshot!(parse("Greg thinks so too, @greg please"), @"Merge { branch: None, priority: None }");
    }

    #[test]
    fn trailing_punctuation_is_tolerated() {
        insta::assert_snapshot!(parse("@greg please."), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@greg ok?"), @"Ok");
        insta::assert_snapshot!(parse("@greg please!"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@greg :+1:!"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@greg, please"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@greg: retest"), @"Retest");
        insta::assert_snapshot!(parse("@greg please :)"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("@greg p=2."), @"Priority { priority: 2 }");
    }

    #[test]
    fn the_readme_spelling_at_the_start_of_a_line() {
        insta::assert_snapshot!(parse("Greg please"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("Greg OK"), @"Ok");
        insta::assert_snapshot!(parse("greg ok"), @"Ok");
        insta::assert_snapshot!(parse("GREG please!"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("Thanks for the fix.\nGreg please"), @"Merge { branch: None, priority: None }");
    }

    #[test]
    fn one_command_per_line() {
        insta::assert_snapshot!(parse("@greg review @alice\n@greg please\n\n@greg ok"), @r#"
        Review { reviewers: [Login("alice")] }
        Merge { branch: None, priority: None }
        Ok
        "#);
        // The second mention ends the first command's arguments and is not read.
        insta::assert_snapshot!(parse("@greg retest @greg please"), @"Retest");
        insta::assert_snapshot!(parse("@greg please\r\n@greg ok\r\n"), @r"
        Merge { branch: None, priority: None }
        Ok
        ");
    }

    #[test]
    fn read_only_commands_ignore_the_rest_of_the_line() {
        insta::assert_snapshot!(parse("@greg ok, what is missing?"), @"Ok");
        insta::assert_snapshot!(parse("@greg help me please"), @"Help");
    }

    #[test]
    fn a_later_mention_ends_the_arguments() {
        insta::assert_snapshot!(parse("@greg please @alice FYI"), @"Merge { branch: None, priority: None }");
    }

    #[test]
    fn markdown_formatting_around_prose_is_read_through() {
        insta::assert_snapshot!(parse("- @greg please"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("1. @greg ok"), @"Ok");
        insta::assert_snapshot!(parse("## @greg ok"), @"Ok");
        insta::assert_snapshot!(parse("@greg **please**"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(parse("*@greg* retest"), @"Retest");
        insta::assert_snapshot!(parse("| @greg ok |\n|---|\n| x |"), @"Ok");
        insta::assert_snapshot!(parse("- [x] @greg retest"), @"Retest");
        insta::assert_snapshot!(parse("Looks good.  \n@greg please"), @"Merge { branch: None, priority: None }");
        insta::assert_snapshot!(
            parse("<details>\n\n@greg please\n\n</details>"),
            @"Merge { branch: None, priority: None }"
        );
    }

    #[test]
    fn a_human_whose_login_is_the_bot_name_is_not_the_bot() {
        insta::assert_snapshot!(parse_by("@greg please", "greg"), @"Merge { branch: None, priority: None }");
    }

    #[test]
    fn tree_closure_commands() {
        insta::assert_snapshot!(parse("@greg treeclosed=5"), @"TreeClosed { priority: 5 }");
        insta::assert_snapshot!(parse("@greg treeclosed=0"), @"TreeClosed { priority: 0 }");
        insta::assert_snapshot!(parse("@greg TreeClosed=4294967295"), @"TreeClosed { priority: 4294967295 }");
        insta::assert_snapshot!(parse("@greg treeclosed=10."), @"TreeClosed { priority: 10 }");
        insta::assert_snapshot!(parse("Release freeze: @greg treeclosed=100"), @"TreeClosed { priority: 100 }");
        insta::assert_snapshot!(parse("Greg treeclosed=1"), @"TreeClosed { priority: 1 }");
        insta::assert_snapshot!(parse("@greg treeopen"), @"TreeOpen");
        insta::assert_snapshot!(parse("@greg TREEOPEN!"), @"TreeOpen");
        insta::assert_snapshot!(parse("@greg treeclosed-"), @"TreeOpen");
        insta::assert_snapshot!(parse("@greg treeopen :)"), @"TreeOpen");
        insta::assert_snapshot!(parse("@greg treeclosed=2\n@greg please p=3"), @r"
        TreeClosed { priority: 2 }
        Merge { branch: None, priority: Some(3) }
        ");
    }

    #[test]
    fn every_command_word_parses_to_its_kind() {
        let alice = Login::from("alice");
        for kind in CommandKind::ALL {
            let spellings: Vec<String> = match kind {
                CommandKind::Review => vec!["review @bob".to_owned()],
                CommandKind::Priority => vec!["p=1".to_owned()],
                CommandKind::TreeClosed => vec!["treeclosed=1".to_owned()],
                _ => kind.words().iter().map(|w| (*w).to_owned()).collect(),
            };
            assert!(!spellings.is_empty(), "{kind:?} has no spelling");
            for spelling in spellings {
                let body = format!("@greg {spelling}");
                let parsed = parse_comment(&body, &alice, &addressing());
                let kinds: Vec<_> = parsed
                    .iter()
                    .map(|r| r.as_ref().map(|c| c.kind()))
                    .collect();
                assert_eq!(kinds, vec![Ok(kind)], "{body}");
            }
        }
    }
}

mod rejected {
    use super::*;

    #[test]
    fn bad_tree_closures() {
        insta::assert_snapshot!(parse("@greg treeclosed"), @"error: `treeclosed=` needs a value, as in `treeclosed=10`.");
        insta::assert_snapshot!(parse("@greg treeclosed="), @"error: `treeclosed=` needs a value, as in `treeclosed=10`.");
        insta::assert_snapshot!(parse("@greg treeclosed =5"), @"error: `treeclosed=` needs a value, as in `treeclosed=10`.");
        insta::assert_snapshot!(parse("@greg treeclosed=-1"), @"error: `treeclosed=-1` is not valid: expected a whole number from 0 to 4294967295.");
        insta::assert_snapshot!(parse("@greg treeclosed=high"), @"error: `treeclosed=high` is not valid: expected a whole number from 0 to 4294967295.");
        insta::assert_snapshot!(parse("@greg treeclosed=1.5"), @"error: `treeclosed=1.5` is not valid: expected a whole number from 0 to 4294967295.");
        insta::assert_snapshot!(parse("@greg treeclosed=4294967296"), @"error: `treeclosed=4294967296` is not valid: expected a whole number from 0 to 4294967295.");
        insta::assert_snapshot!(parse("@greg treeclosed=1 please"), @"error: `treeclosed` takes only `=N`, so `please` was not understood and nothing was done.");
        insta::assert_snapshot!(parse("@greg treeclosed=1 treeclosed=2"), @"error: `treeclosed` takes only `=N`, so `treeclosed=2` was not understood and nothing was done.");
        insta::assert_snapshot!(parse("@greg treeopen now"), @"error: `treeopen` takes no arguments, so `now` was not understood and nothing was done.");
        insta::assert_snapshot!(parse("@greg treeopen=1"), @"error: Unknown command `treeopen=1`: the `help` command lists the commands.");
    }

    #[test]
    fn misspelt_tree_closures_get_a_did_you_mean() {
        insta::assert_snapshot!(parse("@greg treeopne"), @"error: Unknown command `treeopne`: did you mean `treeopen`?");
        insta::assert_snapshot!(parse("@greg tree-open"), @"error: Unknown command `tree-open`: did you mean `treeopen`?");
        insta::assert_snapshot!(parse("@greg treeclose"), @"error: Unknown command `treeclose`: did you mean `treeclosed`?");
        insta::assert_snapshot!(parse("@greg treclosed=5"), @"error: Unknown command `treclosed=5`: did you mean `treeclosed=N`?");
        insta::assert_snapshot!(parse("thanks @greg tree_closed=5"), @"error: Unknown command `tree_closed=5`: did you mean `treeclosed=N`?");
        insta::assert_snapshot!(parse("@greg q=1"), @"error: Unknown command `q=1`: did you mean `p=N`?");
    }

    #[test]
    fn unknown_words_get_a_did_you_mean() {
        insta::assert_snapshot!(parse("@greg pleas"), @"error: Unknown command `pleas`: did you mean `please`?");
        insta::assert_snapshot!(parse("@greg retets"), @"error: Unknown command `retets`: did you mean `retest`?");
        insta::assert_snapshot!(parse("@greg lgmt!"), @"error: Unknown command `lgmt`: did you mean `lgtm`?");
        insta::assert_snapshot!(parse("@greg Cancle"), @"error: Unknown command `Cancle`: did you mean `cancel`?");
        insta::assert_snapshot!(parse("@greg not lgmt"), @"error: Unknown command `not lgmt`: did you mean `not lgtm`?");
        insta::assert_snapshot!(parse("@greg not"), @"error: Unknown command `not`: did you mean `not lgtm`?");
        insta::assert_snapshot!(parse("thanks @greg pleas"), @"error: Unknown command `pleas`: did you mean `please`?");
        insta::assert_snapshot!(parse("Greg pleas"), @"error: Unknown command `pleas`: did you mean `please`?");
    }

    #[test]
    fn unknown_words_after_a_line_opening_mention() {
        insta::assert_snapshot!(parse("@greg deploy"), @"error: Unknown command `deploy`: the `help` command lists the commands.");
        insta::assert_snapshot!(parse("@greg not yet"), @"error: Unknown command `not yet`: the `help` command lists the commands.");
        insta::assert_snapshot!(parse("@greg branch=main"), @"error: Unknown command `branch=main`: the `help` command lists the commands.");
    }

    #[test]
    fn review_needs_at_names() {
        insta::assert_snapshot!(parse("@greg review"), @"error: `review` needs at least one reviewer, as in `review @alice @bob`.");
        insta::assert_snapshot!(parse("@greg review alice"), @"error: `review` takes only `@user` names, so `alice` was not understood and nothing was done.");
        insta::assert_snapshot!(parse("@greg review @org/team"), @"error: `@org/team` is not valid: expected a user name, as in `@alice`.");
        insta::assert_snapshot!(parse("@greg review @"), @"error: `review` needs at least one reviewer, as in `review @alice @bob`.");
    }

    #[test]
    fn bad_merge_options() {
        insta::assert_snapshot!(parse("@greg please branch="), @"error: `branch=` needs a value, as in `branch=release-1.0`.");
        insta::assert_snapshot!(parse("@greg please branch=a..b"), @"error: `branch=a..b` is not valid: expected a branch name of letters, digits and `-_./+`, as git allows.");
        insta::assert_snapshot!(parse("@greg please branch=-f"), @"error: `branch=-f` is not valid: expected a branch name of letters, digits and `-_./+`, as git allows.");
        insta::assert_snapshot!(parse("@greg please branch=`release`"), @"error: `` branch=`…` `` is not valid: expected a branch name of letters, digits and `-_./+`, as git allows, written as plain text rather than inline code.");
        insta::assert_snapshot!(parse("@greg please p=high"), @"error: `p=high` is not valid: expected a whole number from 0 to 4294967295.");
        insta::assert_snapshot!(parse("@greg please p=-1"), @"error: `p=-1` is not valid: expected a whole number from 0 to 4294967295.");
        insta::assert_snapshot!(parse("@greg please p=4294967296"), @"error: `p=4294967296` is not valid: expected a whole number from 0 to 4294967295.");
        insta::assert_snapshot!(parse("@greg please p=1 p=2"), @"error: `please` was given `p=` more than once.");
        insta::assert_snapshot!(parse("@greg please branch=a branch=b"), @"error: `please` was given `branch=` more than once.");
        insta::assert_snapshot!(parse("@greg please foo=bar"), @"error: `please` takes only `branch=NAME` and `p=N`, so `foo=bar` was not understood and nothing was done.");
    }

    #[test]
    fn priority_alone() {
        insta::assert_snapshot!(parse("@greg p="), @"error: `p=` needs a value, as in `p=10`.");
        insta::assert_snapshot!(parse("@greg p=x"), @"error: `p=x` is not valid: expected a whole number from 0 to 4294967295.");
        insta::assert_snapshot!(parse("@greg p=1 please"), @"error: `p=N` takes no arguments, so `please` was not understood and nothing was done.");
    }

    #[test]
    fn state_changing_commands_take_only_their_arguments() {
        // Never a merge: the rest of the line may say the opposite.
        insta::assert_snapshot!(parse("@greg please don't merge yet"), @"error: `please` takes only `branch=NAME` and `p=N`, so `don't` was not understood and nothing was done.");
        insta::assert_snapshot!(parse("@greg lgtm once CI passes"), @"error: `lgtm` takes no arguments, so `once` was not understood and nothing was done.");
        insta::assert_snapshot!(parse("@greg try branch=x"), @"error: `try` takes no arguments, so `branch=x` was not understood and nothing was done.");
        insta::assert_snapshot!(parse("@greg cancel `now`"), @"error: `cancel` takes no arguments, so `` `…` `` was not understood and nothing was done.");
    }

    #[test]
    fn errors_and_commands_keep_their_order() {
        insta::assert_snapshot!(parse("@greg pleas\n@greg please"), @r"
        error: Unknown command `pleas`: did you mean `please`?
        Merge { branch: None, priority: None }
        ");
    }
}

mod silent {
    use super::*;

    #[test]
    fn comments_without_a_mention() {
        insta::assert_snapshot!(parse(""), @"(none)");
        insta::assert_snapshot!(parse("Looks good to me, please merge"), @"(none)");
        insta::assert_snapshot!(parse("lgtm"), @"(none)");
    }

    #[test]
    fn a_mention_without_a_command() {
        // Choice: a bare mention is a cc or a thank-you, so it gets no error reply.
        insta::assert_snapshot!(parse("@greg"), @"(none)");
        insta::assert_snapshot!(parse("thanks @greg"), @"(none)");
        insta::assert_snapshot!(parse("thanks @greg!"), @"(none)");
        insta::assert_snapshot!(parse("cc @greg @alice"), @"(none)");
        insta::assert_snapshot!(parse("@greg\nplease"), @"(none)");
    }

    #[test]
    fn prose_after_a_mid_line_mention() {
        insta::assert_snapshot!(parse("I asked @greg about it"), @"(none)");
        insta::assert_snapshot!(parse("Greg is away today"), @"(none)");
    }

    #[test]
    fn other_users_teams_and_addresses() {
        insta::assert_snapshot!(parse("@greg_bot please"), @"(none)");
        insta::assert_snapshot!(parse("@greg/reviewers please"), @"(none)");
        insta::assert_snapshot!(parse("mail greg@example.com please"), @"(none)");
        insta::assert_snapshot!(parse("Gregory please"), @"(none)");
    }

    #[test]
    fn commands_shown_as_inline_code() {
        insta::assert_snapshot!(parse("Type `@greg please` to merge."), @"(none)");
        insta::assert_snapshot!(parse("@greg `please`"), @"(none)");
        insta::assert_snapshot!(parse("`greg please`"), @"(none)");
    }

    #[test]
    fn tree_closures_in_code_and_quotes() {
        insta::assert_snapshot!(parse("Use `@greg treeclosed=5` during a freeze."), @"(none)");
        insta::assert_snapshot!(parse("> @greg treeopen\n\nNot yet."), @"(none)");
        insta::assert_snapshot!(parse("I asked @greg treeclosing questions"), @"(none)");
    }

    #[test]
    fn html_links_and_struck_text() {
        insta::assert_snapshot!(parse("<!-- @greg please -->"), @"(none)");
        insta::assert_snapshot!(parse("Done <!-- @greg please --> for now"), @"(none)");
        insta::assert_snapshot!(parse("[@greg please](https://example.com)"), @"(none)");
        insta::assert_snapshot!(parse("~~@greg please~~"), @"(none)");
    }
}

#[test]
fn odd_input_never_panics() {
    insta::assert_snapshot!(parse("@\n@@greg please\ngreg\n=\n@greg =\n@greg p\n@greg ✓\n@greg pléase\n@greg İ"), @r"
    error: Unknown command `=`: the `help` command lists the commands.
    error: Unknown command `p`: the `help` command lists the commands.
    error: Unknown command `✓`: the `help` command lists the commands.
    error: Unknown command `pléase`: did you mean `please`?
    error: Unknown command `İ`: the `help` command lists the commands.
    ");
    let deep = format!("{}@greg please", ">".repeat(10_000));
    insta::assert_snapshot!(parse(&deep), @"(none)");
    let many = "@greg retest\n".repeat(1_000);
    assert_eq!(
        parse_comment(&many, &Login::from("alice"), &addressing()).len(),
        1_000
    );
}

/// Behaviour of the original Python Greg that greg must not copy (SPEC §4).
mod greg_quirks_not_copied {
    use super::*;

    /// Quirk 1: Greg looked for the command text anywhere in the raw comment body, so a reply
    /// quoting someone's "greg please" merged again. Quotes are ignored.
    #[test]
    fn a_quoted_command_is_ignored() {
        insta::assert_snapshot!(parse("> greg please\n\nI don't think this is ready."), @"(none)");
        insta::assert_snapshot!(parse("> @greg please\n\nAgreed."), @"(none)");
        insta::assert_snapshot!(parse("> > Greg please\n> why?\n\nno"), @"(none)");
        insta::assert_snapshot!(
            parse("On Monday Alice wrote:\n> @greg please\n\nSo do I: @greg please"),
            @"Merge { branch: None, priority: None }"
        );
    }

    /// Quirk 2: commands inside code blocks (a pasted log, an example) triggered Greg.
    #[test]
    fn a_command_in_a_code_block_is_ignored() {
        insta::assert_snapshot!(parse("```\n@greg please\n```"), @"(none)");
        insta::assert_snapshot!(parse("~~~text\ngreg please\n~~~"), @"(none)");
        insta::assert_snapshot!(parse("Log:\n\n    @greg please\n    greg ok\n"), @"(none)");
        insta::assert_snapshot!(parse("```\n@greg please"), @"(none)");
    }

    /// Quirk 3: a substring match took `@gregory please` for a command to greg.
    #[test]
    fn a_longer_user_name_is_another_user() {
        insta::assert_snapshot!(parse("@gregory please"), @"(none)");
        insta::assert_snapshot!(parse("@greg-bot2 ok"), @"(none)");
        insta::assert_snapshot!(parse("@greggreg please"), @"(none)");
    }

    /// Quirk 4: the bot's own comments (its help text lists "@greg please") must not command
    /// it, whoever else quotes them.
    #[test]
    fn the_bots_own_comment_is_ignored() {
        let help = help_text("greg");
        insta::assert_snapshot!(parse_by(&help, "greg-bot"), @"(none)");
        insta::assert_snapshot!(parse_by("@greg please", "greg-bot"), @"(none)");
        insta::assert_snapshot!(parse_by("Greg please", "GREG-BOT"), @"(none)");
        // A person quoting the help text commands nothing either: every command in it is code.
        insta::assert_snapshot!(parse(&help), @"(none)");
    }

    /// Quirk 5: "greg please" in the middle of a sentence is prose, not a command.
    #[test]
    fn a_mid_sentence_name_is_prose() {
        insta::assert_snapshot!(parse("I told greg please stop"), @"(none)");
        insta::assert_snapshot!(parse("Ask Greg OK?"), @"(none)");
        insta::assert_snapshot!(parse("so greg retest it"), @"(none)");
    }
}

#[test]
fn help_text_lists_every_command() {
    insta::assert_snapshot!(help_text("greg"));
}

/// Found by fuzzing (fuzz/seeds/command): text that Markdown hides (struck through, a link's
/// text, inline HTML) used to vanish and glue the bot's name back together, so `@gre~~x~~g r+`
/// was a merge. Hidden text now separates what is around it.
#[test]
fn hidden_markdown_does_not_glue_the_bots_name_together() {
    for body in [
        "@gre~~x~~g r+",
        "@gre<b></b>g r+",
        "@gre[x](https://example.com)g r+",
        "gre~~x~~g please",
    ] {
        assert_eq!(parse(body), "(none)", "{body}");
    }
    // Hidden text beside a command does not stop it.
    assert_eq!(parse("@greg r+ ~~not now~~"), parse("@greg r+"));
    assert_ne!(parse("@greg r+"), "(none)");
}
