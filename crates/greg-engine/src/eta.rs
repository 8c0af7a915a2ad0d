//! When a queued pull request should land: an ETA with a range (issue 13 item 2), a pure
//! function of the queue and of the measured durations of the target's recent merge builds.
//!
//! Design note. The sample is the target's recent merge builds that ran to a result (success
//! or failure), each lasting `updated_ms - created_ms` (trigger to result, Jenkins' own queue
//! included). From it: the median and the 90th percentile of a build, and the share of builds
//! that failed. The queue is a pipeline of `window` candidates of `batch` pull requests each
//! (SPEC §10). A candidate in flight lands when its build and every build before it have
//! finished, so its remaining time is the largest remaining time of the candidates up to it
//! (a build's remaining time is its duration less what it has run, never below zero). A
//! waiting entry `j` places behind the in-flight candidates (0-based among waiting merges)
//! starts when `j / (window × batch)` rounds of builds have passed after the head's
//! candidate finished, and then takes one build. The low end uses the median and assumes every
//! build ahead is green; the high end uses the 90th percentile and adds one more round of
//! builds for each failure expected among the candidates ahead (failure share × candidates
//! ahead, rounded up): a failed candidate makes the ones behind it build again. With no
//! finished build in the sample the ETA is unknown: greg never invents a number.

use serde::Serialize;

/// How many recent builds the sample holds at most.
pub const SAMPLE: i64 = 50;

/// What the recent merge builds of one target measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BuildStats {
    /// Median duration, milliseconds.
    pub median_ms: i64,
    /// 90th percentile duration (nearest rank), milliseconds.
    pub p90_ms: i64,
    /// Builds in the sample.
    pub builds: usize,
    /// Of those, how many failed.
    pub failed: usize,
}

impl BuildStats {
    /// The statistics of `durations` (milliseconds; negative ones are taken as 0) of which
    /// `failed` failed; `None` for an empty sample.
    pub fn of(durations: &[i64], failed: usize) -> Option<Self> {
        if durations.is_empty() {
            return None;
        }
        let mut sorted: Vec<i64> = durations.iter().map(|d| (*d).max(0)).collect();
        sorted.sort_unstable();
        Some(Self {
            median_ms: nearest_rank(&sorted, 50),
            p90_ms: nearest_rank(&sorted, 90),
            builds: sorted.len(),
            failed: failed.min(sorted.len()),
        })
    }
}

/// The `p`th percentile of a sorted, non-empty sample by nearest rank.
fn nearest_rank(sorted: &[i64], p: usize) -> i64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[(rank - 1).min(sorted.len() - 1)]
}

/// An ETA: between `low_ms` and `high_ms` milliseconds from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Eta {
    /// The earliest expected landing, milliseconds from now.
    pub low_ms: i64,
    /// The latest expected landing, milliseconds from now (at least `low_ms`).
    pub high_ms: i64,
    /// How many finished builds the estimate rests on.
    pub based_on_builds: usize,
}

/// Where one merge stands, for [`merge_etas`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// In candidate number `candidate` (0-based, in chain order) whose build has run for
    /// `elapsed_ms` (0 when not started yet); `landing`: built green, only landing is left.
    InFlight {
        /// The candidate's place in the chain.
        candidate: usize,
        /// How long its build has run.
        elapsed_ms: i64,
        /// Built green: nothing left to build.
        landing: bool,
    },
    /// Waiting, at this 0-based place among the waiting merges.
    Waiting(usize),
}

/// The pipeline's shape (SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Candidates built at once (at least 1).
    pub window: usize,
    /// Pull requests per candidate (at least 1).
    pub batch: usize,
}

fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The ETA of every slot of one queue's merges, in the order given; all `None` without
/// statistics.
pub fn merge_etas(stats: Option<BuildStats>, shape: Shape, slots: &[Slot]) -> Vec<Option<Eta>> {
    let Some(stats) = stats else {
        return vec![None; slots.len()];
    };
    let per_round = shape.window.max(1).saturating_mul(shape.batch.max(1));
    // Remaining time of each in-flight candidate, (low, high), then the running maximum along
    // the chain: a candidate lands after every one before it.
    let mut remaining: Vec<(i64, i64)> = Vec::new();
    for s in slots {
        if let Slot::InFlight {
            candidate,
            elapsed_ms,
            landing,
        } = *s
        {
            if remaining.len() <= candidate {
                remaining.resize(candidate + 1, (0, 0));
            }
            let left = |d: i64| if landing { 0 } else { (d - elapsed_ms).max(0) };
            let (lo, hi) = remaining[candidate];
            remaining[candidate] = (lo.max(left(stats.median_ms)), hi.max(left(stats.p90_ms)));
        }
    }
    let mut chain = remaining.clone();
    for i in 1..chain.len() {
        chain[i].0 = chain[i].0.max(chain[i - 1].0);
        chain[i].1 = chain[i].1.max(chain[i - 1].1);
    }
    let in_flight = chain.len();
    // The head's candidate frees the first slot; the last in-flight one bounds the high end.
    let head = chain.first().copied().unwrap_or((0, 0));
    let tail = chain.last().copied().unwrap_or((0, 0));
    let failures_ahead = |candidates_ahead: usize| -> i64 {
        // ceil(failed / builds × candidates_ahead), in integers.
        let num = stats.failed.saturating_mul(candidates_ahead);
        as_i64(num.div_ceil(stats.builds.max(1)))
    };
    slots
        .iter()
        .map(|s| {
            let (low, high) = match *s {
                Slot::InFlight { candidate, .. } => {
                    let (lo, hi) = chain.get(candidate).copied().unwrap_or((0, 0));
                    (lo, hi + failures_ahead(candidate) * stats.p90_ms)
                }
                Slot::Waiting(j) => {
                    let rounds = as_i64(j / per_round);
                    let ahead = in_flight + j / shape.batch.max(1);
                    let low = head.0 + rounds * stats.median_ms + stats.median_ms;
                    let high = tail.1.max(head.1)
                        + rounds * stats.p90_ms
                        + stats.p90_ms
                        + failures_ahead(ahead) * stats.p90_ms;
                    (low, high)
                }
            };
            Some(Eta {
                low_ms: low,
                high_ms: high.max(low),
                based_on_builds: stats.builds,
            })
        })
        .collect()
}

/// The ETA of a try or test_merged entry: one build, which has run for `elapsed_ms` (0 when
/// not started).
pub fn single_build_eta(stats: Option<BuildStats>, elapsed_ms: i64) -> Option<Eta> {
    let stats = stats?;
    let low = (stats.median_ms - elapsed_ms).max(0);
    Some(Eta {
        low_ms: low,
        high_ms: (stats.p90_ms - elapsed_ms).max(low),
        based_on_builds: stats.builds,
    })
}

/// `d` milliseconds in words for people: `under a minute`, `12 min`, `1 h 5 min`.
pub fn human(d: i64) -> String {
    let minutes = (d.max(0) + 59_999) / 60_000;
    match minutes {
        0 => "under a minute".to_owned(),
        m if m < 60 => format!("{m} min"),
        m if m % 60 == 0 => format!("{} h", m / 60),
        m => format!("{} h {} min", m / 60, m % 60),
    }
}

