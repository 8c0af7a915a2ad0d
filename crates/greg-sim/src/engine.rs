//! The event loop: the queue's state, the fake builder and target, and the application of
//! each [`Action`] exactly as the daemon applies it.

use crate::rng::Rng;
use greg_engine::pipeline::{
    Action, Aimd, Build, Candidate, CandidateId, EntryId, Snapshot, Strategy, Waiting, plan,
};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

/// How pull requests arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrivals {
    /// The queue never runs dry: before each plan, enough pull requests wait to fill the
    /// whole window with full batches (the reference model's saturated queue).
    AlwaysFull,
    /// A Poisson process: on average `per_t` pull requests arrive per T.
    Poisson {
        /// Mean arrivals per T.
        per_t: f64,
    },
}

/// How long a build takes, in T.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CiDuration {
    /// Every build takes exactly 1 T.
    Fixed,
    /// Lognormal with median 1 T and shape `sigma` (the standard deviation of the logarithm;
    /// 0.3 spreads most builds over 0.5 T to 2 T).
    LogNormal {
        /// The standard deviation of the logarithm of a duration.
        sigma: f64,
    },
}

/// One simulation's inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// The queue's `merge_queue` settings.
    pub strategy: Strategy,
    /// How pull requests arrive.
    pub arrivals: Arrivals,
    /// Build durations.
    pub ci: CiDuration,
    /// Probability that a pull request breaks the build (P(break), in [0, 1]).
    pub p_break: f64,
    /// Probability that a build without a bad pull request is red anyway (in [0, 1]).
    pub flake: f64,
    /// The run ends when this many pull requests have landed or failed.
    pub prs: usize,
    /// The random seed; one seed, one run.
    pub seed: u64,
}

impl Params {
    /// An always-full queue with fixed 1 T builds, 2000 pull requests, seed 1.
    pub fn new(strategy: Strategy, p_break: f64, flake: f64) -> Self {
        Params {
            strategy,
            arrivals: Arrivals::AlwaysFull,
            ci: CiDuration::Fixed,
            p_break,
            flake,
            prs: 2000,
            seed: 1,
        }
    }
}

/// What one simulation measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Pull requests landed.
    pub landed: usize,
    /// Bad pull requests failed (rightly).
    pub failed_bad: usize,
    /// Good pull requests failed by a flaky build.
    pub failed_good: usize,
    /// Builds started.
    pub builds: usize,
    /// Builds thrown away (reset) before their result counted.
    pub builds_reset: usize,
    /// Builds not started because the same pull requests on the same tip failed before (a
    /// bisected batch's second half on its green first half), as the daemon does (SPEC §10:
    /// no build twice for one tree); not with `optimistic`.
    pub builds_saved: usize,
    /// Simulated time, in T.
    pub elapsed_t: f64,
    /// Median time from arrival to landing, in T.
    pub land_p50_t: f64,
    /// 95th percentile of the time from arrival to landing, in T.
    pub land_p95_t: f64,
    /// Violations of the SPEC §10 invariants (must be 0).
    pub violations: usize,
    /// The first violation, in words.
    pub first_violation: Option<String>,
}

impl Report {
    /// Pull requests landed per T.
    pub fn merged_per_t(&self) -> f64 {
        if self.elapsed_t > 0.0 {
            self.landed as f64 / self.elapsed_t
        } else {
            0.0
        }
    }

    /// Builds started per pull request landed (infinite when nothing landed).
    pub fn builds_per_merge(&self) -> f64 {
        if self.landed > 0 {
            self.builds as f64 / self.landed as f64
        } else {
            f64::INFINITY
        }
    }

    fn violation(&mut self, what: String) {
        self.violations += 1;
        if self.first_violation.is_none() {
            self.first_violation = Some(what);
        }
    }
}

/// Where a pull request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Waiting,
    InFlight,
    Landed,
    Failed,
}

/// A queued pull request.
#[derive(Debug, Clone)]
struct Entry {
    arrival: f64,
    bad: bool,
    stage: Stage,
    group: Option<i64>,
    /// Its place in the queue: (front, id); split halves get a negative front.
    order: (i64, EntryId),
}

