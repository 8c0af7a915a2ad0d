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

    /// Greg's legacy form of `greg fix-hooks`: `greg --config config.yaml --fix-hooks --url URL`.
    #[arg(long, hide = true)]
    pub fix_hooks: bool,

    /// fix-hooks: greg's public base URL (default: server.public_url). report: greg's URL
    /// (default: $GREG_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,

    /// fix-hooks: print a diff of each change and change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// fix-hooks: rewrite the secret of every greg webhook (GitHub never shows a secret, so
    /// greg cannot tell a stale one from the configured one).
    #[arg(long, global = true)]
    pub rotate_secret: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: webhooks in, builds out, results back (the default).
    Serve,
    /// Validate the configuration file, then probe GitHub, Jenkins and greg's public URL.
    CheckConfig,
    /// Make every configured repository carry one greg webhook and every configured Jenkins
    /// job call greg back (`--dry-run`, `--url URL`, `--rotate-secret`).
    FixHooks,
    /// Run dead-lettered deliveries again (see `GET /api/deliveries?state=failed`), through
    /// the running greg's admin API with `server.admin_token`.
    Redeliver {
        /// The deliveries' sequence numbers.
        #[arg(required = true, value_name = "SEQ")]
        seqs: Vec<String>,
    },
    /// Simulate the merge queue under a virtual clock: merged pull requests per CI run,
    /// builds per merge, time to land (`--sweep`, `--plot FILE.svg`, `--from-history REPO`).
    Simulate(crate::simulate::Args),
    /// Post a CI run's summary on the pull request whose head is the commit, with links to its
    /// detail files uploaded to an object store (notify_pr; `greg notify prune` deletes
    /// expired uploads). No greg server needed.
    Notify(Box<crate::notify::Args>),
    /// Send this CI job's result (status, JUnit reports, summary, metadata) to greg's server,
    /// for the pull request's report comment. Defaults come from the job's environment
    /// (`--url` is $GREG_URL; see each flag).
    Report(Box<crate::report::Args>),
    /// Play two pull requests through greg, a fake provider and a fake Jenkins on loopback.
    #[cfg(feature = "demo")]
    Demo {
        /// The provider to play the story on.
        #[arg(long, value_enum, default_value_t)]
        provider: crate::demo::DemoProvider,
    },
}

/// Runs the chosen command; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let command = match cli.command {
        Some(c) => c,
        None if cli.fix_hooks => Command::FixHooks,
        None => Command::Serve,
    };
    let fix_hooks_flags = cli.dry_run || cli.rotate_secret || cli.fix_hooks;
    if fix_hooks_flags && !matches!(command, Command::FixHooks) {
        eprintln!("error: --fix-hooks, --dry-run and --rotate-secret belong to fix-hooks");
        return ExitCode::from(2);
    }
    if cli.url.is_some() && !matches!(command, Command::FixHooks | Command::Report(_)) {
        eprintln!("error: --url belongs to fix-hooks and report");
        return ExitCode::from(2);
    }
    match command {
        Command::FixHooks => match wiring::load_config(&cli.config) {
            Ok(config) => {
                let opts = crate::fix_hooks::Options {
                    url: cli.url.clone(),
                    dry_run: cli.dry_run,
                    rotate_secret: cli.rotate_secret,
                };
                crate::fix_hooks::run(&config, &opts).await
            }
            Err(code) => code,
        },
        Command::Serve => match wiring::load_config(&cli.config) {
            Ok(config) => match wiring::serve(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(wiring::ServeError::Config(e)) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
                Err(wiring::ServeError::Failed(e)) => {
                    tracing::error!(error = %format!("{e:#}"), "greg stopped");
                    ExitCode::from(1)
                }
            },
            Err(code) => code,
        },
        Command::Redeliver { seqs } => match wiring::load_config(&cli.config) {
            Ok(config) => crate::redeliver::run(&config, &seqs).await,
            Err(code) => code,
        },
        Command::CheckConfig => match wiring::load_config(&cli.config) {
            Ok(config) => crate::check_config::run(&cli.config, &config).await,
            Err(code) => code,
        },
        Command::Simulate(args) => crate::simulate::run(&args, &cli.config).await,
        Command::Notify(args) => crate::notify::run(&args).await,
        Command::Report(args) => crate::report::run(&args, cli.url.as_deref()).await,
        #[cfg(feature = "demo")]
        Command::Demo { provider } => crate::demo::run(provider).await,
    }
}
