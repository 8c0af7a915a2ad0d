//! Start-up wiring shared by `greg serve`, `greg demo` and the test harness: the configured
//! adapters, the store and the engine.

use greg_bitbucket::{BitbucketConfig, BitbucketProvider, Flavor};
use greg_config::{BitbucketFlavor, BitbucketProviderConfig, Config};
use greg_core::{Builder, Provider, UpstreamCounts};
use greg_engine::{Clock, Engine, EngineOptions};
use greg_github::{GithubConfig, GithubProvider};
use greg_jenkins::{JenkinsBuilder, JenkinsConfig};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why start-up failed; each names the configuration key or component at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An adapter refused its configuration.
    #[error("{key}: {source}")]
    Adapter {
        key: &'static str,
        #[source]
        source: greg_core::Error,
    },
    /// The configuration asks for something this version cannot do.
    #[error("{key}: {what}")]
    Unsupported { key: String, what: String },
    /// The store could not be opened or migrated.
    #[error("server.database: {0}")]
    Store(#[from] greg_store::StoreError),
    /// The engine could not resume.
    #[error("engine: {0}")]
    Engine(#[from] greg_engine::EngineError),
}

/// The configured providers and builders, by name.
pub type Adapters = (
    HashMap<String, Arc<dyn Provider>>,
    HashMap<String, Arc<dyn Builder>>,
);

/// Builds the configured providers and builders: `github` from `providers.github`, and
/// `bitbucket` (Cloud or Server by `flavor`; Greg's entry without `flavor` is Cloud) from
/// `providers.bitbucket`, side by side; `repos[].provider` chooses. No network access: the
/// Bitbucket bot's login is learnt by [`start_engine`].
///
/// Errors: [`StartError::Adapter`] naming the config key (`providers.github`,
/// `providers.bitbucket`, `builders.jenkins`); [`StartError::Unsupported`] for a
/// `merge_mode: staging` repository whose provider can neither make staging refs nor merge a
/// pull request at a given head, for `test_merged` and for a `merge_queue` with a batch or
/// a window above 1 without staging refs (Bitbucket), and for such a `merge_queue` without
/// `merge_mode: staging`.
pub fn adapters(config: &Config) -> Result<Adapters, StartError> {
    Ok(build_adapters(config, None)?.0)
}

/// [`adapters`], and the Bitbucket provider as itself (for [`BitbucketProvider::identify`]);
/// with `upstream`, every adapter counts its requests there (`/metrics`).
fn build_adapters(
    config: &Config,
    upstream: Option<&Arc<UpstreamCounts>>,
) -> Result<(Adapters, Option<Arc<BitbucketProvider>>), StartError> {
    let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
    if let Some(g) = &config.providers.github {
        let provider = GithubProvider::new(GithubConfig {
            name: "github".to_owned(),
            api_url: g.api_url.clone(),
            username: g.username.clone(),
            password: g.password.clone(),
            app: g.app.as_ref().map(|a| greg_github::GithubAppConfig {
                id: a.id,
                private_key: a.private_key.clone(),
                installation_id: a.installation_id,
            }),
            webhook_secret: g.webhook_secret.clone(),
        })
        .map_err(|source| StartError::Adapter {
            key: "providers.github",
            source,
        })?;
        let provider = match upstream {
            Some(u) => provider.count_requests(u.clone()),
            None => provider,
        };
        providers.insert("github".to_owned(), Arc::new(provider));
    }
    let bitbucket = match &config.providers.bitbucket {
        Some(b) => {
            let provider = bitbucket_provider(b)?;
            let provider = Arc::new(match upstream {
                Some(u) => provider.count_requests(u.clone()),
                None => provider,
            });
            providers.insert(BitbucketConfig::DEFAULT_NAME.to_owned(), provider.clone());
            Some(provider)
        }
        None => None,
    };
    for (i, repo) in config.repos.iter().enumerate() {
        let Some(provider) = providers.get(&repo.provider) else {
            continue;
        };
        let caps = provider.capabilities();
        let staging_refs = caps.staging_refs && caps.fast_forward;
        // Without staging refs greg lands through the provider's pull-request merge
        // (docs/design.md); without either there is no safe way to land.
        if repo.merge_mode == greg_config::MergeMode::Staging
            && !staging_refs
            && !caps.merge_pull_request
        {
            return Err(StartError::Unsupported {
                key: format!("repos[{i}].merge_mode"),
                what: format!(
                    "merge_mode staging needs staging refs and fast-forwards, or a pull-request \
                     merge with a head precondition, through the API; {provider} offers \
                     neither; use merge_mode builder"
                ),
            });
        }
        if repo.merge_queue.is_parallel() && repo.merge_mode != greg_config::MergeMode::Staging {
            return Err(StartError::Unsupported {
                key: format!("repos[{i}].merge_queue"),
                what: "batch_size or window above 1 lands through staging commits; set \
                       merge_mode: staging, or remove merge_queue"
                    .to_owned(),
            });
        }
        if repo.merge_queue.is_parallel() && !staging_refs {
            return Err(StartError::Unsupported {
                key: format!("repos[{i}].merge_queue"),
                what: format!(
                    "batch_size or window above 1 builds each candidate on its own \
                     greg/staging/<target>/<n> ref and fast-forwards the target to it, which \
                     {provider} cannot do through its API; use batch_size: 1 and window: 1"
                ),
            });
        }
        if repo.test_merged && !staging_refs {
            return Err(StartError::Unsupported {
                key: format!("repos[{i}].test_merged"),
                what: format!(
                    "test_merged makes the merge of each head with its target on a greg/test/<n> \
                     ref, which {provider} cannot do through its API; remove test_merged"
                ),
            });
        }
    }
    let mut builders: HashMap<String, Arc<dyn Builder>> = HashMap::new();
    if let Some(j) = &config.builders.jenkins {
        let builder = JenkinsBuilder::new(JenkinsConfig {
            name: "jenkins".to_owned(),
            url: j.url.clone(),
            username: j.username.clone(),
            api_token: j.password.clone(),
            request_timeout: Duration::from_secs(30),
        })
        .map_err(|source| StartError::Adapter {
            key: "builders.jenkins",
            source,
        })?;
        let builder = match upstream {
            Some(u) => builder.count_requests(u.clone()),
            None => builder,
        };
        builders.insert("jenkins".to_owned(), Arc::new(builder));
    }
    Ok(((providers, builders), bitbucket))
}

/// The Bitbucket provider of `providers.bitbucket`, named `bitbucket`.
fn bitbucket_provider(b: &BitbucketProviderConfig) -> Result<BitbucketProvider, StartError> {
    BitbucketProvider::new(BitbucketConfig {
        name: BitbucketConfig::DEFAULT_NAME.to_owned(),
        flavor: match b.flavor {
            BitbucketFlavor::Cloud => Flavor::Cloud,
            BitbucketFlavor::Server => Flavor::Server,
        },
        api_url: b.api_url.clone(),
        username: b.username.clone(),
        password: b.password.clone(),
        webhook_secret: b.webhook_secret.clone(),
    })
    .map_err(|source| StartError::Adapter {
        key: "providers.bitbucket",
        source,
    })
}

/// Attempts at learning the Bitbucket bot's login at start, when Bitbucket answers with a
/// retryable error.
const IDENTIFY_ATTEMPTS: u32 = 3;

/// Learns the bot's own login (Cloud: its account id from `GET /2.0/user`; Server: the
/// configured username, no request), so greg recognises its own comments; retried a few
/// times on retryable errors.
async fn identify(provider: &BitbucketProvider) -> Result<(), StartError> {
    let mut attempt = 1;
    loop {
        match provider.identify().await {
            Ok(login) => {
                tracing::info!(provider = %provider, %login, "Bitbucket bot identified");
                return Ok(());
            }
            Err(e) if e.is_retryable() && attempt < IDENTIFY_ATTEMPTS => {
                let delay = e
                    .retry_after()
                    .unwrap_or(Duration::from_secs(u64::from(attempt)))
                    .min(Duration::from_secs(30));
                tracing::warn!(provider = %provider, error = %e, attempt, ?delay, "Cannot identify the Bitbucket bot yet; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(source) => {
                return Err(StartError::Adapter {
                    key: "providers.bitbucket",
                    source,
                });
            }
        }
    }
}

/// Builds the adapters, learns the Bitbucket bot's login (one request on Cloud), connects the
/// store (running migrations) and starts the engine, which resumes whatever the last run left
/// pending.
///
/// Errors: as [`adapters`]; [`StartError::Adapter`] for `providers.bitbucket` when Bitbucket
/// Cloud refuses the credentials or stays unreachable.
pub async fn start_engine(
    config: Config,
    clock: Arc<dyn Clock>,
    options: EngineOptions,
) -> Result<Engine, StartError> {
    let upstream = Arc::new(UpstreamCounts::default());
    let ((providers, builders), bitbucket) = build_adapters(&config, Some(&upstream))?;
    if let Some((key, what)) = config.repository_on_two_providers() {
        return Err(StartError::Unsupported { key, what });
    }
    if let Some(b) = &bitbucket {
        identify(b).await?;
    }
    let store = greg_store::Store::connect(&config.server.database).await?;
    // SQLite serves one process; replicas run on PostgreSQL (SPEC §11).
    store.serve_exclusively()?;
    let files = match &config.reports.store {
        Some(s) => Some((
            greg_notify::open(&report_store_settings(s)).map_err(|e| StartError::Unsupported {
                key: "reports.store".to_owned(),
                what: e.to_string(),
            })?,
            Duration::from_secs(s.retention_days.saturating_mul(24 * 3600)),
        )),
        None => None,
    };
    let engine =
        Engine::start(Arc::new(config), store, providers, builders, clock, options).await?;
    engine.count_upstream(upstream);
    if let Some((files, retention)) = files {
        tracing::info!(store = %files, "Report files are kept in the object store");
        engine.keep_report_files(files, retention);
    }
    if engine.config().repos.iter().any(|r| !r.notify.is_empty()) {
        let poster = greg_notify::chat::Poster::new().map_err(|e| StartError::Unsupported {
            key: "repos[].notify".to_owned(),
            what: e.to_string(),
        })?;
        engine.send_notifications(poster);
    }
    Ok(engine)
}

/// greg-notify's settings for `reports.store` (the same fields as `greg notify`'s store).
fn report_store_settings(s: &greg_config::ReportStoreConfig) -> greg_notify::StoreSettings {
    use greg_config::ReportStoreApi as Api;
    greg_notify::StoreSettings {
        api: match s.api {
            Api::S3 => greg_notify::StoreApi::S3,
            Api::Gcs => greg_notify::StoreApi::Gcs,
            Api::Azure => greg_notify::StoreApi::Azure,
            Api::File => greg_notify::StoreApi::File,
        },
        endpoint: s.endpoint.clone(),
        identity: s.identity.clone(),
        secret: s.secret.clone(),
        bucket: s.bucket.clone(),
        region: s.region.clone(),
        prefix: s.prefix.clone(),
        public_url: s.public_url.clone(),
    }
}
