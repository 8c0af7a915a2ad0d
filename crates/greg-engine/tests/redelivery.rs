//! Redelivery of missed GitHub webhooks (SPEC §11), through a stub provider that records what
//! greg asks: at start and at each reconciliation greg lists its webhook's recent deliveries
//! and asks again, once per GUID and run, for those it missed and does not have; a provider
//! that lacks the operation or the rights changes nothing else.

use async_trait::async_trait;
use greg_core::{
    CommentId, CommitStatus, Error, Headers, Inbound, Login, Permission, PrNumber, Provider,
    PullRequest, RepoName, Result, Review, Sha, WebhookDelivery, WebhookError,
};
use greg_engine::{Engine, EngineOptions, ManualClock};
use greg_store::{NewDelivery, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type TestResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const NOW: i64 = 10 * 24 * 3600 * 1000;

/// What the stub's webhook listing answers.
#[derive(Clone)]
enum Listing {
    Deliveries(Vec<WebhookDelivery>),
    Denied,
    Unsupported,
}

struct Stub {
    listing: Listing,
    /// (repo, url) of each listing.
    listed: Mutex<Vec<(String, String)>>,
    /// (hook, delivery) of each redelivery asked for.
    redelivered: Mutex<Vec<(u64, u64)>>,
}

impl std::fmt::Display for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("github(stub)")
    }
}

fn unsupported<T>() -> Result<T> {
    Err(Error::NotSupported {
        operation: "this",
        implementer: "the stub",
    })
}

#[async_trait]
impl Provider for Stub {
    fn name(&self) -> &str {
        "github"
    }
    fn bot_login(&self) -> Option<&Login> {
        None
    }
    fn verify_webhook(&self, _: &Headers, _: &[u8]) -> std::result::Result<(), WebhookError> {
        Ok(())
    }
    fn parse_webhook(&self, _: &Headers, _: &[u8]) -> std::result::Result<Inbound, WebhookError> {
        Ok(Inbound::Ignored("stub".to_owned()))
    }
    fn delivery_id(&self, _: &Headers) -> Option<String> {
        None
    }
    async fn pull_request(&self, _: &RepoName, _: PrNumber) -> Result<PullRequest> {
        unsupported()
    }
    async fn reviews(&self, _: &RepoName, _: PrNumber) -> Result<Vec<Review>> {
        unsupported()
    }
    async fn permission(&self, _: &RepoName, _: &Login) -> Result<Permission> {
        unsupported()
    }
    async fn post_comment(&self, _: &RepoName, _: PrNumber, _: &str) -> Result<CommentId> {
        unsupported()
    }
    async fn set_status(&self, _: &RepoName, _: &Sha, _: &CommitStatus) -> Result<()> {
        unsupported()
    }
    async fn webhook_deliveries(&self, repo: &RepoName, url: &str) -> Result<Vec<WebhookDelivery>> {
        if let Ok(mut l) = self.listed.lock() {
            l.push((repo.to_string(), url.to_owned()));
        }
        match &self.listing {
            Listing::Deliveries(d) => Ok(d.clone()),
            Listing::Denied => Err(Error::PermissionDenied {
                message: "Resource not accessible by integration".to_owned(),
            }),
            Listing::Unsupported => unsupported(),
        }
    }
    async fn redeliver_webhook(&self, _: &RepoName, hook_id: u64, delivery_id: u64) -> Result<()> {
        if let Ok(mut r) = self.redelivered.lock() {
            r.push((hook_id, delivery_id));
        }
        Ok(())
    }
}

fn delivery(id: u64, guid: &str, status: u16, age_ms: i64) -> WebhookDelivery {
    WebhookDelivery {
        hook_id: 9,
        id,
        guid: guid.to_owned(),
        event: "issue_comment".to_owned(),
        status_code: status,
        delivered_ms: NOW - age_ms,
        redelivery: false,
    }
}

