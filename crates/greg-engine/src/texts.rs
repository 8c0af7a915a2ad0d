//! Every text greg posts on a pull request, built in one place (bors' `comment.rs`), so the
//! wording is reviewed together and snapshot-tested.

use greg_core::{Blocker, BuildOutcome, Login, Sha};

/// Hidden marker at the end of every greg comment, so greg (and people) can tell them apart.
pub const MARKER: &str = "<!-- greg -->";

fn finish(mut body: String) -> String {
    body.push_str("\n\n");
    body.push_str(MARKER);
    body
}

/// "@greg please" in merge_mode staging, when the pull request waits behind others; `eta`:
/// when it should land (`None`: unknown, no merge build of `target` finished yet).
pub fn queued(head: &Sha, target: &str, position: usize, eta: Option<&crate::eta::Eta>) -> String {
    let when = match eta {
        Some(eta) => format!(
            "Expected to land in {} (from the last {} merge builds of `{target}`).",
            eta.words(),
            eta.based_on_builds
        ),
        None => {
            format!("Expected landing: unknown (no merge build of `{target}` has finished yet).")
        }
    };
    finish(format!(
        ":clock1: `{}` is queued for `{target}` at position {position}. {when}",
        head.short()
    ))
}

/// merge_mode staging: the target was fast-forwarded to the green staging commit.
pub fn landed(head: &Sha, target: &str, staging: &Sha, url: Option<&str>) -> String {
    let link = url.map(|u| format!(" ({u})")).unwrap_or_default();
    finish(format!(
        ":sunny: Merged `{}` into `{target}` as `{}`, built green{link}.",
        head.short(),
        staging.short()
    ))
}

/// merge_mode staging: the head was already contained in the target.
pub fn already_in_target(head: &Sha, target: &str) -> String {
    finish(format!(
        ":information_source: `{}` is already in `{target}`; nothing to merge.",
        head.short()
    ))
}

/// merge_mode staging: the head does not merge cleanly; the pull request left the queue.
pub fn merge_conflict(head: &Sha, target: &str) -> String {
    finish(format!(
        ":lock: `{}` does not merge cleanly into `{target}`: resolve the conflicts and ask again. \
         The pull request left the queue.",
        head.short()
    ))
}

/// merge_mode staging: the target branch is gone (or unreadable as a branch).
pub fn target_missing(head: &Sha, target: &str) -> String {
    finish(format!(
        ":x: Cannot merge `{}`: the target branch `{target}` does not exist. The pull request \
         left the queue.",
        head.short()
    ))
}

/// merge_mode staging: a staging build failed; the pull request left the queue.
pub fn staging_failed(head: &Sha, staging: &Sha, outcome: &str, url: Option<&str>) -> String {
    let link = url.map(|u| format!(" See {u}")).unwrap_or_default();
    finish(format!(
        ":broken_heart: The merge of `{}` (staging commit `{}`) {outcome}; nothing landed and \
         the pull request left the queue.{link}",
        head.short(),
        staging.short()
    ))
}

/// merge_mode staging: a push to the pull request dropped it from the queue.
pub fn dropped_new_head(old: &Sha, new: &Sha) -> String {
    finish(format!(
        ":warning: New commits (`{}`) were pushed after the approval of `{}`: the pull \
         request left the merge queue and its merge build was stopped. Ask again when ready.",
        new.short(),
        old.short()
    ))
}

/// merge_mode staging: the provider refused the fast-forward of the target (a protected
/// branch); `reason` is the provider's own message.
pub fn landing_refused(head: &Sha, target: &str, reason: &str) -> String {
    finish(format!(
        ":no_entry: The merge of `{}` built green, but `{target}` refused the fast-forward:\n\n\
         > {}\n\n\
         Nothing landed and the pull request left the queue. To let greg land, allow greg's \
         account to bypass this branch rule, or require the `greg/merge` status instead; then \
         ask again.",
        head.short(),
        one_line(reason)
    ))
}

/// merge_mode staging without staging refs (Bitbucket): a merge check vetoed the merge of the
/// pull request; `reason` is the provider's own message.
pub fn merge_vetoed(head: &Sha, target: &str, reason: &str) -> String {
    finish(format!(
        ":no_entry: The merge of `{}` into `{target}` built green, but the provider refused to \
         merge the pull request:\n\n> {}\n\n\
         Nothing landed and the pull request left the queue. Do what the merge check asks (or \
         exempt greg's account from it), then ask again.",
        head.short(),
        one_line(reason)
    ))
}

