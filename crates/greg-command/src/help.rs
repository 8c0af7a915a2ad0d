//! The help text greg posts for `@greg help`: one Markdown table row per command kind, from
//! an exhaustive `match`, so a new command without help text does not compile.

use crate::command::{CommandKind, code};

/// The help text (GitHub-flavoured Markdown) listing every command as addressed to
/// `@{bot_name}`, with its other spellings and what it does, then the addressing rules.
/// Every command appears inside a code span, so quoting the help text commands nothing.
pub fn help_text(bot_name: &str) -> String {
    let mut out = format!(
        "{} understands these commands in pull-request comments:\n\n\
         | Command | Also | What it does |\n|---|---|---|\n",
        code(&format!("@{bot_name}"))
    );
    for kind in CommandKind::ALL {
        let (usage, meaning) = entry(kind);
        let also: Vec<String> = kind.words().iter().skip(1).map(|w| code(w)).collect();
        out.push_str(&format!(
            "| {} | {} | {meaning} |\n",
            code(&format!("@{bot_name} {usage}")),
            also.join(" ")
        ));
    }
    out.push_str(&format!(
        "\nOne command per line; case does not matter. A line may also start with {} \
         without the `@`. Commands in code, in quotes and in {}'s own comments are ignored. \
         Only people with write access and the configured reviewers can give commands.\n",
        code(&format!("{bot_name} please")),
        bot_name
    ));
    out
}

/// How to write a command kind, and what it does.
fn entry(kind: CommandKind) -> (&'static str, &'static str) {
    match kind {
        CommandKind::Ok => (
            "ok",
            "Says whether the pull request is ready to merge, listing every blocker.",
        ),
        CommandKind::Merge => (
            "please [branch=NAME] [p=N]",
            "Merges when mergeable (runs the merge job), into `NAME` instead of the target \
             branch when given, with queue priority `N`.",
        ),
        CommandKind::Help => ("help", "Shows this list."),
        CommandKind::Review => (
            "review @user [@user …]",
            "Requires these reviewers to approve the current head.",
        ),
        CommandKind::Lgtm => ("lgtm", "Approves the current head."),
        CommandKind::NotLgtm => ("not lgtm", "Withdraws your approval."),
        CommandKind::Try => ("try", "Builds the merge result without landing it."),
        CommandKind::Retest => ("retest", "Runs the test build again for the current head."),
        CommandKind::Cancel => (
            "cancel",
            "Withdraws the merge request and cancels its builds.",
        ),
        CommandKind::Priority => ("p=N", "Sets the queue priority; higher merges first."),
        CommandKind::TreeClosed => (
            "treeclosed=N",
            "Closes the tree of the target branch: merges with priority below `N` wait until \
             `treeopen`.",
        ),
        CommandKind::TreeOpen => ("treeopen", "Opens the tree again."),
    }
}
