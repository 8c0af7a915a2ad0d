//! The store against real servers: moto (S3, `GREG_TEST_S3_URL`), Azurite (Azure,
//! `GREG_TEST_AZURITE_URL`), and a local folder. GCS is not tested: the fake-gcs-server that
//! installs here refuses object_store's XML-API uploads (docs/reporting.md).
//! Each uploads a directory tree with nested files, lists it back, checks Content-Types and
//! expiry metadata, fetches a link over HTTP and gets the bytes back, and prunes what is past
//! expiry while keeping the rest. A server test prints "skipped: …" and passes when its
//! variable is unset (`.ci/run` starts the servers and sets them).

use bytes::Bytes;
use chrono::Utc;
use greg_notify::upload::{self, Upload};
use greg_notify::{Key, NotifySettings, PruneRule, Store, StoreSettings, Values};
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, GetOptions};
use std::path::Path;
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A tree of detail files: nested folders, several types, and a name that needs escaping.
fn detail_tree(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("out/reports/unit"))?;
    std::fs::write(root.join("out/build.log"), "compiling…\nok\n")?;
    std::fs::write(root.join("out/reports/index.html"), "<h1>report</h1>")?;
    std::fs::write(
        root.join("out/reports/unit/results.json"),
        "{\"passed\":12}",
    )?;
    std::fs::write(root.join("out/reports/unit/a b.txt"), "spaces")?;
    std::fs::write(root.join("summary.xml"), "<testsuite/>")?;
    Ok(())
}