/// merge_mode staging: a step failed for good, or kept failing for `minutes` (retryable).
pub fn step_failed(
    head: &Sha,
    target: &str,
    step: &str,
    error: &str,
    minutes: Option<i64>,
) -> String {
    let how = match minutes {
        Some(m) => format!("kept failing for {m} minutes"),
        None => "failed".to_owned(),
    };
    finish(format!(
        ":x: {} `{}` into `{target}` {how}:\n\n> {}\n\n\
         Nothing landed and the pull request left the queue; ask again once this is resolved.",
        capitalized(step),
        head.short(),
        one_line(error)
    ))
}

/// merge_mode staging: the rules of SPEC §5 stopped holding for a queued pull request.
pub fn dropped_rules(head: &Sha, target: &str, blockers: &[Blocker]) -> String {
    let list: String = blockers.iter().map(|b| format!("\n- {b}")).collect();
    finish(format!(
        ":warning: `{}` may no longer merge into `{target}`:{list}\n\n\
         The pull request left the merge queue (its merge build, if any, was stopped). Ask \
         again when it is ready.",
        head.short()
    ))
}

/// merge_mode staging: the pull request was retargeted while queued; `blockers` are those of
/// the new base (empty: it joined the new base's queue).
pub fn retargeted(head: &Sha, old: &str, new: &str, blockers: &[Blocker]) -> String {
    if blockers.is_empty() {
        return finish(format!(
            ":twisted_rightwards_arrows: The pull request now targets `{new}`: `{}` left the \
             queue of `{old}` and joined the queue of `{new}`.",
            head.short()
        ));
    }
    let list: String = blockers.iter().map(|b| format!("\n- {b}")).collect();
    finish(format!(
        ":twisted_rightwards_arrows: The pull request now targets `{new}`: `{}` left the queue \
         of `{old}`, and may not merge into `{new}`:{list}\n\nAsk again when it is ready.",
        head.short()
    ))
}

/// A build greg triggered has not started after `minutes`; `why` is the builder's reason.
pub fn build_waiting(head: &Sha, context: &str, minutes: i64, why: Option<&str>) -> String {
    let said = why
        .map(|w| format!(" Jenkins says:\n\n> {}", one_line(w)))
        .unwrap_or_else(|| " Jenkins gave no reason.".to_owned());
    finish(format!(
        ":hourglass: The {context} build of `{}` has not started after {minutes} minutes.{said}",
        head.short()
    ))
}

/// One line of at most 500 characters, for quoting a provider's message.
fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(500).collect()
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// "@greg treeclosed=N".
pub fn tree_closed(target: &str, priority: i32) -> String {
    finish(format!(
        ":evergreen_tree: The tree of `{target}` is closed for merges below priority {priority}."
    ))
}

/// "@greg treeopen".
pub fn tree_opened(target: &str) -> String {
    finish(format!(":deciduous_tree: The tree of `{target}` is open."))
}

/// "@greg p=N" on a pull request that is not in the merge queue.
pub fn not_queued(priority: u32) -> String {
    finish(format!(
        "Noted priority {priority}, but this pull request is not in the merge queue: say \
         `please p={priority}` to queue it with that priority."
    ))
}

/// "@greg p=N" on a queued pull request.
pub fn priority_set(head: &Sha, priority: i32, position: Option<usize>) -> String {
    let at = position
        .map(|p| format!(" It is at position {p}."))
        .unwrap_or_default();
    finish(format!(
        ":1234: Priority of `{}` set to {priority}.{at}",
        head.short()
    ))
}

/// Answer to "@greg ok" and to a refused "@greg please".
pub fn mergeability(head: &Sha, blockers: &[Blocker]) -> String {
    if blockers.is_empty() {
        return finish(format!(
            ":white_check_mark: Ready to merge: `{}` meets every rule.",
            head.short()
        ));
    }
    let mut s = format!(":x: Not ready to merge (`{}`):", head.short());
    for b in blockers {
        s.push_str("\n- ");
        s.push_str(&b.to_string());
    }
    finish(s)
}

/// Acknowledges "@greg please": the merge job was started.
pub fn merge_started(head: &Sha, target: &str, job: &str) -> String {
    finish(format!(
        ":hourglass: Merging `{}` into `{target}`: started the merge job `{job}`.",
        head.short()
    ))
}

