//! INI parsing, flags over the file, and the message of every missing or bad key.

use super::*;

const FULL_INI: &str = "\
token  = ghp_secret_value
owner  = apache
repo   = cloudstack
commit = C8443496d3fad78a4b1a48a0992ce545bde299e8

summary_file = summary.md
full_detail_dir = out
full_detail_files = a.log, b/c.txt,
store_api = s3
store_endpoint = http://127.0.0.1:9000
store_identity = AKIDEXAMPLE
store_secret = s3-secret-value
store_bucket = ci-logs
store_prefix = /notify/
retention_days = 3
";

fn ini(text: &str) -> Values {
    match Values::from_ini_str(text, Path::new("notify.ini")) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn message(values: &Values) -> String {
    match NotifySettings::resolve(values) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn notify_pr_ini_is_read() {
    let s = match NotifySettings::resolve(&ini(FULL_INI)) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(s.provider, ProviderKind::Github);
    assert_eq!(s.owner, "apache");
    assert_eq!(s.commit, "c8443496d3fad78a4b1a48a0992ce545bde299e8");
    assert_eq!(s.token.expose(), "ghp_secret_value");
    assert_eq!(
        s.full_detail_files,
        [PathBuf::from("a.log"), PathBuf::from("b/c.txt")]
    );
    assert_eq!(s.store.api, StoreApi::S3);
    assert_eq!(s.store.bucket, "ci-logs");
    assert_eq!(s.store.prefix, "notify");
    assert_eq!(s.retention_days, 3);
    let debug = format!("{s:?} {:?}", ini(FULL_INI));
    assert!(!debug.contains("ghp_secret_value") && !debug.contains("s3-secret-value"));
}

#[test]
fn flags_win_over_the_file() {
    let mut flags = Values::new();
    flags.set(Key::StoreBucket, "from-flag");
    flags.set(Key::Commit, "abcdef12abcdef12abcdef12abcdef12abcdef12");
    flags.set(Key::RetentionDays, "");
    let values = ini(FULL_INI).overlay(&flags);
    let s = match NotifySettings::resolve(&values) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(s.store.bucket, "from-flag");
    assert_eq!(s.commit, "abcdef12abcdef12abcdef12abcdef12abcdef12");
    // An empty flag is "not given": the file's value stays.
    assert_eq!(s.retention_days, 3);
}

#[test]
fn a_notify_section_is_read_and_unknown_keys_are_refused() {
    let v = ini("[notify]\nowner = acme\n");
    assert_eq!(v.get(Key::Owner), Some("acme"));
    let e = Values::from_ini_str("ownr = acme\n", Path::new("n.ini"));
    assert_eq!(
        e.map(|_| ()).map_err(|e| e.to_string()),
        Err("the INI file n.ini has an unknown key ownr".to_owned())
    );
}

#[test]
fn every_missing_key_is_named_with_its_flag() {
    let base = ini(FULL_INI);
    let mut out = String::new();
    for key in Key::ALL {
        let mut map = base.0.clone();
        map.remove(&key);
        out.push_str(&format!("{key}: {}\n", message(&Values(map))));
    }
    insta::assert_snapshot!(out, @r"
    provider: ok
    bitbucket_flavor: ok
    api_url: ok
    username: ok
    token: missing token: set --token or token in the INI file
    owner: missing owner: set --owner or owner in the INI file
    repo: missing repo: set --repo or repo in the INI file
    commit: missing commit: set --commit or commit in the INI file
    summary_file: ok
    full_detail_dir: ok
    full_detail_files: ok
    store_api: missing store_api: set --store-api or store_api in the INI file
    store_endpoint: ok
    store_identity: missing store_identity: set --store-identity or store_identity in the INI file (s3 takes an access key id and its secret together)
    store_secret: missing store_secret: set --store-secret or store_secret in the INI file (s3 takes an access key id and its secret together)
    store_bucket: missing store_bucket: set --store-bucket or store_bucket in the INI file (store_api is s3)
    store_region: ok
    store_prefix: ok
    store_public_url: ok
    retention_days: ok
    ");
}

#[test]
fn keys_required_by_other_keys() {
    let with = |extra: &[(Key, &str)]| {
        let mut v = ini(FULL_INI);
        for (k, val) in extra {
            v.set(*k, *val);
        }
        message(&v)
    };
    insta::assert_snapshot!([
        with(&[(Key::Provider, "bitbucket")]),
        with(&[(Key::Provider, "bitbucket"), (Key::BitbucketFlavor, "server")]),
        with(&[(Key::Provider, "bitbucket"), (Key::BitbucketFlavor, "server"), (Key::Username, "bot")]),
        with(&[(Key::Provider, "bitbucket"), (Key::BitbucketFlavor, "server"), (Key::Username, "bot"), (Key::ApiUrl, "https://bb.example.com")]),
        with(&[(Key::Provider, "gitlab")]),
        with(&[(Key::StoreApi, "file"), (Key::StoreEndpoint, "")]),
        message(&{ let mut v = ini(FULL_INI); v.0.remove(&Key::StoreEndpoint); v.set(Key::StoreApi, "file"); v }),
        message(&{ let mut v = ini(FULL_INI); v.set(Key::StoreApi, "azure"); v.0.remove(&Key::StoreIdentity); v }),
        with(&[(Key::StoreApi, "ftp")]),
        with(&[(Key::Commit, "not-a-sha")]),
        with(&[(Key::RetentionDays, "0")]),
        with(&[(Key::StoreEndpoint, "minio:9000")]),
        with(&[(Key::Owner, "a/b")]),
    ].join("\n"), @r#"
    missing bitbucket_flavor: set --bitbucket-flavor or bitbucket_flavor in the INI file (provider is bitbucket)
    missing username: set --username or username in the INI file (provider is bitbucket)
    missing api_url: set --api-url or api_url in the INI file (bitbucket_flavor is server)
    ok
    provider: "gitlab" is not github or bitbucket
    ok
    missing store_endpoint: set --store-endpoint or store_endpoint in the INI file (store_api is file)
    missing store_identity: set --store-identity or store_identity in the INI file (store_api is azure: the account name)
    store_api: "ftp" is not s3, gcs, azure or file
    commit: "not-a-sha" is not a full commit id (40 or 64 hexadecimal digits)
    retention_days: "0" is not a number of days from 1 to 3650
    store_endpoint: "minio:9000" is not an http(s) URL
    owner: "a/b" is not one path segment
    "#);
}

#[test]
fn prune_needs_only_the_store() {
    let v = ini("store_api = file\nstore_endpoint = /tmp/x\n");
    let p = PruneSettings::resolve(&v).map(|p| p.retention_days);
    assert_eq!(p.map_err(|e| e.to_string()), Ok(DEFAULT_RETENTION_DAYS));
}
