//! greg-sim: greg's merge pipeline under a virtual clock.
//!
//! The simulator drives the real [`greg_engine::pipeline::plan`] (and the real adaptive
//! window, [`Aimd`]) the way the daemon does: at each moment something happens (a build
//! finishes, a pull request arrives), it builds a [`Snapshot`] of the queue, calls `plan`
//! until it has nothing more to do, and carries out every [`Action`](greg_engine::pipeline::Action)
//! against a fake provider (the target branch is a counter of landings) and a fake builder
//! (a build's duration is sampled, its result follows from its contents).
//!
//! # Model
//! - Time is counted in **T**, one typical CI duration (the median build time).
//! - Each pull request is *bad* with probability `p_break`: every build that contains it is
//!   red. A build with no bad pull request in it is red with probability `flake` (a flaky
//!   build); a build with a bad one is never green (flaky greens are not modelled).
//! - Arrivals: an always-full queue (there are always enough waiting pull requests to fill the
//!   window with full batches), or a Poisson process at a rate per T.
//! - The SPEC §10 invariants are checked on every landing: the target moves only to a green
//!   candidate built on the current tip, containing exactly the landed pull requests; no bad
//!   pull request lands; no pull request lands twice. Violations are counted in
//!   [`Report::violations`] and must be 0.
//!
//! [`sweep`] runs the grid of the benchmark (p × flake × strategies); [`plot`] draws it.

#![warn(missing_docs)]

mod engine;
pub mod plot;
mod rng;
pub mod sweep;

pub use engine::{Arrivals, CiDuration, Params, Report, simulate};
pub use greg_engine::pipeline::{Aimd, Snapshot, Strategy};
