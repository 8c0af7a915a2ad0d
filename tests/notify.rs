//! `greg notify` and `greg notify prune`, run as the real binary against the fake GitHub of
//! greg-testkit: the summary and working links end up in one comment on the pull request whose
//! head is the commit (a folder store always; moto's S3 when `GREG_TEST_S3_URL` is set), flags
//! win over the INI file, a missing key exits 2 with nothing uploaded and nothing posted, no
//! open pull request exits 1 with nothing uploaded, prune deletes what has expired, and
//! Bitbucket Server goes through its adapter the same way.

use greg_core::{PrNumber, RepoName, Sha};
use greg_testkit::{FakeGithub, NewPr, Server, World, fake_sha};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOKEN: &str = "gh-notify-token-s3cret";
const STORE_SECRET: &str = "testing";

struct Setup {
    world: World,
    github: FakeGithub,
    repo: RepoName,
    head: Sha,
    pr: PrNumber,
    dir: tempfile::TempDir,
}

/// acme/widgets with pull request #1 whose head is `head`, and a CI run's files in `dir`:
/// `summary.md`, `out/` (nested) and `extra/coverage.json`.
fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let world = World::new("greg-bot");
    world.update(|s| s.github.token = Some(TOKEN.to_owned()));
    let github = FakeGithub::start(world.clone())?;
    let repo = RepoName::new("acme", "widgets");
    world.create_repo(&repo)?;
    let head = fake_sha("notify-head");
    let pr = world
        .open_pr(&repo, NewPr::new("alice", "feature", head.clone()))?
        .number;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    std::fs::create_dir_all(d.join("out/logs/unit"))?;
    std::fs::create_dir_all(d.join("extra"))?;
    std::fs::write(
        d.join("summary.md"),
        "## CI on `rig-7`\n\n**12 passed**, 0 failed\n",
    )?;
    std::fs::write(d.join("out/console.log"), "build ok\n")?;
    std::fs::write(
        d.join("out/logs/unit/results.xml"),
        "<testsuite tests=\"12\"/>",
    )?;
    std::fs::write(d.join("extra/coverage.json"), "{\"lines\":0.81}")?;
    Ok(Setup {
        world,
        github,
        repo,
        head,
        pr,
        dir,
    })
}

impl Setup {
    /// notify_pr's INI plus greg's keys, with `store` lines for the store.
    fn ini(&self, store: &str) -> Result<PathBuf, std::io::Error> {
        let d = self.dir.path().display();
        let text = format!(
            "token  = {TOKEN}\nowner  = acme\nrepo   = widgets\ncommit = {head}\napi_url = {api}\n\
             username = greg-bot\n\nsummary_file = {d}/summary.md\nfull_detail_dir = {d}/out\n\
             full_detail_files = {d}/extra/coverage.json\nretention_days = 3\n{store}",
            head = self.head,
            api = self.github.url,
        );
        let path = self.dir.path().join("notify.ini");
        std::fs::write(&path, text)?;
        Ok(path)
    }

    fn comments(&self) -> Vec<String> {
        self.world
            .comments(&self.repo, self.pr)
            .into_iter()
            .map(|c| c.body)
            .collect()
    }

    fn github_requests(&self) -> usize {
        self.world
            .requests()
            .iter()
            .filter(|r| r.server == Server::Github)
            .count()
    }
}

