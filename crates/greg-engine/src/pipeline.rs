//! The merge pipeline of SPEC §10 as a pure function: from the candidates in flight and the
//! waiting pull requests of one (repository, target) queue, what to land, what to fail, what
//! to split, what to throw away and what to start. No IO, no clock: the daemon
//! (`handlers/staging.rs`) and the simulator (`greg-sim`) load a [`Snapshot`], call [`plan`]
//! and act on its [`Action`]s, persisting each before acting on it.
//!
//! # Design note
//!
//! **Model.** A *candidate* is a batch of one or more queued pull requests (entries) built
//! together on a staging commit: its parent candidate's commit (or the target tip, for a
//! candidate without a parent in flight) merged with each head of the batch, in queue order.
//! So candidate i contains every pull request of its ancestors 1..i, and a green build of
//! candidate i proves all of them together. Candidates form a tree: normally a chain (the
//! *main line*), with failed candidates hanging off it while their fault is not yet known.
//!
//! ```text
//!  target ── c1 ── c2 ── c3 ── c4          window 4, batch 1: c1..c4 build in parallel
//!  target ── c1 ── c2(red)                 c2 fails: c3 and c4 are thrown away and
//!              └── c3' ── c4'              rebuilt on c2's parent; c2 waits for c1
//!  c1 lands → c2 is at the head, red: its pull request fails (or its batch is split)
//! ```
//!
//! **Rules, in the order [`plan`] applies them.**
//! 1. *Taint.* A candidate with a red ancestor is thrown away ([`Action::Reset`]): its build
//!    says nothing about its own pull requests. With `optimistic`, a red candidate's
//!    descendants are kept while the red one waits for its ancestors, because a green one
//!    among them vindicates it (the red build was a flake).
//! 2. *Land.* The deepest green candidate whose ancestors in flight are all green (with
//!    `optimistic`: whatever they are) lands, with all its ancestors, in one fast-forward of
//!    the target to its commit. Candidates not below it are then stale and thrown away.
//! 3. *Blame.* A red candidate at the head (no ancestor in flight) is at fault: alone, its
//!    pull request fails ([`Action::Fail`]); a batch is split in halves that go back to the
//!    front of the queue as groups ([`Action::Split`]), and each half is built on its own,
//!    until the culprit is alone (bisection). Below the head, a red candidate waits.
//! 4. *Start.* While fewer than `window` candidates are in flight (red ones not counted),
//!    a new candidate is started at the end of the main line with the next waiting pull
//!    requests: a bisection group as it is, otherwise up to `batch_size` of them. Not in a
//!    plan that threw a candidate away or split one: its pull requests wait again from the
//!    next plan on, in the store's order, and must not be overtaken by those behind them.
//!
//! **Properties** (tested below and by the simulator on every step):
//! - The target only moves to the commit of a green candidate, whose build contains exactly
//!   the landed pull requests on top of the target tip it was built on (the handler's
//!   fast-forward is a compare-and-swap on that tip).
//! - A pull request lands at most once (it is in one candidate at a time) and a pull request
//!   whose build failed with nothing else in it (a batch of one at the head) never lands.
//! - Every red candidate is eventually blamed or thrown away: its ancestors all land, fail
//!   or are thrown away in finite time, since each build ends (SPEC §6).
//! - `window: 1, batch_size: 1` is the serial queue of bors: one candidate on the target tip,
//!   landed or failed before the next starts.
//!
//! **Races accepted.** A push to the target by someone else makes every candidate stale; the
//! handler sees it when the compare-and-swap fails and throws the candidates away (they go
//! back to waiting at their place). Ordering: a pull request with a higher priority that
//! arrives while candidates are in flight goes into the next candidate, not into the middle
//! of the main line.

use std::collections::{HashMap, HashSet};

/// A queue entry's store id.
pub type EntryId = i64;

/// A candidate's id: the id of the first entry of its batch, also the `<n>` of its staging
/// ref `greg/staging/<target>/<n>`.
pub type CandidateId = i64;

/// `repos[].merge_queue` (SPEC §10), as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strategy {
    /// Pull requests tested together in one candidate (≥ 1).
    pub batch_size: usize,
    /// Candidates in flight at once (≥ 1); the upper bound of an adaptive window.
    pub window: usize,
    /// The window grows by one on each landing and halves on each failure, within
    /// [`Strategy::window_min`, `Strategy::window`].
    pub adaptive: bool,
    /// The lower bound of an adaptive window (≥ 1).
    pub window_min: usize,
    /// A green candidate vindicates its red ancestors (their red builds were flakes).
    pub optimistic: bool,
}

