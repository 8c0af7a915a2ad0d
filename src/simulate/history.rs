//! `greg simulate --from-history REPO`: what the store recorded for a repository (merge
//! requests and merge builds), reduced to the simulator's inputs, then a set of `merge_queue`
//! settings simulated on them and the best one recommended.

use super::{Args, ci, label, violations};
use greg_core::RepoName;
use greg_sim::{Arrivals, Params, Report, Strategy, simulate};
use greg_store::{BuildRecord, BuildRunState, QueueEntry, QueueKind, QueueState, Store};
use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

/// The simulator's inputs as a repository's history shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Merge requests that landed or failed.
    pub entries: usize,
    /// Merge builds that finished green or red.
    pub builds: usize,
    /// Merge requests per hour over the span of their arrivals (`None`: fewer than two).
    pub arrivals_per_hour: Option<f64>,
    /// Median merge-build duration, in minutes (T).
    pub median_minutes: f64,
    /// 90th percentile of merge-build durations, in minutes.
    pub p90_minutes: f64,
    /// Merge requests that failed for good (not landed later with the same head), per
    /// finished one: the estimate of P(break).
    pub p_break: f64,
    /// Flakes per finished merge build: the estimate of the flake rate. A flake shows as a red
    /// merge build whose commit built green later, or as a failed request whose head landed
    /// later; one flake often shows both ways, so the larger of the two counts is taken.
    pub flake: f64,
}

/// Reduces merge `entries` (finished, any order) and merge `builds` (oldest first).
pub fn estimate(entries: &[QueueEntry], builds: &[BuildRecord]) -> History {
    let entries: Vec<&QueueEntry> = entries
        .iter()
        .filter(|e| {
            e.kind == QueueKind::Merge && matches!(e.state, QueueState::Landed | QueueState::Failed)
        })
        .collect();
    let mut arrivals: Vec<i64> = entries.iter().map(|e| e.created_ms).collect();
    arrivals.sort_unstable();
    let arrivals_per_hour = match (arrivals.first(), arrivals.last()) {
        (Some(first), Some(last)) if last > first && arrivals.len() > 1 => {
            Some((arrivals.len() - 1) as f64 * 3_600_000.0 / (last - first) as f64)
        }
        _ => None,
    };
    let landed_heads: HashSet<(u64, &str)> = entries
        .iter()
        .filter(|e| e.state == QueueState::Landed)
        .map(|e| (e.pr.0, e.head_sha.as_str()))
        .collect();
    let failed = entries
        .iter()
        .filter(|e| e.state == QueueState::Failed)
        .collect::<Vec<_>>();
    let failed_then_landed = failed
        .iter()
        .filter(|e| landed_heads.contains(&(e.pr.0, e.head_sha.as_str())))
        .count();
    let finished: Vec<&BuildRecord> = builds
        .iter()
        .filter(|b| matches!(b.state, BuildRunState::Success | BuildRunState::Failure))
        .collect();
    let green_shas: HashSet<&str> = finished
        .iter()
        .filter(|b| b.state == BuildRunState::Success)
        .map(|b| b.sha.as_str())
        .collect();
    let red_then_green = finished
        .iter()
        .filter(|b| b.state == BuildRunState::Failure && green_shas.contains(b.sha.as_str()))
        .count();
    let mut minutes: Vec<f64> = finished
        .iter()
        .map(|b| (b.updated_ms - b.created_ms).max(0) as f64 / 60_000.0)
        .filter(|m| *m > 0.0)
        .collect();
    minutes.sort_by(f64::total_cmp);
    let ratio = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    History {
        entries: entries.len(),
        builds: finished.len(),
        arrivals_per_hour,
        median_minutes: quantile(&minutes, 0.5).unwrap_or(30.0),
        p90_minutes: quantile(&minutes, 0.9).unwrap_or(30.0),
        p_break: ratio(failed.len() - failed_then_landed, entries.len()),
        flake: ratio(red_then_green.max(failed_then_landed), finished.len()).min(1.0),
    }
}

/// The `q` quantile (nearest rank) of sorted `xs`.
fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len().max(1));
    xs.get(rank - 1).copied()
}

/// The settings `--from-history` compares.
const CANDIDATES: [(usize, usize, bool); 8] = [
    (1, 1, false),
    (4, 1, false),
    (1, 5, false),
    (1, 10, false),
    (1, 20, false),
    (1, 20, true),
    (2, 10, false),
    (4, 8, false),
];

/// One setting's expected figures.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The settings.
    pub strategy: Strategy,
    /// On an always-full queue: the most it can merge.
    pub capacity: Report,
    /// At the observed arrival rate (or the always-full queue when unknown).
    pub observed: Report,
}

