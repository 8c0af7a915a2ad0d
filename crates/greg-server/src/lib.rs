//! greg-server: the HTTP surface (SPEC §3) on actix-web — webhook and callback routes, the
//! health check, and the server start-up.
//!
//! Architecture invariant: this is the only crate that knows actix-web. Handlers verify, parse
//! and hand the normalized event to the engine's durable inbox; they never call a provider or a
//! builder, so a webhook is answered in about the time of one (group) commit.

mod answer;
mod api;
mod routes;
pub mod wiring;

pub use answer::Answer;

use greg_engine::Engine;
use std::net::SocketAddr;

/// The largest request body greg reads (SPEC §3: over 10 MiB is 413).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Binds the HTTP server to `listen` (e.g. `127.0.0.1:8080`, port 0 for any) and returns it
/// unstarted with the bound address. Await the server to run it; it stops on SIGINT/SIGTERM
/// or through its handle.
///
/// `workers`: actix worker threads (`None`: one per core).
pub fn bind(
    engine: Engine,
    listen: &str,
    workers: Option<usize>,
) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    let state = actix_web::web::Data::new(routes::AppState::new(engine));
    let mut server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            .configure(routes::configure)
    })
    .backlog(2048);
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