/// Acknowledges "@greg try".
pub fn try_started(head: &Sha, target: &str, job: &str) -> String {
    finish(format!(
        ":test_tube: Trying `{}` merged into `{target}` (job `{job}`, nothing lands).",
        head.short()
    ))
}

/// The merge job finished red.
pub fn merge_failed(head: &Sha, outcome: BuildOutcome, url: Option<&str>) -> String {
    let link = url.map(|u| format!(" See {u}")).unwrap_or_default();
    finish(format!(
        ":broken_heart: The merge of `{}` failed: the merge job ended {}.{link}",
        head.short(),
        outcome_word(outcome)
    ))
}

/// The merge job finished green.
pub fn merge_succeeded(head: &Sha, url: Option<&str>) -> String {
    let link = url.map(|u| format!(" ({u})")).unwrap_or_default();
    finish(format!(
        ":sunny: The merge job for `{}` passed{link}.",
        head.short()
    ))
}

/// The try build finished.
pub fn try_finished(head: &Sha, outcome: BuildOutcome, url: Option<&str>) -> String {
    let link = url.map(|u| format!(" See {u}")).unwrap_or_default();
    finish(format!(
        "Try build of `{}` ended {}.{link}",
        head.short(),
        outcome_word(outcome)
    ))
}

/// A build greg started never reported and is given up.
pub fn build_timed_out(head: &Sha, context: &str, url: Option<&str>) -> String {
    let link = url
        .map(|u| format!(" Last known page: {u}"))
        .unwrap_or_default();
    finish(format!(
        ":hourglass_flowing_sand: The {context} build of `{}` sent no result in time and was marked timed out.{link}",
        head.short()
    ))
}

/// The merge job could not be started at all.
pub fn build_not_started(head: &Sha, context: &str, reason: &str) -> String {
    finish(format!(
        ":warning: Could not start the {context} build of `{}`: {reason}",
        head.short()
    ))
}

/// A push to the head stopped a running merge build.
pub fn merge_dropped(old: &Sha, new: &Sha) -> String {
    finish(format!(
        ":no_entry_sign: The head moved from `{}` to `{}` while it was being merged: the merge build was stopped. Ask again once the new head is approved and green.",
        old.short(),
        new.short()
    ))
}

/// A user without write permission tried to command greg.
pub fn not_allowed(user: &Login, command: &str) -> String {
    finish(format!(
        "Sorry @{user}, only people with write access to this repository or its configured reviewers can ask me to `{command}`."
    ))
}

/// The comment held a command greg could not parse.
pub fn command_error(error: &str, bot_name: &str) -> String {
    finish(format!(
        "{error} Say `@{bot_name} help` for the list of commands."
    ))
}

/// Acknowledges "@greg review @a @b".
pub fn reviewers_added(reviewers: &[Login]) -> String {
    let names: Vec<String> = reviewers.iter().map(|l| format!("@{l}")).collect();
    finish(format!(
        "Noted: this pull request now needs an approval from {}.",
        names.join(", ")
    ))
}

/// Acknowledges "@greg cancel".
pub fn cancelled(by: &Login, stopped: usize) -> String {
    let what = match stopped {
        0 => "There was no merge build to stop.".to_owned(),
        1 => "Stopped 1 build.".to_owned(),
        n => format!("Stopped {n} builds."),
    };
    finish(format!("Merge request withdrawn by @{by}. {what}"))
}

/// "@greg retest" while a test build of the same head is already running.
pub fn already_building(head: &Sha) -> String {
    finish(format!(
        "A test build of `{}` is already running.",
        head.short()
    ))
}

/// "@greg please" while a merge build of the same head is running.
pub fn already_merging(head: &Sha) -> String {
    finish(format!(
        "A merge build of `{}` is already running.",
        head.short()
    ))
}

/// "@greg please" in a repository without a merge job.
pub fn no_merge_job() -> String {
    finish("This repository has no merge job configured (`jobs.merge` in greg's config), so I cannot merge.".to_owned())
}

/// "@greg p=N" in merge_mode builder, where there is no queue.
pub fn priority_without_queue(priority: u32) -> String {
    finish(format!(
        "Noted priority {priority}, but this repository uses merge_mode builder: merges start at once, there is no queue to order."
    ))
}

/// The help text, wrapped as a comment.
pub fn help(bot_name: &str) -> String {
    finish(greg_command::help_text(bot_name))
}

