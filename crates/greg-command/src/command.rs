//! The commands greg understands in pull-request comments (SPEC §4) and the user errors a
//! comment can produce. Errors are for people: their `Display` is one Markdown sentence that
//! the engine posts as a reply; they are never logged as internal failures.

use greg_core::Login;
use std::fmt;

/// Who the bot is, as people address it in comments.
///
/// Both names are addressable: `@greg please` (the configured `server.bot_name`) and
/// `@greg-bot please` (the bot account's own login, as users of the original Greg wrote it).
/// A GitHub App login such as `greg-app[bot]` is also addressable as `@greg-app`.
/// Comments written by `bot_login` are never read as commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressing {
    /// The configured bot name (`server.bot_name`, default `greg`), without the `@`.
    pub bot_name: String,
    /// The provider login of the account greg posts as, when known.
    pub bot_login: Option<Login>,
}

/// One command addressed to the bot (SPEC §4 table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ok`: report mergeability ("Ready to merge" or every blocker).
    Ok,
    /// `please`, `:+1:`, `r+`, `+1`: merge when mergeable, optionally into `branch` instead of
    /// the pull request's target, and with queue `priority` (`p=N`, higher goes first).
    Merge {
        branch: Option<String>,
        priority: Option<u32>,
    },
    /// `help`: list the commands.
    Help,
    /// `review @a @b`: require these reviewers (at least one, `@` stripped, duplicates removed).
    Review { reviewers: Vec<Login> },
    /// `lgtm`: approve the current head.
    Lgtm,
    /// `not lgtm`: withdraw the author's approval.
    NotLgtm,
    /// `try`, `test`: build the merge result without landing it.
    Try,
    /// `retest`: run the test build again for the current head.
    Retest,
    /// `cancel`, `:-1:`, `r-`, `-1`: withdraw the merge request and cancel its builds.
    Cancel,
    /// `p=N` on its own: set the queue priority.
    Priority { priority: u32 },
    /// `treeclosed=N` (bors): close the tree of the target branch, so that merges of priority
    /// below `priority` wait until `treeopen`.
    TreeClosed { priority: u32 },
    /// `treeopen`, `treeclosed-` (bors): open the tree again.
    TreeOpen,
}

impl Command {
    /// The kind of this command, for permission checks and messages.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Ok => CommandKind::Ok,
            Command::Merge { .. } => CommandKind::Merge,
            Command::Help => CommandKind::Help,
            Command::Review { .. } => CommandKind::Review,
            Command::Lgtm => CommandKind::Lgtm,
            Command::NotLgtm => CommandKind::NotLgtm,
            Command::Try => CommandKind::Try,
            Command::Retest => CommandKind::Retest,
            Command::Cancel => CommandKind::Cancel,
            Command::Priority { .. } => CommandKind::Priority,
            Command::TreeClosed { .. } => CommandKind::TreeClosed,
            Command::TreeOpen => CommandKind::TreeOpen,
        }
    }
}

/// The kinds of [`Command`], without their arguments. `Display` gives the canonical spelling
/// (`please` for [`CommandKind::Merge`], `p=N` for [`CommandKind::Priority`], `treeclosed`
/// for [`CommandKind::TreeClosed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Ok,
    Merge,
    Help,
    Review,
    Lgtm,
    NotLgtm,
    Try,
    Retest,
    Cancel,
    Priority,
    TreeClosed,
    TreeOpen,
}

impl CommandKind {
    /// Every kind, in the order the help text lists them.
    pub const ALL: [CommandKind; 12] = [
        CommandKind::Ok,
        CommandKind::Merge,
        CommandKind::Cancel,
        CommandKind::Try,
        CommandKind::Retest,
        CommandKind::Review,
        CommandKind::Lgtm,
        CommandKind::NotLgtm,
        CommandKind::Priority,
        CommandKind::TreeClosed,
        CommandKind::TreeOpen,
        CommandKind::Help,
    ];

