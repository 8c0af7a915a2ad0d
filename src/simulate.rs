//! `greg simulate` (issue 11): greg's real merge pipeline under a virtual clock (greg-sim).
//! One run prints a table of what it measured; `--sweep` runs the benchmark grid and prints it
//! as Markdown (`--plot FILE.svg` draws it); `--from-history REPO` estimates a repository's
//! arrivals, build durations, P(break) and flake rate from the store and recommends
//! `merge_queue` settings. Exit 0, 1 when the simulator saw an invariant violated, 2 for bad
//! usage.

use greg_sim::sweep::{self, Named};
use greg_sim::{Arrivals, CiDuration, Params, Report, Strategy, simulate};
use std::path::PathBuf;
use std::process::ExitCode;

mod history;

/// The flags of `greg simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Pull requests tested together in one candidate.
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Candidates built at once (the upper bound of an adaptive window).
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// The window grows by one per landing and halves per failure.
    #[arg(long)]
    pub adaptive: bool,
    /// The lower bound of an adaptive window.
    #[arg(long, default_value_t = 1)]
    pub window_min: usize,
    /// A green candidate vindicates its red ancestors.
    #[arg(long)]
    pub optimistic: bool,
    /// P(break): probability that a pull request breaks the build.
    #[arg(long, default_value_t = 0.05)]
    pub p: f64,
    /// Probability that a build without a bad pull request is red anyway.
    #[arg(long, default_value_t = 0.0)]
    pub flake: f64,
    /// The median CI duration T, in minutes (for times in minutes and arrivals per hour).
    #[arg(long, default_value_t = 30.0)]
    pub ci_minutes: f64,
    /// Spread of build durations: the standard deviation of their logarithm (0: every build
    /// takes exactly T).
    #[arg(long, default_value_t = 0.0)]
    pub ci_sigma: f64,
    /// Pull requests arriving per hour (Poisson); absent: an always-full queue.
    #[arg(long)]
    pub arrivals_per_hour: Option<f64>,
    /// The run ends when this many pull requests have landed or failed.
    #[arg(long, default_value_t = 2000)]
    pub prs: usize,
    /// The random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run the benchmark grid (p × flake × strategies) and print it as Markdown.
    #[arg(long)]
    pub sweep: bool,
    /// With --sweep: write an SVG plot of merged pull requests per T against p.
    #[arg(long, value_name = "FILE.svg", requires = "sweep")]
    pub plot: Option<PathBuf>,
    /// Replay what the store recorded for this repository (owner/name) and recommend
    /// `merge_queue` settings.
    #[arg(long, value_name = "REPO", conflicts_with = "sweep")]
    pub from_history: Option<String>,
    /// With --from-history: the store's URL (default: server.database of --config).
    #[arg(long, value_name = "URL", requires = "from_history")]
    pub database: Option<String>,
}

/// Runs `greg simulate`.
pub async fn run(args: &Args, config: &std::path::Path) -> ExitCode {
    if let Some(msg) = check(args) {
        eprintln!("error: {msg}");
        return ExitCode::from(2);
    }
    if let Some(repo) = &args.from_history {
        return history::run(args, repo, config).await;
    }
    if args.sweep {
        return run_sweep(args);
    }
    let params = params(args);
    let report = simulate(&params);
    print!(
        "{}",
        table(args, &[(label(&params.strategy), report.clone())])
    );
    violations(&[&report])
}

/// A usage error in the numbers, if any.
fn check(a: &Args) -> Option<String> {
    let prob = |x: f64| (0.0..=1.0).contains(&x);
    if a.batch_size == 0 || a.window == 0 || a.window_min == 0 {
        return Some("--batch-size, --window and --window-min must be at least 1".into());
    }
    if !prob(a.p) || !prob(a.flake) {
        return Some("--p and --flake are probabilities, in [0, 1]".into());
    }
    let positive = |x: f64| x > 0.0 && x.is_finite();
    if !positive(a.ci_minutes) || !(a.ci_sigma == 0.0 || positive(a.ci_sigma)) {
        return Some("--ci-minutes must be positive and --ci-sigma not negative".into());
    }
    if a.arrivals_per_hour
        .is_some_and(|r| !(r > 0.0 && r.is_finite()))
    {
        return Some("--arrivals-per-hour must be positive".into());
    }
    if a.prs == 0 {
        return Some("--prs must be at least 1".into());
    }
    None
}