/// Simulates every candidate setting on `h`, with `prs` pull requests and `seed`.
pub fn outcomes(h: &History, prs: usize, seed: u64) -> Vec<Outcome> {
    let t_minutes = h.median_minutes.max(1e-3);
    // Lognormal shape from the ratio of the 90th percentile to the median (z(0.9) = 1.2816).
    let sigma = (h.p90_minutes / t_minutes).max(1.0).ln() / 1.2816;
    CANDIDATES
        .iter()
        .map(|&(batch_size, window, adaptive)| {
            let strategy = Strategy {
                batch_size,
                window,
                adaptive,
                window_min: 1,
                optimistic: false,
            };
            let base = Params {
                strategy,
                arrivals: Arrivals::AlwaysFull,
                ci: ci(sigma),
                p_break: h.p_break,
                flake: h.flake,
                prs,
                seed,
            };
            let capacity = simulate(&base);
            let observed = match h.arrivals_per_hour {
                Some(r) => simulate(&Params {
                    arrivals: Arrivals::Poisson {
                        per_t: r * t_minutes / 60.0,
                    },
                    ..base
                }),
                None => capacity.clone(),
            };
            Outcome {
                strategy,
                capacity,
                observed,
            }
        })
        .collect()
}

/// The recommended outcome: among the settings whose capacity is at least 1.5 times the
/// arrival rate, the one with the shortest 95th-percentile time to land (then the fewest
/// builds per merge); without such a setting, the one with the highest capacity.
pub fn recommend<'a>(h: &History, outs: &'a [Outcome]) -> Option<&'a Outcome> {
    let t_minutes = h.median_minutes.max(1e-3);
    let enough = |o: &&Outcome| match h.arrivals_per_hour {
        Some(r) => o.capacity.merged_per_t() * 60.0 / t_minutes >= 1.5 * r,
        None => false,
    };
    let fits: Vec<&Outcome> = outs.iter().filter(enough).collect();
    if fits.is_empty() {
        return outs.iter().max_by(|a, b| {
            a.capacity
                .merged_per_t()
                .total_cmp(&b.capacity.merged_per_t())
        });
    }
    fits.into_iter().min_by(|a, b| {
        a.observed
            .land_p95_t
            .total_cmp(&b.observed.land_p95_t)
            .then(
                a.observed
                    .builds_per_merge()
                    .total_cmp(&b.observed.builds_per_merge()),
            )
    })
}

/// Runs `greg simulate --from-history REPO`.
pub async fn run(args: &Args, repo: &str, config: &Path) -> ExitCode {
    let Some(name) = RepoName::parse(repo) else {
        eprintln!("error: `{repo}` is not owner/name");
        return ExitCode::from(2);
    };
    let url = match &args.database {
        Some(u) => u.clone(),
        None => match crate::wiring::load_config(config) {
            Ok(c) => c.server.database.clone(),
            Err(code) => return code,
        },
    };
    let store = match Store::connect(&url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot open the store: {e}");
            return ExitCode::from(1);
        }
    };
    let read = async {
        let entries = store.finished_queue_entries(&name, 0, i64::MAX).await?;
        let builds = store.merge_builds_since(&name, 0).await?;
        Ok::<_, greg_store::StoreError>((entries, builds))
    };
    let (entries, builds) = match read.await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: cannot read the history of {name}: {e}");
            return ExitCode::from(1);
        }
    };
    store.close().await;
    let h = estimate(&entries, &builds);
    if h.entries == 0 {
        eprintln!("error: the store has no finished merge request of {name}");
        return ExitCode::from(1);
    }
    println!(
        "{name}: {} merge requests, {} merge builds; {}; T = median build {:.1} min (p90 {:.1}); \
         P(break) {:.3}; flake rate {:.3}\n",
        h.entries,
        h.builds,
        match h.arrivals_per_hour {
            Some(r) => format!("{r:.2} arrivals per hour"),
            None => "arrival rate unknown".into(),
        },
        h.median_minutes,
        h.p90_minutes,
        h.p_break,
        h.flake
    );
    let outs = outcomes(&h, args.prs, args.seed);
    let t = h.median_minutes.max(1e-3);
    println!(
        "{:<40} {:>12} {:>14} {:>8} {:>18}",
        "merge_queue", "capacity/h", "merged/h now", "b/merge", "land p50/p95 min"
    );
    for o in &outs {
        println!(
            "{:<40} {:>12.1} {:>14.1} {:>8.2} {:>18}",
            label(&o.strategy),
            o.capacity.merged_per_t() * 60.0 / t,
            o.observed.merged_per_t() * 60.0 / t,
            o.observed.builds_per_merge(),
            format!(
                "{:.0} / {:.0}",
                o.observed.land_p50_t * t,
                o.observed.land_p95_t * t
            )
        );
    }
    if let Some(best) = recommend(&h, &outs) {
        let s = best.strategy;
        println!(
            "\nRecommended (expected {:.1} merged per hour at most, {:.2} builds per merge):\n\
             merge_queue:\n  batch_size: {}\n  window: {}\n  adaptive: {}\n  window_min: {}\n  \
             optimistic: {}",
            best.capacity.merged_per_t() * 60.0 / t,
            best.observed.builds_per_merge(),
            s.batch_size,
            s.window,
            s.adaptive,
            s.window_min,
            s.optimistic
        );
    }
    let reports: Vec<&Report> = outs
        .iter()
        .flat_map(|o| [&o.capacity, &o.observed])
        .collect();
    violations(&reports)
}
