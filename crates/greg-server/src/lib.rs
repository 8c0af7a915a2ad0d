//! greg-server: the HTTP surface (SPEC §3) on actix-web — webhook and callback routes, the
//! health check, and the server start-up.
//!
//! Architecture invariant: this is the only crate that knows actix-web. Handlers verify, parse
//! and hand the normalized event to the engine's durable inbox; they never call a provider or a
//! builder, so a webhook is answered in about the time of one (group) commit.

mod answer;
mod api;
mod auth;
mod pages;
mod project;
mod reports;
mod routes;
mod web_api;
pub mod wiring;

pub use answer::Answer;

use greg_engine::Engine;
use std::net::SocketAddr;
use std::time::Duration;

/// The largest request body greg reads (SPEC §3: over 10 MiB is 413).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Binds the HTTP server to `listen` (e.g. `127.0.0.1:8080`, port 0 for any) and returns it
/// unstarted with the bound address. Await the server to run it; it stops through its handle
/// (in-flight requests get `server.shutdown_grace`), or on SIGINT/SIGTERM when run by
/// [`run_until_signal`]. It installs no signal handler itself.
///
/// `workers`: actix worker threads (`None`: one per core).
pub fn bind(
    engine: Engine,
    listen: &str,
    workers: Option<usize>,
) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    let grace = engine.config().server.shutdown_grace;
    let state = actix_web::web::Data::new(routes::AppState::new(engine));
    let mut server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            .configure(routes::configure)
    })
    .backlog(2048)
    .disable_signals()
    .shutdown_timeout(grace.as_secs().max(1));
    if let Some(w) = workers {
        server = server.workers(w);
    }
    let server = server.bind(listen)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("the server bound no address"))?;
    Ok((server.run(), addr))
}

/// Runs `server` (from [`bind`]) until SIGTERM or SIGINT, then shuts down gracefully (SPEC
/// §11): the server stops listening and lets in-flight requests finish, the engine finishes
/// the steps it is running (at most `grace`) and closes the store. Deliveries accepted but
/// not yet processed stay pending in the store and run on the next start.
///
/// Errors: the server failed, or the signal handlers could not be installed.
pub async fn run_until_signal(
    server: actix_web::dev::Server,
    engine: Engine,
    grace: Duration,
) -> std::io::Result<()> {
    let handle = server.handle();
    let mut running = tokio::spawn(server);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let signal = tokio::select! {
        result = &mut running => {
            // The server stopped by itself (an error): still leave the store clean.
            engine.shutdown(grace).await;
            return result.map_err(std::io::Error::other)?;
        }
        _ = terminate.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    };
    tracing::info!(
        signal,
        grace_secs = grace.as_secs(),
        "Shutting down: no new requests, finishing the current steps"
    );
    handle.stop(true).await;
    let served = running.await.map_err(std::io::Error::other)?;
    engine.shutdown(grace).await;
    tracing::info!("greg stopped");
    served
}