impl Strategy {
    /// The serial queue: one pull request per candidate, one candidate at a time.
    pub const SERIAL: Strategy = Strategy {
        batch_size: 1,
        window: 1,
        adaptive: false,
        window_min: 1,
        optimistic: false,
    };
}

/// Where a candidate's build stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// Being staged or built.
    Running,
    /// Finished green (read from the builder, for exactly the candidate's commit).
    Green,
    /// Finished anything but green.
    Red,
}

/// A candidate in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its id (the first entry of `entries`).
    pub id: CandidateId,
    /// Its own pull requests' entries, in queue order (never empty).
    pub entries: Vec<EntryId>,
    /// The candidate it is built on; `None`, or a candidate no longer in flight (landed), means
    /// the target tip.
    pub parent: Option<CandidateId>,
    /// Its build.
    pub build: Build,
}

/// A waiting merge entry, in queue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// The entry.
    pub id: EntryId,
    /// Its priority (a tree closure holds entries below its priority).
    pub priority: i32,
    /// Its bisection group: the entries of one half of a split batch share one, and are
    /// started together as one candidate.
    pub group: Option<i64>,
}

/// One (repository, target) queue as [`plan`] sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Candidates in flight, oldest first.
    pub candidates: Vec<Candidate>,
    /// Waiting merge entries, in queue order.
    pub waiting: Vec<Waiting>,
    /// A tree closure: entries below this priority do not start.
    pub closed_below: Option<i32>,
    /// Candidates allowed in flight now (the fixed window, or the adaptive one: [`Aimd`]).
    pub window: usize,
}

/// What the handler must do. Each action is persisted before it is acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fast-forward the target to `candidate`'s commit: every entry of `chain` (the
    /// candidate and its ancestors in flight, head first) lands.
    Land {
        /// The deepest candidate (its commit is the new target).
        candidate: CandidateId,
        /// The candidates landing, head first.
        chain: Vec<CandidateId>,
    },
    /// `candidate` is alone at fault: its only entry fails with its red build.
    Fail {
        /// The red candidate.
        candidate: CandidateId,
        /// Its entry.
        entry: EntryId,
    },
    /// `candidate`, a red batch at the head, goes back to waiting as two bisection groups.
    Split {
        /// The red candidate.
        candidate: CandidateId,
        /// The first half (built first) and the second half, each in queue order.
        halves: (Vec<EntryId>, Vec<EntryId>),
    },
    /// `candidate` is thrown away: its build is stopped and its entries wait again at their
    /// place (tainted by a red ancestor, or stale after a landing that did not include it).
    Reset {
        /// The candidate.
        candidate: CandidateId,
    },
    /// Stage a new candidate of `entries` on `parent` (`None`: the target tip).
    Start {
        /// Its entries, in queue order (the first is its id).
        entries: Vec<EntryId>,
        /// The candidate it is built on.
        parent: Option<CandidateId>,
    },
}

/// The tree of candidates in flight.
struct Tree<'a> {
    by_id: HashMap<CandidateId, &'a Candidate>,
}

impl<'a> Tree<'a> {
    fn new(candidates: &'a [Candidate]) -> Self {
        Tree {
            by_id: candidates.iter().map(|c| (c.id, c)).collect(),
        }
    }

    /// The parent in flight, if any.
    fn parent(&self, c: &Candidate) -> Option<&'a Candidate> {
        c.parent
            .filter(|p| *p != c.id)
            .and_then(|p| self.by_id.get(&p).copied())
    }

    /// Ancestors in flight, nearest first (bounded by the number of candidates, so a cycle in
    /// bad data cannot loop).
    fn ancestors(&self, c: &Candidate) -> Vec<&'a Candidate> {
        let mut out = Vec::new();
        let mut at = self.parent(c);
        while let Some(a) = at {
            if out.len() > self.by_id.len() || out.iter().any(|o: &&Candidate| o.id == a.id) {
                break;
            }
            out.push(a);
            at = self.parent(a);
        }
        out
    }

    /// True when `a` is an ancestor of `c` in flight.
    fn is_ancestor(&self, a: CandidateId, c: &Candidate) -> bool {
        self.ancestors(c).iter().any(|x| x.id == a)
    }
}

