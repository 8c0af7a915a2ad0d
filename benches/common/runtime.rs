//! The `main` of the benches that measure one async run (`benches/pages.rs`,
//! `benches/metrics.rs`, `benches/reports.rs`; each includes it with
//! `#[path = "common/runtime.rs"] mod runtime;`): a multi-threaded tokio runtime, the run, and
//! its error printed on standard error with exit code 1.

use std::future::Future;
use std::process::ExitCode;

/// Runs `bench` to completion on a new multi-threaded runtime; success or failure as the
/// exit code, the failure's chain of causes printed.
pub fn main(bench: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