    /// The spellings that select this kind, canonical first, lower-case. Empty for
    /// [`CommandKind::Priority`], which is written as the option `p=N`. `treeclosed` is
    /// written `treeclosed=N`; the bare word selects it only to say that `N` is missing.
    pub fn words(self) -> &'static [&'static str] {
        match self {
            CommandKind::Ok => &["ok"],
            CommandKind::Merge => &["please", ":+1:", "r+", "+1"],
            CommandKind::Help => &["help"],
            CommandKind::Review => &["review"],
            CommandKind::Lgtm => &["lgtm"],
            CommandKind::NotLgtm => &["not lgtm"],
            CommandKind::Try => &["try", "test"],
            CommandKind::Retest => &["retest"],
            CommandKind::Cancel => &["cancel", ":-1:", "r-", "-1"],
            CommandKind::Priority => &[],
            CommandKind::TreeClosed => &["treeclosed"],
            CommandKind::TreeOpen => &["treeopen", "treeclosed-"],
        }
    }

    /// For a command written as `key=N`, its key and its usage: `("p", "p=N")` and
    /// `("treeclosed", "treeclosed=N")`.
    pub(crate) fn keyed(self) -> Option<(&'static str, &'static str)> {
        match self {
            CommandKind::Priority => Some(("p", "p=N")),
            CommandKind::TreeClosed => Some(("treeclosed", "treeclosed=N")),
            CommandKind::Ok
            | CommandKind::Merge
            | CommandKind::Help
            | CommandKind::Review
            | CommandKind::Lgtm
            | CommandKind::NotLgtm
            | CommandKind::Try
            | CommandKind::Retest
            | CommandKind::Cancel
            | CommandKind::TreeOpen => None,
        }
    }

    /// The canonical spelling.
    pub fn name(self) -> &'static str {
        match self.words().first() {
            Some(word) => word,
            None => "p=N",
        }
    }

    /// The options this kind accepts after its word, for error messages.
    fn accepted(self) -> &'static str {
        match self {
            CommandKind::Merge => "only `branch=NAME` and `p=N`",
            CommandKind::Review => "only `@user` names",
            CommandKind::TreeClosed => "only `=N`",
            CommandKind::Ok
            | CommandKind::Help
            | CommandKind::Lgtm
            | CommandKind::NotLgtm
            | CommandKind::Try
            | CommandKind::Retest
            | CommandKind::Cancel
            | CommandKind::Priority
            | CommandKind::TreeOpen => "no arguments",
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An argument a command takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Argument {
    /// `branch=NAME`: the branch to merge into.
    Branch,
    /// `p=N`: the queue priority, a `u32`.
    Priority,
    /// `treeclosed=N`: the lowest priority that still merges while the tree is closed, a
    /// `u32`.
    TreeClosed,
    /// `@user`: a reviewer of `review`.
    Reviewer,
}

impl fmt::Display for Argument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Argument::Branch => "branch",
            Argument::Priority => "p",
            Argument::TreeClosed => "treeclosed",
            Argument::Reviewer => "reviewer",
        })
    }
}