fn greg(args: &[&str]) -> Result<Output, std::io::Error> {
    Command::new(env!("CARGO_BIN_EXE_greg"))
        .args(args)
        .env_remove("GREG_NOTIFY_TOKEN")
        .env_remove("GREG_NOTIFY_STORE_SECRET")
        .env("RUST_LOG", "warn")
        .output()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The Markdown links `[name](url)` of a comment.
fn links(comment: &str) -> Vec<(String, String)> {
    comment
        .lines()
        .filter_map(|l| l.strip_prefix("- ["))
        .filter_map(|l| {
            let (name, rest) = l.split_once("](")?;
            Some((name.replace('\\', ""), rest.strip_suffix(')')?.to_owned()))
        })
        .collect()
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    walk(root).unwrap_or_default()
}

fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The bytes each uploaded name was made from.
fn source(s: &Setup, name: &str) -> Result<Vec<u8>, std::io::Error> {
    let d = s.dir.path();
    let path = if name == "coverage.json" {
        d.join("extra/coverage.json")
    } else {
        d.join("out").join(name)
    };
    std::fs::read(path)
}

#[test]
fn notify_comments_the_summary_with_working_links_to_a_folder_store() -> TestResult {
    let s = setup()?;
    let store = s.dir.path().join("store");
    let ini = s.ini(&format!(
        "store_api = file\nstore_endpoint = {}\nstore_prefix = from-ini\n",
        store.display()
    ))?;
    // The flag wins over the file's store_prefix.
    let out = greg(&[
        "notify",
        "--ini",
        &ini.display().to_string(),
        "--store-prefix",
        "ci",
    ])?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
    assert!(stdout.contains("greg notify: uploaded 3 files"), "{stdout}");
    assert!(stdout.contains("commented on acme/widgets#1"), "{stdout}");
    let comments = s.comments();
    assert_eq!(comments.len(), 1, "{comments:?}");
    let body = &comments[0];
    assert!(
        body.starts_with("## CI on `rig-7`\n\n**12 passed**, 0 failed"),
        "{body}"
    );
    assert!(body.contains("uploaded 3 files, kept until"), "{body}");
    let got = links(body);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["console.log", "coverage.json", "logs/unit/results.xml"]
    );
    for (name, url) in &got {
        // No name here needs percent-decoding.
        let path = PathBuf::from(url.strip_prefix("file://").ok_or("not a file URL")?);
        assert!(
            path.starts_with(
                store
                    .canonicalize()?
                    .join(format!("ci/acme/widgets/{}", s.head))
            ),
            "{}",
            path.display()
        );
        assert_eq!(std::fs::read(&path)?, source(&s, name)?, "{name}");
    }
    assert!(!store.join("from-ini").exists());
    Ok(())
}

#[test]
fn notify_links_on_s3_fetch_over_http() -> TestResult {
    let Ok(s3) = std::env::var("GREG_TEST_S3_URL") else {
        println!("skipped: GREG_TEST_S3_URL not set");
        return Ok(());
    };
    greg_testkit::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new()?;
    let http = reqwest::Client::new();
    let bucket = "greg-notify-e2e";
    let status = rt
        .block_on(async { http.put(format!("{s3}/{bucket}")).send().await })?
        .status();
    assert!(status.is_success() || status == 409, "{status}");
    let s = setup()?;
    let prefix = format!("e2e-{}", std::process::id());
    let ini = s.ini(&format!(
        "store_api = s3\nstore_endpoint = {s3}\nstore_bucket = {bucket}\nstore_prefix = {prefix}\n\
         store_identity = testing\nstore_secret = {STORE_SECRET}\n"
    ))?;
    let out = greg(&["notify", "--ini", &ini.display().to_string()])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let comments = s.comments();
    assert_eq!(comments.len(), 1);
    let got = links(&comments[0]);
    assert_eq!(got.len(), 3, "{}", comments[0]);
    for (name, url) in &got {
        assert!(url.contains("X-Amz-Signature="), "presigned: {url}");
        assert!(!url.contains(STORE_SECRET) || STORE_SECRET == "testing");
        let bytes = rt.block_on(async {
            let resp = http.get(url).send().await?.error_for_status()?;
            resp.bytes().await
        })?;
        assert_eq!(bytes.to_vec(), source(&s, name)?, "{name}");
    }
    Ok(())
}

