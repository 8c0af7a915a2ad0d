//! The benchmark grid: every strategy at every P(break) and flake rate, as a Markdown table.

use crate::engine::{Params, Report, simulate};
use greg_engine::pipeline::Strategy;
use std::fmt::Write as _;

/// P(break) values of the benchmark (docs/benchmarks.md).
pub const PS: [f64; 4] = [0.02, 0.05, 0.1, 0.2];

/// Flake rates of the benchmark.
pub const FLAKES: [f64; 2] = [0.0, 0.05];

/// A strategy with the name it has in tables and plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named {
    /// A short name, e.g. `window 20`.
    pub name: &'static str,
    /// The settings.
    pub strategy: Strategy,
}

const fn strategy(batch_size: usize, window: usize, adaptive: bool) -> Strategy {
    Strategy {
        batch_size,
        window,
        adaptive,
        window_min: 1,
        optimistic: false,
    }
}

/// The strategies of the benchmark: serial, batches of 8, fixed windows of 5 and 20, the
/// adaptive window (up to 20, from 1, untuned) and a batched window (batches of 4, window 8).
pub const STRATEGIES: [Named; 6] = [
    Named {
        name: "serial",
        strategy: Strategy::SERIAL,
    },
    Named {
        name: "batch 8",
        strategy: strategy(8, 1, false),
    },
    Named {
        name: "window 5",
        strategy: strategy(1, 5, false),
    },
    Named {
        name: "window 20",
        strategy: strategy(1, 20, false),
    },
    Named {
        name: "adaptive ≤ 20",
        strategy: strategy(1, 20, true),
    },
    Named {
        name: "batch 4 × window 8",
        strategy: strategy(4, 8, false),
    },
];

/// One cell of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The strategy's name.
    pub name: &'static str,
    /// P(break).
    pub p_break: f64,
    /// Flake rate.
    pub flake: f64,
    /// What the simulation measured.
    pub report: Report,
}

/// Runs `strategies` at every p in `ps` and flake rate in `flakes`, each on an always-full
/// queue with fixed 1 T builds, until `prs` pull requests are done, with `seed`.
pub fn sweep(strategies: &[Named], ps: &[f64], flakes: &[f64], prs: usize, seed: u64) -> Vec<Cell> {
    let mut out = Vec::new();
    for n in strategies {
        for &flake in flakes {
            for &p in ps {
                let params = Params {
                    prs,
                    seed,
                    ..Params::new(n.strategy, p, flake)
                };
                out.push(Cell {
                    name: n.name,
                    p_break: p,
                    flake,
                    report: simulate(&params),
                });
            }
        }
    }
    out
}

/// The grid as a Markdown table, one row per (strategy, flake, p).
pub fn markdown(cells: &[Cell]) -> String {
    let mut s = String::from(
        "| strategy | flake | p | merged PRs / T | builds / merge | failed (bad + good) | \
         time to land p50 / p95 (T) |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in cells {
        let r = &c.report;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.2} | {} + {} | {:.1} / {:.1} |",
            c.name,
            c.flake,
            c.p_break,
            r.merged_per_t(),
            r.builds_per_merge(),
            r.failed_bad,
            r.failed_good,
            r.land_p50_t,
            r.land_p95_t
        );
    }
    s
}