/// Why a line addressed to the bot is not a valid command. A user error: the engine replies
/// with its `Display`, one Markdown sentence, and does nothing else for that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The word after the mention is no command; `suggestion` is the closest command word when
    /// it is a likely typo (`pleas` → `please`).
    Unknown {
        word: String,
        suggestion: Option<&'static str>,
    },
    /// A required argument is absent (`review` without `@user`) or an option has no value
    /// (`branch=`).
    MissingArgument {
        command: CommandKind,
        argument: Argument,
    },
    /// An argument's value is malformed (`p=high`, `treeclosed=-1`, `branch=a..b`,
    /// `@org/team`).
    InvalidArgument {
        command: CommandKind,
        argument: Argument,
        value: String,
    },
    /// The same option was given twice (`p=1 p=2`).
    DuplicateArgument {
        command: CommandKind,
        argument: Argument,
    },
    /// A word or `key=value` the command does not take (`please don't`, `try branch=x`).
    UnexpectedArgument {
        command: CommandKind,
        argument: String,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown {
                word,
                suggestion: Some(suggestion),
            } => write!(
                f,
                "Unknown command {}: did you mean {}?",
                code(word),
                code(suggestion)
            ),
            CommandError::Unknown {
                word,
                suggestion: None,
            } => write!(
                f,
                "Unknown command {}: the `help` command lists the commands.",
                code(word)
            ),
            CommandError::MissingArgument { command, argument } => match argument {
                Argument::Reviewer => write!(
                    f,
                    "{} needs at least one reviewer, as in `review @alice @bob`.",
                    code(command.name())
                ),
                Argument::Branch | Argument::Priority | Argument::TreeClosed => write!(
                    f,
                    "{} needs a value, as in {}.",
                    code(&format!("{argument}=")),
                    code(example(*argument))
                ),
            },
            CommandError::InvalidArgument {
                command: _,
                argument,
                value,
            } => {
                let (shown, expected) = match argument {
                    Argument::Branch => (
                        format!("branch={value}"),
                        "a branch name of letters, digits and `-_./+`, as git allows",
                    ),
                    Argument::Priority | Argument::TreeClosed => (
                        format!("{argument}={value}"),
                        "a whole number from 0 to 4294967295",
                    ),
                    Argument::Reviewer => (value.clone(), "a user name, as in `@alice`"),
                };
                write!(f, "{} is not valid: expected {expected}", code(&shown))?;
                if value.contains('`') {
                    f.write_str(", written as plain text rather than inline code")?;
                }
                f.write_str(".")
            }
            CommandError::DuplicateArgument { command, argument } => write!(
                f,
                "{} was given {} more than once.",
                code(command.name()),
                code(&format!("{argument}="))
            ),
            CommandError::UnexpectedArgument { command, argument } => write!(
                f,
                "{} takes {}, so {} was not understood and nothing was done.",
                code(command.name()),
                command.accepted(),
                code(argument)
            ),
        }
    }
}

impl std::error::Error for CommandError {}

/// An example use of an option, for error messages.
fn example(argument: Argument) -> &'static str {
    match argument {
        Argument::Branch => "branch=release-1.0",
        Argument::Priority => "p=10",
        Argument::TreeClosed => "treeclosed=10",
        Argument::Reviewer => "@alice",
    }
}