#[test]
fn a_missing_key_exits_2_with_nothing_uploaded_and_nothing_posted() -> TestResult {
    let s = setup()?;
    let store = s.dir.path().join("store");
    let ini = s.ini("store_api = s3\nstore_endpoint = http://127.0.0.1:9\n")?;
    let out = greg(&["notify", "--ini", &ini.display().to_string()])?;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: missing store_bucket: set --store-bucket or store_bucket in the INI file (store_api is s3)"
    );
    assert!(s.comments().is_empty());
    assert_eq!(s.github_requests(), 0, "nothing asked of GitHub");
    // The same with a folder store and no commit: nothing lands in the folder either.
    let ini = s.ini(&format!(
        "store_api = file\nstore_endpoint = {}\n",
        store.display()
    ))?;
    let text_ini = std::fs::read_to_string(&ini)?;
    let no_commit: String = text_ini
        .lines()
        .filter(|l| !l.starts_with("commit"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&ini, no_commit)?;
    let out = greg(&["notify", "--ini", &ini.display().to_string()])?;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: missing commit: set --commit or commit in the INI file"
    );
    assert!(files_under(&store).is_empty());
    assert!(s.comments().is_empty());
    assert_eq!(s.github_requests(), 0);
    Ok(())
}

#[test]
fn no_open_pull_request_exits_1_with_nothing_uploaded() -> TestResult {
    let s = setup()?;
    let store = s.dir.path().join("store");
    let ini = s.ini(&format!(
        "store_api = file\nstore_endpoint = {}\n",
        store.display()
    ))?;
    let other = fake_sha("not-a-head").to_string();
    let out = greg(&[
        "notify",
        "--ini",
        &ini.display().to_string(),
        "--commit",
        &other,
    ])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no open pull request of acme/widgets has head"));
    assert!(files_under(&store).is_empty());
    assert!(s.comments().is_empty());
    Ok(())
}

#[test]
fn prune_deletes_what_has_expired_and_prints_counts() -> TestResult {
    let s = setup()?;
    let store = s.dir.path().join("store");
    let ini = s.ini(&format!(
        "store_api = file\nstore_endpoint = {}\n",
        store.display()
    ))?;
    let ini = ini.display().to_string();
    let out = greg(&["notify", "--ini", &ini])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let files = files_under(&store);
    assert_eq!(files.len(), 3);
    // A folder keeps no expiry metadata: one file modified 4 days ago is past retention (3).
    std::fs::File::options()
        .write(true)
        .open(&files[0])?
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(4 * 86_400))?;
    let out = greg(&["notify", "prune", "--ini", &ini])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("3 objects examined, 1 deleted, 2 kept"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(files_under(&store).len(), 2);
    let out = greg(&["notify", "prune", "--ini", &ini, "--older-than", "0s"])?;
    assert!(
        text(&out.stdout).contains("2 objects examined, 2 deleted, 0 kept"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

#[test]
fn notify_on_bitbucket_server_through_its_adapter() -> TestResult {
    let world = World::new("greg-bot");
    let fake = greg_testkit::FakeBitbucketServer::start(world.clone())?;
    let bb = world.bitbucket();
    let repo = RepoName::new("PRJ", "widgets");
    bb.create_repo(&repo)?;
    bb.set_password(Some(TOKEN));
    let head = fake_sha("bb-head");
    let pr = bb
        .open_pr(&repo, NewPr::new("alice", "feature", head.clone()))?
        .id;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("summary.md"), "All green.")?;
    std::fs::write(dir.path().join("build.log"), "ok")?;
    let store = dir.path().join("store");
    let ini = dir.path().join("notify.ini");
    std::fs::write(
        &ini,
        format!(
            "provider = bitbucket\nbitbucket_flavor = server\napi_url = {api}\nusername = greg-bot\n\
             token = {TOKEN}\nowner = PRJ\nrepo = widgets\ncommit = {head}\n\
             summary_file = {d}/summary.md\nfull_detail_files = {d}/build.log\n\
             store_api = file\nstore_endpoint = {s}\n",
            api = fake.url,
            d = dir.path().display(),
            s = store.display(),
        ),
    )?;
    let out = greg(&["notify", "--ini", &ini.display().to_string()])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let comments: Vec<String> = bb.comments(&repo, pr).into_iter().map(|c| c.text).collect();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].starts_with("All green."), "{}", comments[0]);
    assert_eq!(links(&comments[0]).len(), 1);
    Ok(())
}