/// A unique prefix per test run, so runs against one server never see each other.
fn unique_prefix(name: &str) -> String {
    format!(
        "greg-test/{name}-{}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

fn notify_settings(
    store: &StoreSettings,
    dir: &Path,
) -> Result<NotifySettings, Box<dyn std::error::Error>> {
    let mut v = Values::new();
    v.set(Key::Token, "t");
    v.set(Key::Owner, "acme");
    v.set(Key::Repo, "widgets");
    v.set(Key::Commit, SHA);
    v.set(Key::StoreApi, "file");
    v.set(Key::StoreEndpoint, "/unused");
    v.set(Key::RetentionDays, "2");
    let mut s = NotifySettings::resolve(&v)?;
    s.store = store.clone();
    s.full_detail_dir = Some(dir.join("out"));
    s.full_detail_files = vec![dir.join("summary.xml")];
    Ok(s)
}

fn http() -> Result<reqwest::Client, reqwest::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build()
}

/// The conformance run every backend passes. `metadata`: whether the backend keeps
/// Content-Type and the expiry (a folder does not). `refused_link`: the one file whose link
/// the server refuses (Azure: a presigned link to a name with a space, docs/reporting.md).
async fn conformance(
    settings: StoreSettings,
    metadata: bool,
    refused_link: Option<&str>,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    detail_tree(dir.path())?;
    let store = greg_notify::open(&settings)?;
    let ns = notify_settings(&settings, dir.path())?;
    let uploads = upload::collect(ns.full_detail_dir.as_deref(), &ns.full_detail_files)?;
    let now = Utc::now();
    let published = greg_notify::publish(&ns, &store, &uploads, now, &|_| {}).await?;
    let expires = now + chrono::Duration::days(2);
    assert_eq!(published.expires, expires);
    assert!(published.index.is_none(), "5 files need no index");

    // Listed back, under <prefix>/<owner>/<repo>/<commit>/.
    let base = format!("acme/widgets/{SHA}");
    let listed = store.list(&base).await?;
    let want: Vec<String> = [
        "build.log",
        "reports/index.html",
        "reports/unit/a b.txt",
        "reports/unit/results.json",
        "summary.xml",
    ]
    .iter()
    .map(|n| format!("{base}/{n}"))
    .collect();
    assert_eq!(listed, want);

    // Content types and expiry, read back with a HEAD.
    if metadata {
        let expected_types = [
            ("build.log", "text/plain; charset=utf-8"),
            ("reports/index.html", "text/html; charset=utf-8"),
            ("reports/unit/results.json", "application/json"),
            ("summary.xml", "text/xml; charset=utf-8"),
        ];
        for (name, ct) in expected_types {
            let path = ObjectPath::parse(format!("{}/{base}/{name}", settings.prefix))?;
            let head = store
                .object_store()
                .get_opts(
                    &path,
                    GetOptions {
                        head: true,
                        ..GetOptions::default()
                    },
                )
                .await?;
            assert_eq!(
                head.attributes
                    .get(&Attribute::ContentType)
                    .map(|v| v.as_ref()),
                Some(ct),
                "{name}"
            );
            assert_eq!(
                head.attributes
                    .get(&Attribute::Metadata(store.expires_key().into()))
                    .map(|v| v.as_ref().to_owned()),
                Some(expires.timestamp().to_string()),
                "{name}"
            );
        }
        assert_eq!(
            store.expiry(&format!("{base}/build.log")).await?,
            Some(expires.timestamp())
        );
    }

    // Every link gives the bytes back.
    for (name, link) in &published.links {
        let want = std::fs::read(
            uploads
                .iter()
                .find(|u: &&Upload| &u.name == name)
                .map(|u| u.source.clone())
                .ok_or("upload not found")?,
        )?;
        let got = if let Some(path) = link.url.strip_prefix("file://") {
            std::fs::read(url_path(path))?
        } else {
            let resp = http()?.get(&link.url).send().await?;
            if refused_link == Some(name.as_str()) {
                assert_eq!(
                    resp.status(),
                    403,
                    "{name}: fixed upstream? then drop refused_link"
                );
                continue;
            }
            assert!(
                resp.status().is_success(),
                "{name}: {} from {}",
                resp.status(),
                link.url
            );
            resp.bytes().await?.to_vec()
        };
        assert_eq!(got, want, "{name} via {}", link.url);
    }

    // Prune: an object past its expiry goes, the fresh ones stay.
    store
        .put(
            "old/expired.txt",
            Bytes::from_static(b"old"),
            "text/plain",
            now.timestamp() - 60,
        )
        .await?;
    if !metadata {
        // A folder keeps no expiry: an old modification time stands for it.
        let file = settings_root(&settings).join("old/expired.txt");
        std::fs::File::options()
            .write(true)
            .open(&file)?
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(3 * 86_400))?;
    }
    let report = store
        .prune(
            PruneRule::Expired {
                retention: Duration::from_secs(2 * 86_400),
            },
            Utc::now(),
        )
        .await?;
    assert_eq!((report.examined, report.deleted, report.kept), (6, 1, 5));
    assert_eq!(store.list(&base).await?.len(), 5);
    assert!(store.list("old").await?.is_empty());

    // --older-than: everything is younger than an hour, then older than nothing.
    let report = store
        .prune(PruneRule::OlderThan(Duration::from_secs(3600)), Utc::now())
        .await?;
    assert_eq!(report.deleted, 0);
    let report = store
        .prune(
            PruneRule::OlderThan(Duration::ZERO),
            Utc::now() + chrono::Duration::seconds(5),
        )
        .await?;
    assert_eq!((report.deleted, report.kept), (5, 0));
    Ok(())
}

/// The path of a `file://` URL's path part (percent-decoded).
fn url_path(p: &str) -> std::path::PathBuf {
    let url = url::Url::parse(&format!("file://{p}")).ok();
    url.and_then(|u| u.to_file_path().ok())
        .unwrap_or_else(|| p.into())
}

fn settings_root(s: &StoreSettings) -> std::path::PathBuf {
    Path::new(s.endpoint.as_deref().unwrap_or_default()).join(&s.prefix)
}

#[tokio::test]
async fn file_store_conformance() -> TestResult {
    let root = tempfile::tempdir()?;
    conformance(
        StoreSettings {
            api: greg_notify::StoreApi::File,
            endpoint: Some(root.path().canonicalize()?.display().to_string()),
            identity: None,
            secret: None,
            bucket: String::new(),
            region: None,
            prefix: "notify".to_owned(),
            public_url: None,
        },
        false,
        None,
    )
    .await
}

