//! "Did you mean" for unknown command words: the closest word of the vocabulary by edit
//! distance (optimal string alignment, i.e. Levenshtein plus adjacent transpositions, so
//! `retets` is one edit from `retest`).

use crate::command::CommandKind;

/// Words longer than this are not compared: no command is near them, and the distance is
/// quadratic in the length.
const MAX_COMPARED_CHARS: usize = 32;

/// The command word closest to `word` (compared lower-case), when it is within 1 edit for
/// words of up to 4 characters and within 2 edits for longer ones; ties go to the word
/// listed first in [`CommandKind::ALL`]. `None` when nothing is that close.
pub(crate) fn suggest(word: &str) -> Option<&'static str> {
    let word: Vec<char> = word.to_lowercase().chars().collect();
    if word.is_empty() || word.len() > MAX_COMPARED_CHARS {
        return None;
    }
    let limit = if word.len() <= 4 { 1 } else { 2 };
    CommandKind::ALL
        .iter()
        .flat_map(|kind| kind.words().iter().copied())
        .map(|candidate| (osa_distance(&word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// For an unknown `key=value` word: the usage of the `key=N` command (`p=N`,
/// `treeclosed=N`) whose key is closest to `key`, within the same limits as [`suggest`].
pub(crate) fn suggest_key(key: &str) -> Option<&'static str> {
    let key: Vec<char> = key.to_lowercase().chars().collect();
    if key.is_empty() || key.len() > MAX_COMPARED_CHARS {
        return None;
    }
    let limit = if key.len() <= 4 { 1 } else { 2 };
    CommandKind::ALL
        .iter()
        .filter_map(|kind| kind.keyed())
        .map(|(candidate, usage)| (osa_distance(&key, candidate), usage))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, usage)| usage)
}

/// Optimal-string-alignment distance between `a` and `b`: insertions, deletions,
/// substitutions and swaps of two adjacent characters each cost 1.
fn osa_distance(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    // d[i * width + j] is the distance between a[..i] and b[..j].
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distance(a: &str, b: &str) -> usize {
        osa_distance(&a.chars().collect::<Vec<_>>(), b)
    }

    #[test]
    fn distances() {
        assert_eq!(distance("please", "please"), 0);
        assert_eq!(distance("pleas", "please"), 1);
        assert_eq!(distance("retets", "retest"), 1);
        assert_eq!(distance("lgmt", "lgtm"), 1);
        assert_eq!(distance("", "ok"), 2);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions_for_typos() {
        assert_eq!(suggest("pleas"), Some("please"));
        assert_eq!(suggest("PLEASE!"), Some("please"));
        assert_eq!(suggest("plz"), None);
        assert_eq!(suggest("retets"), Some("retest"));
        assert_eq!(suggest("retst"), Some("retest"));
        assert_eq!(suggest("lgmt"), Some("lgtm"));
        assert_eq!(suggest("cancle"), Some("cancel"));
        assert_eq!(suggest("hlep"), Some("help"));
        assert_eq!(suggest("not lgmt"), Some("not lgtm"));
        assert_eq!(suggest("reveiw"), Some("review"));
        assert_eq!(suggest("treeclose"), Some("treeclosed"));
        assert_eq!(suggest("treopen"), Some("treeopen"));
        assert_eq!(suggest("tree-open"), Some("treeopen"));
    }

    #[test]
    fn suggestions_for_misspelt_keys() {
        assert_eq!(suggest_key("treclosed"), Some("treeclosed=N"));
        assert_eq!(suggest_key("TreeClose"), Some("treeclosed=N"));
        assert_eq!(suggest_key("tree_closed"), Some("treeclosed=N"));
        assert_eq!(suggest_key("q"), Some("p=N"));
        assert_eq!(suggest_key("branch"), None);
        assert_eq!(suggest_key("treeopen"), None);
        assert_eq!(suggest_key(""), None);
    }

    #[test]
    fn short_words_need_a_close_match() {
        // Two edits would turn most short English words into `ok` or `try`.
        assert_eq!(suggest("is"), None);
        assert_eq!(suggest("to"), None);
        assert_eq!(suggest("the"), None);
        assert_eq!(suggest("ko"), Some("ok"));
    }

    #[test]
    fn unrelated_and_huge_words_get_none() {
        assert_eq!(suggest("deploy"), None);
        assert_eq!(suggest(&"a".repeat(10_000)), None);
        assert_eq!(suggest(""), None);
    }
}