/// The adaptive window (additive increase, multiplicative decrease), as Zuul's dependent
/// pipeline: +1 per landed candidate, halved on a failure, within
/// [`Strategy::window_min`, `Strategy::window`]. Starts at `window_min`. Held in memory by its
/// owner: after a restart it starts again from `window_min`.
///
/// One halving per round, as TCP halves once per window of data however many packets of it
/// were lost: after a halving, the failures among the next `window` outcomes (candidates
/// landed or blamed, most of them already in flight when the window was halved) do not halve
/// it again. Halving on each of them would shrink the window to a few candidates whenever
/// failures are common (p ≥ 0.1), where the window matters most (docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aimd {
    current: usize,
    /// Outcomes still to come before a failure may halve the window again.
    hold: usize,
}

impl Aimd {
    /// A window at the strategy's lower bound.
    pub fn new(s: &Strategy) -> Self {
        Aimd {
            current: s.window_min.clamp(1, s.window.max(1)),
            hold: 0,
        }
    }

    /// The window to use now: the adaptive one, or the fixed `window`.
    pub fn window(&self, s: &Strategy) -> usize {
        if s.adaptive {
            self.current
        } else {
            s.window.max(1)
        }
    }

    /// `landed` candidates landed.
    pub fn on_landed(&mut self, s: &Strategy, landed: usize) {
        self.hold = self.hold.saturating_sub(landed);
        self.current = self
            .current
            .saturating_add(landed)
            .clamp(s.window_min.max(1), s.window.max(1));
    }

    /// A candidate was blamed (failed alone, or split): the window halves, unless it already
    /// halved this round.
    pub fn on_blamed(&mut self, s: &Strategy) {
        if self.hold > 0 {
            self.hold -= 1;
            return;
        }
        self.hold = self.current;
        self.current = (self.current / 2).clamp(s.window_min.max(1), s.window.max(1));
    }
}

/// Decides what to do now in one queue (see the design note for the rules). Deterministic; the
/// actions come in the order the handler should carry them out: resets, then a landing, then
/// blames, then starts. After a landing no candidate is started in the same plan (the target
/// moves first; the next plan starts on it).
pub fn plan(s: &Strategy, snap: &Snapshot) -> Vec<Action> {
    let tree = Tree::new(&snap.candidates);
    let mut actions = Vec::new();
    let mut gone: HashSet<CandidateId> = HashSet::new();

    // 1. Taint: descendants of a red candidate are thrown away (kept under `optimistic` while
    // the red one is not at the head, or while it is and some of them still build).
    for c in &snap.candidates {
        let red_ancestor = tree
            .ancestors(c)
            .into_iter()
            .find(|a| a.build == Build::Red);
        let Some(red) = red_ancestor else { continue };
        if s.optimistic && !optimism_over(&tree, snap, red) {
            continue;
        }
        gone.insert(c.id);
        actions.push(Action::Reset { candidate: c.id });
    }

    // 2. Land the deepest green candidate whose ancestors allow it.
    let landing = snap
        .candidates
        .iter()
        .filter(|c| c.build == Build::Green && !gone.contains(&c.id))
        .filter(|c| {
            tree.ancestors(c)
                .iter()
                .all(|a| s.optimistic || a.build == Build::Green)
        })
        .max_by_key(|c| (tree.ancestors(c).len(), c.id));
    if let Some(top) = landing {
        let mut chain: Vec<CandidateId> = tree.ancestors(top).iter().map(|a| a.id).collect();
        chain.reverse();
        chain.push(top.id);
        // Everything not below the new target is stale.
        for c in &snap.candidates {
            if chain.contains(&c.id) || gone.contains(&c.id) || tree.is_ancestor(top.id, c) {
                continue;
            }
            gone.insert(c.id);
            actions.push(Action::Reset { candidate: c.id });
        }
        actions.push(Action::Land {
            candidate: top.id,
            chain,
        });
        return actions;
    }

    // 3. Blame a red candidate at the head.
    for c in &snap.candidates {
        if c.build != Build::Red || gone.contains(&c.id) || tree.parent(c).is_some() {
            continue;
        }
        if s.optimistic && !optimism_over(&tree, snap, c) {
            continue;
        }
        gone.insert(c.id);
        match c.entries.as_slice() {
            [] => actions.push(Action::Reset { candidate: c.id }),
            [one] => actions.push(Action::Fail {
                candidate: c.id,
                entry: *one,
            }),
            many => {
                let (a, b) = many.split_at(many.len().div_ceil(2));
                actions.push(Action::Split {
                    candidate: c.id,
                    halves: (a.to_vec(), b.to_vec()),
                });
            }
        }
        // Its descendants (kept while optimism could still vindicate it) go too.
        for d in &snap.candidates {
            if !gone.contains(&d.id) && tree.is_ancestor(c.id, d) {
                gone.insert(d.id);
                actions.push(Action::Reset { candidate: d.id });
            }
        }
    }

    // 4. Start candidates at the end of the main line while the window has room. Entries of
    // split or reset candidates wait again, but only from the next plan on (their new order is
    // the store's); starting the waiting entries behind them now would let those overtake
    // them (a queue landing out of order). So a plan that returns entries to waiting starts
    // nothing; the next plan, on the store's order, does.
    if actions
        .iter()
        .any(|a| matches!(a, Action::Split { .. } | Action::Reset { .. }))
    {
        return actions;
    }
    let alive: Vec<&Candidate> = snap
        .candidates
        .iter()
        .filter(|c| !gone.contains(&c.id) && c.build != Build::Red)
        .collect();
    let mut in_flight = alive.len();
    let mut tail = main_line_tail(&tree, &alive);
    let mut waiting = snap
        .waiting
        .iter()
        .filter(|w| snap.closed_below.is_none_or(|n| w.priority >= n))
        .peekable();
    while in_flight < snap.window.max(1) {
        let Some(first) = waiting.next() else { break };
        let mut entries = vec![first.id];
        match first.group {
            Some(g) => {
                while let Some(w) = waiting.next_if(|w| w.group == Some(g)) {
                    entries.push(w.id);
                }
            }
            None => {
                while entries.len() < s.batch_size.max(1) {
                    let Some(w) = waiting.next_if(|w| w.group.is_none()) else {
                        break;
                    };
                    entries.push(w.id);
                }
            }
        }
        let id = entries[0];
        actions.push(Action::Start {
            entries,
            parent: tail,
        });
        tail = Some(id);
        in_flight += 1;
    }
    actions
}