fn outcome_word(o: BuildOutcome) -> &'static str {
    match o {
        BuildOutcome::Success => "in success",
        BuildOutcome::Unstable => "unstable",
        BuildOutcome::Failure => "in failure",
        BuildOutcome::Aborted => "aborted",
        BuildOutcome::NotBuilt => "not built",
    }
}

/// Commit-status description for a build's outcome (at most 140 characters).
pub fn status_description(context: &str, outcome: BuildOutcome, number: Option<u64>) -> String {
    let n = number.map(|n| format!(" #{n}")).unwrap_or_default();
    format!("{context} build{n} ended {}", outcome_word(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use greg_core::CommitState;

    fn sha() -> Sha {
        Sha::parse("0123456789abcdef0123456789abcdef01234567").expect("valid")
    }

    #[test]
    fn mergeability_texts() {
        insta::assert_snapshot!(mergeability(&sha(), &[]));
        insta::assert_snapshot!(mergeability(
            &sha(),
            &[
                Blocker::ReviewerMissing {
                    login: Login::from("alice"),
                    stale: true
                },
                Blocker::NotEnoughApprovals { have: 0, need: 1 },
                Blocker::TestFailed {
                    state: CommitState::Failure
                },
            ]
        ));
    }

    #[test]
    fn queued_with_and_without_an_eta() {
        let eta = crate::eta::Eta {
            low_ms: 12 * 60_000,
            high_ms: 31 * 60_000,
            based_on_builds: 7,
        };
        insta::assert_snapshot!(queued(&sha(), "main", 3, Some(&eta)));
        insta::assert_snapshot!(queued(&sha(), "main", 2, None));
    }

    #[test]
    fn queue_exit_texts() {
        insta::assert_snapshot!(landing_refused(
            &sha(),
            "main",
            "Protected branch update failed for refs/heads/main.\nRequired status check \"ci\" is expected."
        ));
        insta::assert_snapshot!(merge_vetoed(
            &sha(),
            "main",
            "Not all required builds are successful yet"
        ));
        insta::assert_snapshot!(step_failed(
            &sha(),
            "main",
            "landing",
            "github: transient: 502 Bad Gateway",
            Some(60)
        ));
        insta::assert_snapshot!(dropped_rules(
            &sha(),
            "main",
            &[Blocker::NotEnoughApprovals { have: 0, need: 1 }]
        ));
        insta::assert_snapshot!(retargeted(&sha(), "main", "release", &[]));
        insta::assert_snapshot!(build_waiting(
            &sha(),
            "merge",
            10,
            Some("Waiting for next available executor")
        ));
    }

    #[test]
    fn build_texts() {
        insta::assert_snapshot!(merge_failed(
            &sha(),
            BuildOutcome::Failure,
            Some("http://j/job/m/3/")
        ));
        insta::assert_snapshot!(merge_started(&sha(), "master", "demo-merge"));
        insta::assert_snapshot!(not_allowed(&Login::from("mallory"), "please"));
        insta::assert_snapshot!(cancelled(&Login::from("alice"), 1));
        insta::assert_snapshot!(build_timed_out(&sha(), "merge", None));
    }
}

/// A delivery carrying `author`'s command was dead-lettered (SPEC §11): the command could not
/// be carried out; `kind` says what failed (never a message or a secret); an admin can run it
/// again with `greg redeliver SEQ`.
pub fn command_dead_lettered(author: &Login, kind: &str, seq: i64) -> String {
    finish(format!(
        ":warning: Sorry @{author}, I could not carry out your command: {kind}. An admin can \
         run it again with `greg redeliver {seq}` once that is fixed."
    ))
}

/// A reviewer without write permission asked for a command that needs it (SPEC §4).
pub fn write_permission_needed(user: &Login, command: &str) -> String {
    finish(format!(
        "Sorry @{user}, `{command}` needs write access to this repository. As a reviewer you \
         can use `ok`, `lgtm`, `not lgtm` and `help`."
    ))
}

#[cfg(test)]
mod dead_letter_tests {
    use super::*;

    #[test]
    fn write_permission_text() {
        insta::assert_snapshot!(write_permission_needed(&Login::from("dave"), "treeclosed"));
    }

    #[test]
    fn dead_letter_text() {
        insta::assert_snapshot!(command_dead_lettered(
            &Login::from("alice"),
            "github: unavailable (server errors or timeouts)",
            42
        ));
    }
}
