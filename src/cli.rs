//! Command-line interface (SPEC §7).

use crate::wiring;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// greg keeps integration branches green.
#[derive(Debug, Parser)]
#[command(name = "greg", version, about, long_about = None)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        default_value = "config.yaml",
        env = "GREG_CONFIG"
    )]
    pub config: PathBuf,

    /// Log as JSON lines instead of text (filter with RUST_LOG, default `info`).
    #[arg(long, global = true, env = "GREG_LOG_JSON")]
    pub log_json: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: webhooks in, builds out, results back (the default).
    Serve,
    /// Parse and validate the configuration file, then exit.
    CheckConfig,
    /// Play two pull requests through greg, a fake GitHub and a fake Jenkins on loopback.
    #[cfg(feature = "demo")]
    Demo,
}

/// Runs the chosen command; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match wiring::load_config(&cli.config) {
            Ok(config) => match wiring::serve(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "greg stopped");
                    ExitCode::from(1)
                }
            },
            Err(code) => code,
        },
        Command::CheckConfig => match wiring::load_config(&cli.config) {
            Ok(config) => {
                if let Err(e) = greg_server::wiring::adapters(&config) {
                    eprintln!("error: {}: {e}", cli.config.display());
                    return ExitCode::from(2);
                }
                println!(
                    "OK   {}: {} provider(s), {} builder(s), {} repository rule(s)",
                    cli.config.display(),
                    usize::from(config.providers.github.is_some())
                        + usize::from(config.providers.bitbucket.is_some()),
                    usize::from(config.builders.jenkins.is_some()),
                    config.repos.len()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        #[cfg(feature = "demo")]
        Command::Demo => crate::demo::run().await,
    }
}