/// A candidate in flight with what the fake builder knows of it.
#[derive(Debug, Clone)]
struct Cand {
    pipeline: Candidate,
    /// Every entry its commit holds on top of the tip it was built on (its ancestors' in
    /// flight, then its own), in queue order.
    content: Vec<EntryId>,
    /// The target version (number of landings) its chain was built on.
    built_on: u64,
    /// The build's serial number, to ignore finish events of thrown-away builds.
    build_no: u64,
    /// The result the build will have.
    red: bool,
}

/// A build that finishes at `at` (a min-heap by time, then by build number).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Finish {
    at: f64,
    build_no: u64,
    candidate: CandidateId,
}

impl Eq for Finish {}

impl Ord for Finish {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .total_cmp(&self.at)
            .then(other.build_no.cmp(&self.build_no))
    }
}

impl PartialOrd for Finish {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Plans per moment before the simulator gives up on a loop that does not settle.
const MAX_PLANS_PER_MOMENT: usize = 10_000;

/// The simulator's whole state.
struct Sim {
    params: Params,
    rng: Rng,
    now: f64,
    entries: Vec<Entry>,
    /// Waiting entries by queue order.
    waiting: BTreeMap<(i64, EntryId), EntryId>,
    /// Candidates in flight, oldest first.
    candidates: Vec<Cand>,
    finishes: BinaryHeap<Finish>,
    aimd: Aimd,
    target_version: u64,
    /// (tip version, content) of every candidate built red.
    known_red: std::collections::HashSet<(u64, Vec<EntryId>)>,
    next_build_no: u64,
    next_group: i64,
    next_front: i64,
    next_arrival: f64,
    land_times: Vec<f64>,
    report: Report,
}

/// Runs one simulation.
pub fn simulate(params: &Params) -> Report {
    let mut sim = Sim {
        params: *params,
        rng: Rng::new(params.seed),
        now: 0.0,
        entries: Vec::new(),
        waiting: BTreeMap::new(),
        candidates: Vec::new(),
        finishes: BinaryHeap::new(),
        aimd: Aimd::new(&params.strategy),
        target_version: 0,
        known_red: std::collections::HashSet::new(),
        next_build_no: 0,
        next_group: 0,
        next_front: 0,
        next_arrival: 0.0,
        land_times: Vec::new(),
        report: Report::default(),
    };
    sim.run();
    sim.finish()
}

impl Sim {
    fn resolved(&self) -> usize {
        self.report.landed + self.report.failed_bad + self.report.failed_good
    }

    fn run(&mut self) {
        if let Arrivals::Poisson { per_t } = self.params.arrivals {
            self.next_arrival = self.rng.exponential(1.0 / per_t.max(1e-9));
        }
        loop {
            if !self.settle() {
                return;
            }
            if self.resolved() >= self.params.prs {
                return;
            }
            // The next moment something happens.
            let next_build = self.finishes.peek().map(|f| f.at);
            let next_arrival = match self.params.arrivals {
                Arrivals::Poisson { .. } if self.entries.len() < self.params.prs => {
                    Some(self.next_arrival)
                }
                _ => None,
            };
            let next = match (next_build, next_arrival) {
                (Some(b), Some(a)) => b.min(a),
                (Some(b), None) => b,
                (None, Some(a)) => a,
                (None, None) => {
                    if !self.waiting.is_empty() {
                        let n = self.waiting.len();
                        self.report
                            .violation(format!("stuck at {:.2} T with {n} waiting", self.now));
                    }
                    return;
                }
            };
            self.now = next;
            while let Some(f) = self.finishes.peek().copied() {
                if f.at > self.now {
                    break;
                }
                self.finishes.pop();
                self.finish_build(f);
            }
            if let Arrivals::Poisson { per_t } = self.params.arrivals {
                while self.next_arrival <= self.now && self.entries.len() < self.params.prs {
                    self.arrive();
                    self.next_arrival += self.rng.exponential(1.0 / per_t.max(1e-9));
                }
            }
        }
    }