#[tokio::test]
async fn s3_conformance_on_moto() -> TestResult {
    let Ok(url) = std::env::var("GREG_TEST_S3_URL") else {
        println!("skipped: GREG_TEST_S3_URL not set");
        return Ok(());
    };
    let bucket = "greg-notify";
    // moto creates buckets without checking credentials; 409 = it exists already.
    let resp = http()?.put(format!("{url}/{bucket}")).send().await?;
    assert!(
        resp.status().is_success() || resp.status() == 409,
        "{}",
        resp.status()
    );
    conformance(
        StoreSettings {
            api: greg_notify::StoreApi::S3,
            endpoint: Some(url),
            identity: Some("testing".to_owned()),
            secret: Some(greg_core::Secret::new("testing")),
            bucket: bucket.to_owned(),
            region: Some("us-east-1".to_owned()),
            prefix: unique_prefix("s3"),
            public_url: None,
        },
        true,
        None,
    )
    .await
}

/// Azurite's well-known development account.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates a container on Azurite (Shared Key authorization; object_store makes none).
async fn azurite_container(blob_url: &str, container: &str) -> TestResult {
    use base64::Engine as _;
    use hmac::{Hmac, Mac as _};
    let date = Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD.decode(AZURITE_KEY)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key)?;
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let resp = http()?
        .put(format!("{blob_url}/{container}?restype=container"))
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header("content-length", "0")
        .header(
            "authorization",
            format!("SharedKey {AZURITE_ACCOUNT}:{sig}"),
        )
        .send()
        .await?;
    let status = resp.status();
    let body = resp.text().await?;
    assert!(status.is_success() || status == 409, "{status}: {body}");
    Ok(())
}

#[tokio::test]
async fn azure_conformance_on_azurite() -> TestResult {
    let Ok(url) = std::env::var("GREG_TEST_AZURITE_URL") else {
        println!("skipped: GREG_TEST_AZURITE_URL not set");
        return Ok(());
    };
    let blob_url = format!("{}/{AZURITE_ACCOUNT}", url.trim_end_matches('/'));
    azurite_container(&blob_url, "greg-notify").await?;
    conformance(
        StoreSettings {
            api: greg_notify::StoreApi::Azure,
            endpoint: Some(blob_url),
            identity: Some(AZURITE_ACCOUNT.to_owned()),
            secret: Some(greg_core::Secret::new(AZURITE_KEY)),
            bucket: "greg-notify".to_owned(),
            region: None,
            prefix: unique_prefix("azure"),
            public_url: None,
        },
        true,
        // object_store signs the percent-encoded path; Azurite checks the decoded one.
        Some("reports/unit/a b.txt"),
    )
    .await
}

#[tokio::test]
async fn many_files_get_an_index_page() -> TestResult {
    let root = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("out"))?;
    for i in 0..25 {
        std::fs::write(
            dir.path().join(format!("out/<part {i}>.txt")),
            format!("{i}"),
        )?;
    }
    std::fs::write(dir.path().join("summary.xml"), "<x/>")?;
    let settings = StoreSettings {
        api: greg_notify::StoreApi::File,
        endpoint: Some(root.path().display().to_string()),
        identity: None,
        secret: None,
        bucket: String::new(),
        region: None,
        prefix: String::new(),
        public_url: Some("https://logs.example.com/ci".to_owned()),
    };
    let store: Store = greg_notify::open(&settings)?;
    let ns = notify_settings(&settings, dir.path())?;
    let uploads = upload::collect(ns.full_detail_dir.as_deref(), &ns.full_detail_files)?;
    let published = greg_notify::publish(&ns, &store, &uploads, Utc::now(), &|_| {}).await?;
    let index = published.index.ok_or("no index")?;
    assert_eq!(
        index.url,
        format!("https://logs.example.com/ci/acme/widgets/{SHA}/index.html")
    );
    let page = std::fs::read_to_string(root.path().join(format!("acme/widgets/{SHA}/index.html")))?;
    assert_eq!(page.matches("<li>").count(), 26);
    assert!(page.contains("&lt;part 7&gt;.txt"));
    assert!(page.contains(&format!(
        "href=\"https://logs.example.com/ci/acme/widgets/{SHA}/%3Cpart%207%3E.txt\""
    )));
    Ok(())
}
