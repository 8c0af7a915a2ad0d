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

/// Why `greg serve` stopped with an error: the configuration (exit 2, SPEC §7) or anything
/// else (exit 1).
pub enum ServeError {
    /// The configuration asks for something greg cannot do (found at start).
    Config(anyhow::Error),
    /// Start-up or the server failed.
    Failed(anyhow::Error),
}

/// `greg serve`: runs until SIGINT/SIGTERM, then shuts down gracefully (SPEC §11).
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let listen = config.server.listen.clone();
    let grace = config.server.shutdown_grace;
    let engine =
        greg_server::wiring::start_engine(config, Arc::new(SystemClock), EngineOptions::default())
            .await
            .map_err(|e| {
                if is_config_error(&e) {
                    ServeError::Config(e.into())
                } else {
                    ServeError::Failed(e.into())
                }
            })?;
    let (server, addr) = match greg_server::bind(engine.clone(), &listen, None) {
        Ok(bound) => bound,
        Err(e) => {
            engine.shutdown(grace).await;
            return Err(ServeError::Failed(
                anyhow::Error::new(e).context(format!("binding {listen}")),
            ));
        }
    };
    tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "greg is listening");
    greg_server::run_until_signal(server, engine, grace)
        .await
        .context("HTTP server")
        .map_err(ServeError::Failed)
}

/// Whether start-up failed because of the configuration rather than the world: an adapter
/// refusing its settings, a combination greg cannot run, a database URL greg cannot use.
fn is_config_error(e: &greg_server::wiring::StartError) -> bool {
    use greg_server::wiring::StartError;
    match e {
        StartError::Unsupported { .. } => true,
        StartError::Adapter { source, .. } => {
            matches!(source, greg_core::Error::InvalidConfig { .. })
        }
        // config.yaml's database URL is validated on load; here the database itself failed.
        StartError::Store(_) | StartError::Engine(_) => false,
    }
}