    /// Plans and acts until the plan is empty; false when it never settles.
    fn settle(&mut self) -> bool {
        for _ in 0..MAX_PLANS_PER_MOMENT {
            if self.params.arrivals == Arrivals::AlwaysFull {
                let s = &self.params.strategy;
                let want = s.window.max(1) * s.batch_size.max(1);
                while self.waiting.len() < want {
                    self.arrive();
                }
            }
            let actions = plan(&self.params.strategy, &self.snapshot());
            if actions.is_empty() {
                return true;
            }
            for a in actions {
                self.apply(a);
            }
        }
        self.report.violation(format!(
            "the plan did not settle at {:.2} T after {MAX_PLANS_PER_MOMENT} rounds",
            self.now
        ));
        false
    }

    fn arrive(&mut self) {
        let id = self.entries.len() as EntryId + 1;
        let bad = self.rng.chance(self.params.p_break);
        self.entries.push(Entry {
            arrival: self.now,
            bad,
            stage: Stage::Waiting,
            group: None,
            order: (0, id),
        });
        self.waiting.insert((0, id), id);
    }

    fn entry(&mut self, id: EntryId) -> Option<&mut Entry> {
        usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
    }

    fn snapshot(&self) -> Snapshot {
        let waiting = self
            .waiting
            .values()
            .filter_map(|&id| {
                let e = self.entries.get(usize::try_from(id - 1).ok()?)?;
                Some(Waiting {
                    id,
                    priority: 0,
                    group: e.group,
                })
            })
            .collect();
        Snapshot {
            candidates: self.candidates.iter().map(|c| c.pipeline.clone()).collect(),
            waiting,
            closed_below: None,
            window: self.aimd.window(&self.params.strategy),
        }
    }

    fn finish_build(&mut self, f: Finish) {
        let Some(c) = self
            .candidates
            .iter_mut()
            .find(|c| c.pipeline.id == f.candidate && c.build_no == f.build_no)
        else {
            return; // thrown away before it finished
        };
        c.pipeline.build = if c.red { Build::Red } else { Build::Green };
        if c.red {
            let key = (c.built_on, c.content.clone());
            self.known_red.insert(key);
        }
    }

    fn take_candidate(&mut self, id: CandidateId) -> Option<Cand> {
        let i = self.candidates.iter().position(|c| c.pipeline.id == id)?;
        Some(self.candidates.remove(i))
    }

    fn wait_again(&mut self, id: EntryId) {
        if let Some(e) = self.entry(id) {
            e.stage = Stage::Waiting;
            let order = e.order;
            self.waiting.insert(order, id);
        }
    }

    fn apply(&mut self, action: Action) {
        let s = self.params.strategy;
        match action {
            Action::Reset { candidate } => {
                let Some(c) = self.take_candidate(candidate) else {
                    self.report
                        .violation(format!("reset of {candidate}, not in flight"));
                    return;
                };
                self.report.builds_reset += 1;
                for id in c.pipeline.entries {
                    self.wait_again(id);
                }
            }
            Action::Land { candidate, chain } => self.land(candidate, &chain),
            Action::Fail { candidate, entry } => {
                self.aimd.on_blamed(&s);
                let Some(c) = self.take_candidate(candidate) else {
                    self.report
                        .violation(format!("fail of {candidate}, not in flight"));
                    return;
                };
                if c.pipeline.build != Build::Red || c.pipeline.entries != [entry] {
                    self.report
                        .violation(format!("fail of {entry}, not alone in a red build"));
                }
                if let Some(e) = self.entry(entry) {
                    e.stage = Stage::Failed;
                    if e.bad {
                        self.report.failed_bad += 1;
                    } else {
                        self.report.failed_good += 1;
                    }
                }
            }
            Action::Split { candidate, halves } => {
                self.aimd.on_blamed(&s);
                if self.take_candidate(candidate).is_none() {
                    self.report
                        .violation(format!("split of {candidate}, not in flight"));
                    return;
                }
                self.next_front -= 1;
                let front = self.next_front;
                for half in [halves.0, halves.1] {
                    self.next_group += 1;
                    let group = self.next_group;
                    for id in half {
                        if let Some(e) = self.entry(id) {
                            e.group = Some(group);
                            e.order = (front, id);
                        }
                        self.wait_again(id);
                    }
                }
            }
            Action::Start { entries, parent } => self.start(entries, parent),
        }
    }

