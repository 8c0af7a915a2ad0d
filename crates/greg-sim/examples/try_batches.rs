use greg_sim::{Params, Strategy, simulate};
fn main() {
    for (b, w) in [
        (2, 8),
        (2, 10),
        (2, 16),
        (2, 20),
        (3, 8),
        (3, 10),
        (4, 4),
        (4, 6),
        (4, 8),
        (8, 4),
        (2, 30),
        (3, 20),
    ] {
        let s = Strategy {
            batch_size: b,
            window: w,
            adaptive: false,
            window_min: 1,
            optimistic: false,
        };
        let mut line = format!("b{b} w{w}:");
        for p in [0.02, 0.05, 0.1] {
            let r = simulate(&Params {
                prs: 4000,
                ..Params::new(s, p, 0.0)
            });
            line += &format!(
                "  p{p}: {:.2}/T {:.2} b/m",
                r.merged_per_t(),
                r.builds_per_merge()
            );
        }
        println!("{line}");
    }
}