impl Eta {
    /// The range in words: `12 min – 20 min`, or one figure when both ends round alike.
    pub fn words(&self) -> String {
        let (low, high) = (human(self.low_ms), human(self.high_ms));
        if low == high {
            low
        } else {
            format!("{low} – {high}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn stats(durations: &[i64], failed: usize) -> Option<BuildStats> {
        BuildStats::of(durations, failed)
    }

    #[test]
    fn no_history_is_unknown() {
        assert_eq!(BuildStats::of(&[], 0), None);
        let etas = merge_etas(
            None,
            Shape {
                window: 1,
                batch: 1,
            },
            &[Slot::Waiting(0)],
        );
        assert_eq!(etas, vec![None]);
        assert_eq!(single_build_eta(None, 0), None);
    }

    #[test]
    fn median_and_p90_by_nearest_rank() {
        let d: Vec<i64> = (1..=10).map(|m| m * MIN).collect();
        let s = BuildStats::of(&d, 1).expect("a sample");
        assert_eq!(s.median_ms, 5 * MIN);
        assert_eq!(s.p90_ms, 9 * MIN);
        assert_eq!(s.builds, 10);
        let one = BuildStats::of(&[7 * MIN], 0).expect("a sample");
        assert_eq!((one.median_ms, one.p90_ms), (7 * MIN, 7 * MIN));
    }

    #[test]
    fn a_serial_queue_of_green_builds() {
        // Every build took 10 minutes; the head has run 4.
        let s = stats(&[10 * MIN; 5], 0);
        let slots = [
            Slot::InFlight {
                candidate: 0,
                elapsed_ms: 4 * MIN,
                landing: false,
            },
            Slot::Waiting(0),
            Slot::Waiting(1),
        ];
        let etas = merge_etas(
            s,
            Shape {
                window: 1,
                batch: 1,
            },
            &slots,
        );
        let ends: Vec<(i64, i64)> = etas
            .iter()
            .map(|e| e.map_or((-1, -1), |e| (e.low_ms / MIN, e.high_ms / MIN)))
            .collect();
        assert_eq!(ends, vec![(6, 6), (16, 16), (26, 26)]);
    }

    #[test]
    fn failures_in_the_history_widen_the_range() {
        // Half the builds failed: each candidate ahead may cost a round.
        let s = stats(&[10 * MIN, 10 * MIN, 20 * MIN, 20 * MIN], 2);
        let etas = merge_etas(
            s,
            Shape {
                window: 1,
                batch: 1,
            },
            &[Slot::Waiting(0), Slot::Waiting(3)],
        );
        let first = etas[0].expect("known");
        assert_eq!((first.low_ms, first.high_ms), (10 * MIN, 20 * MIN));
        let fourth = etas[1].expect("known");
        assert_eq!(fourth.low_ms, 40 * MIN);
        // 4 rounds at p90, plus ceil(0.5 × 3) = 2 failures ahead.
        assert_eq!(fourth.high_ms, 80 * MIN + 2 * 20 * MIN);
    }

    #[test]
    fn a_window_builds_candidates_side_by_side() {
        let s = stats(&[10 * MIN], 0);
        let slots = [
            Slot::InFlight {
                candidate: 0,
                elapsed_ms: 8 * MIN,
                landing: false,
            },
            Slot::InFlight {
                candidate: 1,
                elapsed_ms: 2 * MIN,
                landing: false,
            },
            Slot::Waiting(0),
            Slot::Waiting(1),
            Slot::Waiting(2),
        ];
        let etas: Vec<i64> = merge_etas(
            s,
            Shape {
                window: 2,
                batch: 1,
            },
            &slots,
        )
        .iter()
        .map(|e| e.map_or(-1, |e| e.low_ms / MIN))
        .collect();
        // #2 lands when its own build ends (8 min), not before #1 (2 min).
        assert_eq!(etas, vec![2, 8, 12, 12, 22]);
    }

    #[test]
    fn a_landing_candidate_has_nothing_left() {
        let s = stats(&[10 * MIN], 0);
        let slots = [Slot::InFlight {
            candidate: 0,
            elapsed_ms: 30 * MIN,
            landing: true,
        }];
        let eta = merge_etas(
            s,
            Shape {
                window: 1,
                batch: 1,
            },
            &slots,
        )[0]
        .expect("known");
        assert_eq!((eta.low_ms, eta.high_ms), (0, 0));
    }

    #[test]
    fn words_for_people() {
        assert_eq!(human(0), "under a minute");
        assert_eq!(human(61_000), "2 min");
        assert_eq!(human(60 * MIN), "1 h");
        assert_eq!(human(65 * MIN), "1 h 5 min");
        let e = Eta {
            low_ms: 10 * MIN,
            high_ms: 20 * MIN,
            based_on_builds: 3,
        };
        assert_eq!(e.words(), "10 min – 20 min");
    }

    fn slot() -> impl Strategy<Value = Slot> {
        prop_oneof![
            (0usize..4, 0i64..3_600_000, any::<bool>()).prop_map(|(c, e, l)| Slot::InFlight {
                candidate: c,
                elapsed_ms: e,
                landing: l
            }),
            (0usize..50).prop_map(Slot::Waiting),
        ]
    }

    proptest! {
        #[test]
        fn ranges_are_ordered_and_never_negative(
            durations in proptest::collection::vec(-1_000i64..7_200_000, 1..40),
            failed in 0usize..50,
            window in 0usize..5,
            batch in 0usize..5,
            slots in proptest::collection::vec(slot(), 0..20),
        ) {
            let s = BuildStats::of(&durations, failed);
            prop_assert!(s.is_some_and(|s| s.median_ms <= s.p90_ms));
            for eta in merge_etas(s, Shape { window, batch }, &slots) {
                let eta = eta.expect("a sample gives a number");
                prop_assert!(0 <= eta.low_ms && eta.low_ms <= eta.high_ms);
            }
        }

        #[test]
        fn a_later_waiting_place_is_never_sooner(
            durations in proptest::collection::vec(0i64..7_200_000, 1..40),
            failed in 0usize..40,
            window in 1usize..5,
            batch in 1usize..5,
            j in 0usize..100,
        ) {
            let s = BuildStats::of(&durations, failed);
            let shape = Shape { window, batch };
            let etas = merge_etas(s, shape, &[Slot::Waiting(j), Slot::Waiting(j + 1)]);
            let (a, b) = (etas[0].expect("known"), etas[1].expect("known"));
            prop_assert!(a.low_ms <= b.low_ms && a.high_ms <= b.high_ms);
        }
    }
}