/// The simulation the flags describe.
fn params(a: &Args) -> Params {
    Params {
        strategy: Strategy {
            batch_size: a.batch_size,
            window: a.window,
            adaptive: a.adaptive,
            window_min: a.window_min.min(a.window),
            optimistic: a.optimistic,
        },
        arrivals: match a.arrivals_per_hour {
            Some(r) => Arrivals::Poisson {
                per_t: r * a.ci_minutes / 60.0,
            },
            None => Arrivals::AlwaysFull,
        },
        ci: ci(a.ci_sigma),
        p_break: a.p,
        flake: a.flake,
        prs: a.prs,
        seed: a.seed,
    }
}

/// Build durations of spread `sigma`.
fn ci(sigma: f64) -> CiDuration {
    if sigma > 0.0 {
        CiDuration::LogNormal { sigma }
    } else {
        CiDuration::Fixed
    }
}

/// `merge_queue` settings in one line, e.g. `batch_size 1, window 20, adaptive`.
fn label(s: &Strategy) -> String {
    let mut out = format!("batch_size {}, window {}", s.batch_size, s.window);
    if s.adaptive {
        out += &format!(", adaptive from {}", s.window_min);
    }
    if s.optimistic {
        out += ", optimistic";
    }
    out
}

/// The table of one or more runs, in T and in minutes.
fn table(a: &Args, rows: &[(String, Report)]) -> String {
    let mut s = format!(
        "p = {}, flake = {}, T = {} min, {}\n",
        a.p,
        a.flake,
        a.ci_minutes,
        match a.arrivals_per_hour {
            Some(r) => format!("{r} pull requests per hour"),
            None => "always-full queue".into(),
        }
    );
    s += &format!(
        "{:<40} {:>10} {:>10} {:>8} {:>8} {:>6} {:>8} {:>16}\n",
        "settings",
        "merged/T",
        "merged/h",
        "builds",
        "b/merge",
        "saved",
        "failed",
        "land p50/p95 min"
    );
    for (name, r) in rows {
        s += &format!(
            "{:<40} {:>10.2} {:>10.1} {:>8} {:>8.2} {:>6} {:>8} {:>16}\n",
            name,
            r.merged_per_t(),
            r.merged_per_t() * 60.0 / a.ci_minutes,
            r.builds,
            r.builds_per_merge(),
            r.builds_saved,
            r.failed_bad + r.failed_good,
            format!(
                "{:.0} / {:.0}",
                r.land_p50_t * a.ci_minutes,
                r.land_p95_t * a.ci_minutes
            ),
        );
    }
    s
}

/// Exit 0, or 1 with the first violation of each report that saw one.
fn violations(reports: &[&Report]) -> ExitCode {
    let mut bad = false;
    for r in reports {
        if let Some(v) = &r.first_violation {
            eprintln!("error: invariant violated ({} in all): {v}", r.violations);
            bad = true;
        }
    }
    if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_sweep(a: &Args) -> ExitCode {
    let strategies: Vec<Named> = sweep::STRATEGIES.to_vec();
    let cells = sweep::sweep(&strategies, &sweep::PS, &sweep::FLAKES, a.prs, a.seed);
    println!(
        "Always-full queue, builds of exactly T, {} pull requests per cell, seed {}.\n",
        a.prs, a.seed
    );
    print!("{}", sweep::markdown(&cells));
    if let Some(path) = &a.plot {
        let svg = match greg_sim::plot::svg(&cells, 0.0) {
            Ok(svg) => svg,
            Err(e) => {
                eprintln!("error: cannot draw the plot: {e}");
                return ExitCode::from(1);
            }
        };
        if let Err(e) = std::fs::write(path, svg) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    violations(&cells.iter().map(|c| &c.report).collect::<Vec<_>>())
}