    fn start(&mut self, entries: Vec<EntryId>, parent: Option<CandidateId>) {
        let Some(&id) = entries.first() else {
            self.report.violation("start of an empty candidate".into());
            return;
        };
        let mut content = Vec::new();
        let mut built_on = self.target_version;
        if let Some(p) = parent.and_then(|p| self.candidates.iter().find(|c| c.pipeline.id == p)) {
            content.extend_from_slice(&p.content);
            built_on = p.built_on;
        }
        for &e in &entries {
            let stage = self.entry(e).map(|x| x.stage);
            if stage != Some(Stage::Waiting) {
                self.report
                    .violation(format!("start of entry {e}, which is {stage:?}"));
            }
            if let Some(x) = self.entry(e) {
                x.stage = Stage::InFlight;
                let order = x.order;
                self.waiting.remove(&order);
            }
            content.push(e);
        }
        let bad = content.iter().any(|&e| {
            usize::try_from(e - 1)
                .ok()
                .and_then(|i| self.entries.get(i))
                .is_some_and(|x| x.bad)
        });
        let known = !self.params.strategy.optimistic
            && self.known_red.contains(&(built_on, content.clone()));
        let red = known || bad || self.rng.chance(self.params.flake);
        let duration = match (known, self.params.ci) {
            (true, _) => 0.0,
            (false, CiDuration::Fixed) => 1.0,
            (false, CiDuration::LogNormal { sigma }) => self.rng.lognormal(1.0, sigma),
        };
        self.next_build_no += 1;
        if known {
            self.report.builds_saved += 1;
        } else {
            self.report.builds += 1;
        }
        self.finishes.push(Finish {
            at: self.now + duration.max(1e-6),
            build_no: self.next_build_no,
            candidate: id,
        });
        self.candidates.push(Cand {
            pipeline: Candidate {
                id,
                entries,
                parent,
                build: Build::Running,
            },
            content,
            built_on,
            build_no: self.next_build_no,
            red,
        });
    }

    fn land(&mut self, candidate: CandidateId, chain: &[CandidateId]) {
        let s = self.params.strategy;
        self.aimd.on_landed(&s, chain.len());
        let Some(top) = self.candidates.iter().find(|c| c.pipeline.id == candidate) else {
            self.report
                .violation(format!("landing of {candidate}, not in flight"));
            return;
        };
        let top_content = top.content.clone();
        if top.pipeline.build != Build::Green {
            self.report
                .violation(format!("landing of {candidate}, whose build is not green"));
        }
        if top.built_on != self.target_version {
            self.report.violation(format!(
                "landing of {candidate}, built on a stale tip (compare-and-swap would fail)"
            ));
        }
        let mut landed = Vec::new();
        for &c in chain {
            match self.take_candidate(c) {
                Some(x) => landed.extend(x.pipeline.entries),
                None => self
                    .report
                    .violation(format!("landing of {c} in a chain, not in flight")),
            }
        }
        if landed != top_content {
            self.report.violation(format!(
                "landing of {candidate}: the chain {landed:?} is not what was built {top_content:?}"
            ));
        }
        let now = self.now;
        for &id in &landed {
            let Some(e) = self.entry(id) else { continue };
            let (bad, stage, arrival) = (e.bad, e.stage, e.arrival);
            e.stage = Stage::Landed;
            if stage != Stage::InFlight {
                self.report
                    .violation(format!("entry {id} lands while {stage:?}"));
                continue;
            }
            if bad {
                self.report
                    .violation(format!("entry {id} breaks the build and landed"));
            }
            self.report.landed += 1;
            self.land_times.push(now - arrival);
        }
        // The target moved: candidates built on the landed chain are now built on the tip.
        let old = self.target_version;
        self.target_version += 1;
        let n = landed.len();
        for c in &mut self.candidates {
            if c.built_on == old && c.content.len() >= n && c.content[..n] == landed[..] {
                c.built_on = self.target_version;
                c.content.drain(..n);
            }
        }
    }

    fn finish(mut self) -> Report {
        self.report.elapsed_t = self.now;
        self.land_times.sort_by(f64::total_cmp);
        self.report.land_p50_t = percentile(&self.land_times, 0.50);
        self.report.land_p95_t = percentile(&self.land_times, 0.95);
        self.report
    }
}

/// The `q` quantile (nearest rank) of sorted `xs`; 0 for none.
fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    xs[rank - 1]
}