const CONFIG: &str = r#"server:
  public_url: https://greg.example.com
providers:
  github:
    username: greg-bot
    password: gh-api-token
    incoming_token: gh-incoming
    source: "git@github.com:"
builders:
  jenkins:
    url: http://127.0.0.1:9
    username: greg
    password: jenkins-api-token
    incoming_token: jk-incoming
repos:
  - provider: github
    organizations: [acme]
    names: [demo]
    jobs:
      test: {name: demo-test, builder: jenkins}
"#;

/// Starts an engine on a fresh in-memory store holding `stored` GitHub delivery ids.
async fn start(listing: Listing, stored: &[&str]) -> TestResult<(Engine, Arc<Stub>)> {
    let config =
        greg_config::Config::from_yaml_str(CONFIG, &|_| None).map_err(|e| e.to_string())?;
    let store = Store::connect("sqlite::memory:").await?;
    let batch: Vec<NewDelivery> = stored
        .iter()
        .map(|id| NewDelivery {
            source: "github".to_owned(),
            delivery_id: (*id).to_owned(),
            repo_key: "acme/demo".to_owned(),
            event: "comment".to_owned(),
            payload: "{}".to_owned(),
            received_ms: NOW - 1_000,
        })
        .collect();
    let seqs = store.insert_deliveries(&batch).await?;
    for s in seqs {
        if let greg_store::Inserted::New(seq) = s {
            store
                .finish_delivery(seq, greg_store::DeliveryOutcome::Done, NOW - 500)
                .await?;
        }
    }
    let stub = Arc::new(Stub {
        listing,
        listed: Mutex::new(Vec::new()),
        redelivered: Mutex::new(Vec::new()),
    });
    let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
    providers.insert("github".to_owned(), stub.clone());
    let engine = Engine::start(
        Arc::new(config),
        store,
        providers,
        HashMap::new(),
        Arc::new(ManualClock::new(NOW)),
        EngineOptions::default(),
    )
    .await?;
    engine.wait_idle().await;
    Ok((engine, stub))
}

fn redelivered(stub: &Stub) -> Vec<(u64, u64)> {
    stub.redelivered
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn missed_deliveries_are_asked_for_once_per_guid_and_run() -> TestResult {
    let listing = Listing::Deliveries(vec![
        delivery(1, "down", 0, 60_000),
        delivery(2, "stored", 503, 60_000),
        delivery(3, "split", 502, 60_000),
        delivery(4, "fine", 202, 60_000),
        delivery(5, "refused", 401, 60_000),
        delivery(6, "too-old", 0, 4 * 24 * 3600 * 1000),
        delivery(7, "broken", 500, 30_000),
    ]);
    let (engine, stub) = start(listing, &["stored", "split#0", "split#1"]).await?;
    assert_eq!(
        stub.listed.lock().map(|l| l.clone()).unwrap_or_default(),
        [(
            "acme/demo".to_owned(),
            "https://greg.example.com/repo".to_owned()
        )]
    );
    assert_eq!(redelivered(&stub), [(9, 1), (9, 7)]);

    // The next reconciliation lists again but asks for nothing twice.
    engine.reconcile().await;
    engine.wait_idle().await;
    assert_eq!(stub.listed.lock().map(|l| l.len()).unwrap_or_default(), 2);
    assert_eq!(redelivered(&stub), [(9, 1), (9, 7)]);
    Ok(())
}

#[tokio::test]
async fn without_the_rights_or_the_operation_nothing_is_asked() -> TestResult {
    for listing in [Listing::Denied, Listing::Unsupported] {
        let (engine, stub) = start(listing, &[]).await?;
        engine.reconcile().await;
        engine.wait_idle().await;
        assert_eq!(stub.listed.lock().map(|l| l.len()).unwrap_or_default(), 2);
        assert_eq!(redelivered(&stub), []);
    }
    Ok(())
}
