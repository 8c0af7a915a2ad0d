//! The adaptive window against window 20 on the benchmark grid (10,000 pull requests per
//! cell): `cargo run --release -p greg-sim --example adaptive`. Used to measure changes to
//! `Aimd` (docs/benchmarks.md).

use greg_sim::{Params, Strategy, simulate};
fn main() {
    let w20 = Strategy {
        batch_size: 1,
        window: 20,
        adaptive: false,
        window_min: 1,
        optimistic: false,
    };
    let ad = Strategy {
        adaptive: true,
        ..w20
    };
    for flake in [0.0, 0.05] {
        for p in [0.02, 0.05, 0.1, 0.2] {
            let f = simulate(&Params {
                prs: 10000,
                ..Params::new(w20, p, flake)
            });
            let a = simulate(&Params {
                prs: 10000,
                ..Params::new(ad, p, flake)
            });
            println!(
                "flake {flake} p {p}: w20 {:.2} ({:.2} b/m) adaptive {:.2} ({:.2} b/m) = {:.0}%",
                f.merged_per_t(),
                f.builds_per_merge(),
                a.merged_per_t(),
                a.builds_per_merge(),
                100.0 * a.merged_per_t() / f.merged_per_t()
            );
        }
    }
}
