//! The simulator against the reference model of an always-full queue, and the SPEC §10
//! invariants over many seeds and strategies.

use greg_sim::sweep::{self, STRATEGIES};
use greg_sim::{Arrivals, CiDuration, Params, Strategy, simulate};

fn window(batch_size: usize, window: usize) -> Strategy {
    Strategy {
        batch_size,
        window,
        ..Strategy::SERIAL
    }
}

#[test]
fn serial_without_failures_merges_one_pull_request_per_t() {
    let r = simulate(&Params::new(Strategy::SERIAL, 0.0, 0.0));
    assert_eq!(r.violations, 0);
    assert!((r.merged_per_t() - 1.0).abs() < 0.01, "{r:?}");
    assert!((r.builds_per_merge() - 1.0).abs() < 0.01, "{r:?}");
}

#[test]
fn serial_merges_one_minus_p_per_t() {
    let r = simulate(&Params {
        prs: 5000,
        ..Params::new(Strategy::SERIAL, 0.1, 0.0)
    });
    assert!((r.merged_per_t() - 0.9).abs() < 0.02, "{r:?}");
}

#[test]
fn window_20_at_p_0_05_merges_12_per_t_with_at_most_1_7_builds_per_merge() {
    let r = simulate(&Params {
        prs: 5000,
        ..Params::new(window(1, 20), 0.05, 0.0)
    });
    assert_eq!(r.violations, 0, "{:?}", r.first_violation);
    assert!(r.merged_per_t() >= 12.0, "{r:?}");
    assert!(r.builds_per_merge() <= 1.7, "{r:?}");
}

#[test]
fn windows_follow_the_reference_model() {
    // (1 − p)(1 − (1 − p)^w) / p merged per T: 4.28 for window 5 at p = 0.05, 7.91 for
    // window 20 at p = 0.1 (the pipeline rebuilds a red candidate's successors at once, so
    // it may do a little better).
    for (w, p, reference) in [(5, 0.05, 4.28), (20, 0.1, 7.91)] {
        let r = simulate(&Params {
            prs: 5000,
            ..Params::new(window(1, w), p, 0.0)
        });
        let got = r.merged_per_t();
        assert!(
            got >= reference * 0.97 && got <= reference * 1.1,
            "window {w} at p {p}: {got}"
        );
    }
}

#[test]
fn no_invariant_is_violated_across_seeds_strategies_and_models() {
    let mut strategies: Vec<Strategy> = STRATEGIES.iter().map(|n| n.strategy).collect();
    strategies.extend(STRATEGIES.iter().map(|n| Strategy {
        optimistic: true,
        ..n.strategy
    }));
    strategies.push(Strategy {
        adaptive: true,
        window_min: 3,
        ..window(2, 10)
    });
    for (i, s) in strategies.iter().enumerate() {
        for seed in 1..=2 {
            for (p, flake) in [(0.02, 0.0), (0.1, 0.05), (0.3, 0.2)] {
                for (arrivals, ci) in [
                    (Arrivals::AlwaysFull, CiDuration::Fixed),
                    (
                        Arrivals::Poisson { per_t: 3.0 },
                        CiDuration::LogNormal { sigma: 0.4 },
                    ),
                ] {
                    let r = simulate(&Params {
                        strategy: *s,
                        arrivals,
                        ci,
                        p_break: p,
                        flake,
                        prs: 300,
                        seed: seed * 1000 + i as u64,
                    });
                    assert_eq!(
                        r.violations, 0,
                        "{s:?} {p} {flake}: {:?}",
                        r.first_violation
                    );
                    // Done: at least 300 (a landing batch may overshoot), every arrival for
                    // Poisson arrivals (they stop at 300).
                    let done = r.landed + r.failed_bad + r.failed_good;
                    assert!(done >= 300, "{s:?} {p} {flake} {arrivals:?}: {done}");
                }
            }
        }
    }
}

#[test]
fn a_bad_pull_request_never_lands_and_without_flakes_no_good_one_fails() {
    for n in STRATEGIES {
        let r = simulate(&Params::new(n.strategy, 0.2, 0.0));
        assert_eq!(r.violations, 0, "{}", n.name);
        assert_eq!(r.failed_good, 0, "{}", n.name);
    }
}

#[test]
fn a_seed_gives_one_run() {
    let p = Params {
        ci: CiDuration::LogNormal { sigma: 0.3 },
        ..Params::new(window(2, 6), 0.1, 0.05)
    };
    assert_eq!(simulate(&p), simulate(&p));
    assert_ne!(simulate(&p), simulate(&Params { seed: 2, ..p }));
}

#[test]
fn poisson_arrivals_below_capacity_all_land_at_the_arrival_rate() {
    let r = simulate(&Params {
        arrivals: Arrivals::Poisson { per_t: 0.5 },
        prs: 2000,
        ..Params::new(window(1, 5), 0.0, 0.0)
    });
    assert_eq!(r.landed, 2000);
    assert!((r.merged_per_t() - 0.5).abs() < 0.05, "{r:?}");
    // Nothing waits for long: a pull request lands about one build after it arrives.
    assert!(r.land_p50_t >= 1.0 && r.land_p50_t < 1.5, "{r:?}");
}

#[test]
fn the_sweep_draws_an_svg_plot_with_every_strategy() {
    let cells = sweep::sweep(&STRATEGIES, &[0.05, 0.2], &[0.0], 200, 1);
    assert_eq!(cells.len(), STRATEGIES.len() * 2);
    let svg = greg_sim::plot::svg(&cells, 0.0).expect("plot");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    for n in STRATEGIES {
        assert!(svg.contains(n.name), "{}", n.name);
    }
    let md = sweep::markdown(&cells);
    assert_eq!(md.lines().count(), 2 + cells.len());
}
