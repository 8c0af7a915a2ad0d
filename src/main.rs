//! The `greg` binary: `greg serve`, `greg check-config`, `greg fix-hooks`, `greg redeliver`,
//! `greg simulate`, `greg notify`, `greg report`, `greg demo`.
//!
//! Exit codes (SPEC §7): 0 success, 1 failure, 2 bad usage or bad configuration.

mod check_config;
mod cli;
#[cfg(feature = "demo")]
mod demo;
mod fix_hooks;
mod notify;
mod redeliver;
mod report;
mod simulate;
mod wiring;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The demo prints its own story; greg's logs stay at warnings unless RUST_LOG says otherwise.
    #[cfg(feature = "demo")]
    let default_level = if matches!(cli.command, Some(cli::Command::Demo { .. })) {
        "warn"
    } else {
        "info"
    };
    #[cfg(not(feature = "demo"))]
    let default_level = "info";
    wiring::init_tracing(cli.log_json, default_level);
    // One rustls crypto provider (ring) for reqwest, octocrab and sqlx.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(cli::run(cli))
}
