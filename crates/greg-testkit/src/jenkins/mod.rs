//! [`FakeJenkins`]: the Jenkins remote API greg calls, served over HTTP from the [`World`],
//! and the runtime that runs triggered jobs and POSTs Notification-plugin callbacks.
//!
//! The server's thread also runs a driver task: it sleeps out the start and run delays of
//! [`crate::world::JenkinsTiming`] and then calls [`World::start_queued`] and
//! [`World::finish_build`] (after an auto CI job's duration for its builds, see
//! [`World::auto_ci`]), and it delivers notifications one at a time, in the order they
//! were recorded, as `POST` with `Content-Type: application/json;charset=UTF-8` (what the
//! plugin's `Protocol.java` sends).

pub mod json;
mod routes;

use crate::http;
use crate::world::jenkins::{DriverCmd, phase_name};
use crate::world::{Delivery, World};
use actix_web::dev::ServerHandle;
use std::fmt;
use std::time::Duration;
use tokio::sync::mpsc::{self, UnboundedReceiver};

/// How long one notification POST may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The fake Jenkins server. Stops when dropped.
pub struct FakeJenkins {
    /// Root URL, `http://127.0.0.1:PORT` (greg's `builders.jenkins.url`).
    pub url: String,
    world: World,
    handle: ServerHandle,
}

impl fmt::Debug for FakeJenkins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeJenkins")
            .field("url", &self.url)
            .finish()
    }
}

impl FakeJenkins {
    /// Starts the server on `127.0.0.1:0` on its own thread, records its root URL in the world
    /// (`jenkins.root_url`) and attaches the driver that runs builds and sends notifications.
    /// Errors when the port cannot be bound.
    pub fn start(world: World) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let w = world.clone();
        let driver_world = world.clone();
        let (addr, handle) = http::serve(
            "jenkins",
            move |req| routes::handle(&w, req),
            move || {
                actix_web::rt::spawn(drive(driver_world, rx));
            },
        )?;
        let url = format!("http://{addr}");
        world.update(|s| {
            s.jenkins.root_url = url.clone();
            s.jenkins.driver = Some(tx);
        });
        Ok(Self { url, world, handle })
    }

    /// The world this fake serves.
    pub fn world(&self) -> &World {
        &self.world
    }
}

impl Drop for FakeJenkins {
    fn drop(&mut self) {
        self.world.update(|s| {
            s.jenkins.driver = None;
            s.jenkins.in_flight = 0;
        });
        drop(self.handle.stop(false));
    }
}

async fn drive(world: World, mut rx: UnboundedReceiver<DriverCmd>) {
    crate::install_crypto_provider();
    let client = match reqwest::Client::builder().timeout(DELIVERY_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the fake Jenkins HTTP client; notifications will not be sent");
            return;
        }
    };
    let (deliveries, mut queue) = mpsc::unbounded_channel::<usize>();
    let w = world.clone();
    actix_web::rt::spawn(async move {
        while let Some(seq) = queue.recv().await {
            deliver(&w, &client, seq).await;
            w.update(|s| s.jenkins.done_in_flight());
        }
    });
    while let Some(cmd) = rx.recv().await {
        match cmd {
            DriverCmd::Start(id, delay) => {
                let w = world.clone();
                actix_web::rt::spawn(async move {
                    tokio::time::sleep(delay).await;
                    // A cancelled or manually started item is simply skipped.
                    let _ = w.start_queued(id);
                    w.update(|s| s.jenkins.done_in_flight());
                });
            }
            DriverCmd::Finish(job, number, result, delay) => {
                let w = world.clone();
                actix_web::rt::spawn(async move {
                    tokio::time::sleep(delay).await;
                    // A build stopped, finished or kept running by the test meanwhile is
                    // left alone.
                    let _ = w.finish_scheduled(&job, number, result);
                    w.update(|s| s.jenkins.done_in_flight());
                });
            }
            DriverCmd::AutoFinish(job, number, result, delay) => {
                let w = world.clone();
                actix_web::rt::spawn(async move {
                    tokio::time::sleep(delay).await;
                    // A build stopped, finished or kept running meanwhile is left alone.
                    let _ = w.finish_scheduled(&job, number, result);
                });
            }
            DriverCmd::Deliver(seq) => {
                if deliveries.send(seq).is_err() {
                    world.update(|s| s.jenkins.done_in_flight());
                }
            }
        }
    }
}

async fn deliver(world: &World, client: &reqwest::Client, seq: usize) {
    let Some((endpoint, body, job, number, phase)) = world.read(|s| {
        let n = s.jenkins.notifications.get(seq)?;
        Some((
            n.endpoint.clone(),
            n.payload.to_string(),
            n.job.clone(),
            n.number,
            n.phase,
        ))
    }) else {
        return;
    };
    let delivery = match client
        .post(&endpoint)
        .header("content-type", "application/json;charset=UTF-8")
        .body(body)
        .send()
        .await
    {
        Ok(resp) => Delivery::Delivered {
            status: resp.status().as_u16(),
        },
        // The endpoint URL carries greg's token: keep it out of the error text.
        Err(e) => Delivery::Failed {
            error: e.without_url().to_string(),
        },
    };
    tracing::debug!(
        job = %job,
        number = number.0,
        phase = phase_name(phase),
        delivery = ?delivery,
        "Fake Jenkins sent a notification"
    );
    world.update(|s| {
        if let Some(n) = s.jenkins.notifications.get_mut(seq) {
            n.delivery = delivery;
        }
    });
}