/// True when optimism about red candidate `red` is over: it is at the head and none of its
/// descendants is green or still builds (so none can vindicate it any more).
fn optimism_over(tree: &Tree<'_>, snap: &Snapshot, red: &Candidate) -> bool {
    if tree.parent(red).is_some() {
        return false;
    }
    !snap
        .candidates
        .iter()
        .any(|d| d.build != Build::Red && tree.is_ancestor(red.id, d))
}

/// The last candidate of the main line: from the newest root, the newest child at each step,
/// among `alive` (not red, not thrown away). `None` when nothing is alive: a new candidate is
/// built on the target tip.
fn main_line_tail(tree: &Tree<'_>, alive: &[&Candidate]) -> Option<CandidateId> {
    let ids: HashSet<CandidateId> = alive.iter().map(|c| c.id).collect();
    let parent_alive = |c: &Candidate| tree.parent(c).map(|p| p.id).filter(|p| ids.contains(p));
    let mut at = alive
        .iter()
        .filter(|c| tree.parent(c).is_none())
        .max_by_key(|c| c.id)?;
    for _ in 0..alive.len() {
        let Some(next) = alive
            .iter()
            .filter(|c| parent_alive(c) == Some(at.id))
            .max_by_key(|c| c.id)
        else {
            break;
        };
        at = next;
    }
    Some(at.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(ids: &[i64]) -> Vec<Waiting> {
        ids.iter()
            .map(|&id| Waiting {
                id,
                priority: 0,
                group: None,
            })
            .collect()
    }

    fn cand(id: i64, entries: &[i64], parent: Option<i64>, build: Build) -> Candidate {
        Candidate {
            id,
            entries: entries.to_vec(),
            parent,
            build,
        }
    }

    fn strategy(batch_size: usize, window: usize) -> Strategy {
        Strategy {
            batch_size,
            window,
            ..Strategy::SERIAL
        }
    }

    #[test]
    fn serial_starts_one_candidate_on_the_target() {
        let snap = Snapshot {
            waiting: waiting(&[1, 2, 3]),
            window: 1,
            ..Snapshot::default()
        };
        assert_eq!(
            plan(&Strategy::SERIAL, &snap),
            vec![Action::Start {
                entries: vec![1],
                parent: None
            }]
        );
        let snap = Snapshot {
            candidates: vec![cand(1, &[1], None, Build::Running)],
            waiting: waiting(&[2, 3]),
            window: 1,
            ..Snapshot::default()
        };
        assert_eq!(plan(&Strategy::SERIAL, &snap), vec![]);
    }

    #[test]
    fn a_window_chains_candidates_and_batches_fill_each() {
        let snap = Snapshot {
            waiting: waiting(&[1, 2, 3, 4, 5]),
            window: 2,
            ..Snapshot::default()
        };
        assert_eq!(
            plan(&strategy(2, 2), &snap),
            vec![
                Action::Start {
                    entries: vec![1, 2],
                    parent: None
                },
                Action::Start {
                    entries: vec![3, 4],
                    parent: Some(1)
                },
            ]
        );
    }

    #[test]
    fn the_deepest_green_candidate_lands_its_whole_chain() {
        let snap = Snapshot {
            candidates: vec![
                cand(1, &[1], None, Build::Green),
                cand(2, &[2], Some(1), Build::Green),
                cand(3, &[3], Some(2), Build::Running),
            ],
            window: 3,
            ..Snapshot::default()
        };
        assert_eq!(
            plan(&strategy(1, 3), &snap),
            vec![Action::Land {
                candidate: 2,
                chain: vec![1, 2]
            }]
        );
    }

    #[test]
    fn a_green_candidate_waits_for_a_running_ancestor() {
        let snap = Snapshot {
            candidates: vec![
                cand(1, &[1], None, Build::Running),
                cand(2, &[2], Some(1), Build::Green),
            ],
            window: 2,
            ..Snapshot::default()
        };
        assert_eq!(plan(&strategy(1, 2), &snap), vec![]);
    }

    #[test]
    fn a_red_candidate_below_the_head_waits_and_its_successors_are_rebuilt_without_it() {
        let snap = Snapshot {
            candidates: vec![
                cand(1, &[1], None, Build::Running),
                cand(2, &[2], Some(1), Build::Red),
                cand(3, &[3], Some(2), Build::Running),
                cand(4, &[4], Some(3), Build::Green),
            ],
            window: 4,
            ..Snapshot::default()
        };
        // 3 and 4 are thrown away; the next plan (with 3 and 4 waiting again) restarts them
        // on candidate 1, the nearest non-failing ancestor.
        assert_eq!(
            plan(&strategy(1, 4), &snap),
            vec![
                Action::Reset { candidate: 3 },
                Action::Reset { candidate: 4 }
            ]
        );
        let snap = Snapshot {
            candidates: vec![
                cand(1, &[1], None, Build::Running),
                cand(2, &[2], Some(1), Build::Red),
            ],
            waiting: waiting(&[3, 4]),
            window: 4,
            ..Snapshot::default()
        };
        assert_eq!(
            plan(&strategy(1, 4), &snap),
            vec![
                Action::Start {
                    entries: vec![3],
                    parent: Some(1)
                },
                Action::Start {
                    entries: vec![4],
                    parent: Some(3)
                },
            ]
        );
    }

    #[test]
    fn a_red_single_at_the_head_fails_and_a_red_batch_splits() {
        let snap = Snapshot {
            candidates: vec![cand(2, &[2], None, Build::Red)],
            window: 2,
            ..Snapshot::default()
        };
        assert_eq!(
            plan(&strategy(1, 2), &snap),
            vec![Action::Fail {
                candidate: 2,
                entry: 2
            }]
        );
        let snap = Snapshot {
            candidates: vec![cand(1, &[1, 2, 3], None, Build::Red)],
            window: 1,
            ..Snapshot::default()
        };
        assert_eq!(
            plan(&strategy(3, 1), &snap),
            vec![Action::Split {
                candidate: 1,
                halves: (vec![1, 2], vec![3])
            }]
        );
    }

    #[test]
    fn a_split_batch_is_not_overtaken_by_the_pull_requests_waiting_behind_it() {
        // Found by e2e_faults_pipeline: candidate 3 (pull requests 3 and 4) is red at the
        // head while 5 and 6 wait. Starting 5 and 6 in the plan that splits 3 would land them
        // before 3 and 4; the plan splits and starts nothing, the next one starts the halves
        // first.
        let snap = Snapshot {
            candidates: vec![cand(3, &[3, 4], None, Build::Red)],
            waiting: waiting(&[5, 6]),
            window: 4,
            ..Snapshot::default()
        };
        assert_eq!(
            plan(&strategy(2, 4), &snap),
            vec![Action::Split {
                candidate: 3,
                halves: (vec![3], vec![4])
            }]
        );
    }

    #[test]
    fn bisection_groups_start_as_they_are() {
        let mut w = waiting(&[1, 2, 3, 4, 5]);
        for x in &mut w[..2] {
            x.group = Some(1);
        }
        for x in &mut w[2..4] {
            x.group = Some(3);
        }
        let snap = Snapshot {
            waiting: w,
            window: 3,
            ..Snapshot::default()
        };
        assert_eq!(
            plan(&strategy(4, 3), &snap),
            vec![
                Action::Start {
                    entries: vec![1, 2],
                    parent: None
                },
                Action::Start {
                    entries: vec![3, 4],
                    parent: Some(1)
                },
                Action::Start {
                    entries: vec![5],
                    parent: Some(3)
                },
            ]
        );
    }

    #[test]
    fn optimism_lets_a_green_descendant_vindicate_a_red_candidate() {
        let snap = Snapshot {
            candidates: vec![
                cand(1, &[1], None, Build::Red),
                cand(2, &[2], Some(1), Build::Green),
            ],
            window: 2,
            ..Snapshot::default()
        };
        let optimistic = Strategy {
            optimistic: true,
            ..strategy(1, 2)
        };
        assert_eq!(
            plan(&optimistic, &snap),
            vec![Action::Land {
                candidate: 2,
                chain: vec![1, 2]
            }]
        );
        // Without optimism the red head fails and its descendant is thrown away.
        assert_eq!(
            plan(&strategy(1, 2), &snap),
            vec![
                Action::Reset { candidate: 2 },
                Action::Fail {
                    candidate: 1,
                    entry: 1
                }
            ]
        );
        // Optimism waits for a running descendant before blaming the head.
        let snap = Snapshot {
            candidates: vec![
                cand(1, &[1], None, Build::Red),
                cand(2, &[2], Some(1), Build::Running),
            ],
            window: 2,
            ..Snapshot::default()
        };
        assert_eq!(plan(&optimistic, &snap), vec![]);
    }

    #[test]
    fn a_landing_throws_away_candidates_not_built_on_it() {
        let snap = Snapshot {
            candidates: vec![
                cand(1, &[1], None, Build::Red),
                cand(2, &[2], Some(1), Build::Green),
                cand(3, &[3], None, Build::Running),
            ],
            window: 3,
            ..Snapshot::default()
        };
        let optimistic = Strategy {
            optimistic: true,
            ..strategy(1, 3)
        };
        assert_eq!(
            plan(&optimistic, &snap),
            vec![
                Action::Reset { candidate: 3 },
                Action::Land {
                    candidate: 2,
                    chain: vec![1, 2]
                }
            ]
        );
    }

    #[test]
    fn a_tree_closure_holds_low_priorities_and_red_candidates_do_not_count() {
        let mut w = waiting(&[5, 6]);
        w[0].priority = 10;
        let snap = Snapshot {
            candidates: vec![
                cand(1, &[1], None, Build::Running),
                cand(2, &[2], Some(1), Build::Red),
            ],
            waiting: w,
            closed_below: Some(5),
            window: 2,
        };
        assert_eq!(
            plan(&strategy(1, 2), &snap),
            vec![Action::Start {
                entries: vec![5],
                parent: Some(1)
            }]
        );
    }

    #[test]
    fn the_adaptive_window_grows_by_one_and_halves_within_its_bounds() {
        let s = Strategy {
            adaptive: true,
            window: 8,
            window_min: 2,
            ..Strategy::SERIAL
        };
        let mut w = Aimd::new(&s);
        assert_eq!(w.window(&s), 2);
        w.on_landed(&s, 3);
        assert_eq!(w.window(&s), 5);
        w.on_landed(&s, 10);
        assert_eq!(w.window(&s), 8);
        w.on_blamed(&s);
        assert_eq!(w.window(&s), 4);
        // Once per round: the failures of the 8 outcomes after a halving do not halve again.
        for _ in 0..7 {
            w.on_blamed(&s);
        }
        assert_eq!(w.window(&s), 4);
        w.on_landed(&s, 1);
        assert_eq!(w.window(&s), 5);
        w.on_blamed(&s);
        assert_eq!(w.window(&s), 2);
        w.on_blamed(&s);
        assert_eq!(w.window(&s), 2, "held for this round");
        let mut low = Aimd::new(&s);
        low.on_blamed(&s);
        assert_eq!(low.window(&s), 2, "never below window_min");
        assert_eq!(Aimd::new(&s).window(&Strategy::SERIAL), 1);
    }
}