/// `text` as a Markdown code span whose fence is longer than any run of backticks inside it
/// (CommonMark §6.1), so user text cannot break out of it.
pub(crate) fn code(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(error: CommandError) -> String {
        error.to_string()
    }

    #[test]
    fn unknown_with_suggestion() {
        let e = CommandError::Unknown {
            word: "pleas".into(),
            suggestion: Some("please"),
        };
        assert_eq!(shown(e), "Unknown command `pleas`: did you mean `please`?");
    }

    #[test]
    fn unknown_without_suggestion() {
        let e = CommandError::Unknown {
            word: "deploy".into(),
            suggestion: None,
        };
        assert_eq!(
            shown(e),
            "Unknown command `deploy`: the `help` command lists the commands."
        );
    }

    #[test]
    fn missing_reviewer() {
        let e = CommandError::MissingArgument {
            command: CommandKind::Review,
            argument: Argument::Reviewer,
        };
        assert_eq!(
            shown(e),
            "`review` needs at least one reviewer, as in `review @alice @bob`."
        );
    }

    #[test]
    fn missing_option_values() {
        let branch = CommandError::MissingArgument {
            command: CommandKind::Merge,
            argument: Argument::Branch,
        };
        assert_eq!(
            shown(branch),
            "`branch=` needs a value, as in `branch=release-1.0`."
        );
        let p = CommandError::MissingArgument {
            command: CommandKind::Priority,
            argument: Argument::Priority,
        };
        assert_eq!(shown(p), "`p=` needs a value, as in `p=10`.");
        let closed = CommandError::MissingArgument {
            command: CommandKind::TreeClosed,
            argument: Argument::TreeClosed,
        };
        assert_eq!(
            shown(closed),
            "`treeclosed=` needs a value, as in `treeclosed=10`."
        );
    }

    #[test]
    fn invalid_arguments() {
        let p = CommandError::InvalidArgument {
            command: CommandKind::Merge,
            argument: Argument::Priority,
            value: "high".into(),
        };
        assert_eq!(
            shown(p),
            "`p=high` is not valid: expected a whole number from 0 to 4294967295."
        );
        let closed = CommandError::InvalidArgument {
            command: CommandKind::TreeClosed,
            argument: Argument::TreeClosed,
            value: "-1".into(),
        };
        assert_eq!(
            shown(closed),
            "`treeclosed=-1` is not valid: expected a whole number from 0 to 4294967295."
        );
        let branch = CommandError::InvalidArgument {
            command: CommandKind::Merge,
            argument: Argument::Branch,
            value: "a..b".into(),
        };
        assert_eq!(
            shown(branch),
            "`branch=a..b` is not valid: expected a branch name of letters, digits and `-_./+`, as git allows."
        );
        let reviewer = CommandError::InvalidArgument {
            command: CommandKind::Review,
            argument: Argument::Reviewer,
            value: "@org/team".into(),
        };
        assert_eq!(
            shown(reviewer),
            "`@org/team` is not valid: expected a user name, as in `@alice`."
        );
    }

    #[test]
    fn invalid_argument_in_inline_code_says_so_and_stays_one_code_span() {
        let e = CommandError::InvalidArgument {
            command: CommandKind::Merge,
            argument: Argument::Branch,
            value: "`…`".into(),
        };
        assert_eq!(
            shown(e),
            "`` branch=`…` `` is not valid: expected a branch name of letters, digits and `-_./+`, as git allows, written as plain text rather than inline code."
        );
    }

    #[test]
    fn duplicate_argument() {
        let e = CommandError::DuplicateArgument {
            command: CommandKind::Merge,
            argument: Argument::Priority,
        };
        assert_eq!(shown(e), "`please` was given `p=` more than once.");
    }

    #[test]
    fn unexpected_arguments() {
        let merge = CommandError::UnexpectedArgument {
            command: CommandKind::Merge,
            argument: "don't".into(),
        };
        assert_eq!(
            shown(merge),
            "`please` takes only `branch=NAME` and `p=N`, so `don't` was not understood and nothing was done."
        );
        let retest = CommandError::UnexpectedArgument {
            command: CommandKind::Retest,
            argument: "branch=x".into(),
        };
        assert_eq!(
            shown(retest),
            "`retest` takes no arguments, so `branch=x` was not understood and nothing was done."
        );
        let closed = CommandError::UnexpectedArgument {
            command: CommandKind::TreeClosed,
            argument: "now".into(),
        };
        assert_eq!(
            shown(closed),
            "`treeclosed` takes only `=N`, so `now` was not understood and nothing was done."
        );
        let review = CommandError::UnexpectedArgument {
            command: CommandKind::Review,
            argument: "alice".into(),
        };
        assert_eq!(
            shown(review),
            "`review` takes only `@user` names, so `alice` was not understood and nothing was done."
        );
    }

    #[test]
    fn code_spans_survive_backticks_in_user_text() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code("a``b"), "```a``b```");
    }

    #[test]
    fn kinds_have_distinct_words_and_a_name() {
        let mut seen = std::collections::HashSet::new();
        for kind in CommandKind::ALL {
            assert!(!kind.name().is_empty());
            for word in kind.words() {
                assert!(seen.insert(*word), "{word} is used twice");
            }
        }
        assert_eq!(CommandKind::Priority.name(), "p=N");
        assert_eq!(CommandKind::Merge.to_string(), "please");
        assert_eq!(CommandKind::TreeClosed.name(), "treeclosed");
        assert_eq!(CommandKind::TreeOpen.name(), "treeopen");
    }

    #[test]
    fn keyed_kinds_have_distinct_keys_and_usages_that_start_with_them() {
        let keyed: Vec<_> = CommandKind::ALL
            .into_iter()
            .filter_map(|kind| kind.keyed().map(|(key, usage)| (kind, key, usage)))
            .collect();
        assert_eq!(keyed.len(), 2);
        for (kind, key, usage) in keyed {
            assert_eq!(usage, format!("{key}=N"), "{kind:?}");
        }
    }
}
