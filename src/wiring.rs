//! Start-up: configuration, logging, adapters, store, engine and HTTP server, wired together.

use anyhow::Context as _;
use greg_config::Config;
use greg_engine::{EngineOptions, SystemClock};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// Installs the tracing subscriber: `RUST_LOG` filter (default `default_level`), text or JSON
/// lines, on stderr.
pub fn init_tracing(json: bool, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Loads and validates the configuration; on failure prints the error and returns exit code 2.
pub fn load_config(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// `greg serve`: runs until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.server.listen.clone();
    let engine =
        greg_server::wiring::start_engine(config, Arc::new(SystemClock), EngineOptions::default())
            .await?;
    let (server, addr) =
        greg_server::bind(engine, &listen, None).with_context(|| format!("binding {listen}"))?;
    tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "greg is listening");
    server.await.context("HTTP server")?;
    Ok(())
}
