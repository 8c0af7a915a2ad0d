//! Browser tests (issue 13 item 8): greg's pages in a real headless Chromium, driven by
//! Playwright (`tests/browser/pages.mjs`, playwright-core from npm, Debian's `chromium`), with
//! the data of an e2e world (greg-testkit's fake GitHub and Jenkins, greg in-process): the
//! index, queue, pull-request and project pages render; a person signs in through the fake
//! GitHub's OAuth pages, an admin edits the required reviewers and the next "@greg ok" needs
//! them; a non-admin gets no form and a forged POST is refused, as is a POST without the
//! CSRF token. Screenshots of each page go to `GREG_SCREENSHOTS` (the README's come from
//! `GREG_SCREENSHOTS=docs/screenshots cargo test --test browser`), else to the target folder.
//!
//! The tests run when `GREG_TEST_CHROMIUM` names the browser (.ci/run sets it after
//! installing Chromium and `npm ci` in tests/browser) or `/usr/bin/chromium` exists, and
//! playwright-core is installed in tests/browser/node_modules; otherwise they print
//! `skipped` and pass.

use anyhow::{Context as _, bail};
use greg_core::{BuildOutcome, Permission, PrNumber};
use greg_testkit::tester::{JENKINS_TOKEN, MERGE_JOB, TEST_JOB};
use greg_testkit::{GregTester, TesterOptions};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The browser binary, when the tests can run.
fn chromium() -> Option<String> {
    let driver = PathBuf::from(ROOT).join("tests/browser/node_modules/playwright-core");
    if !driver.is_dir() {
        return None;
    }
    match std::env::var("GREG_TEST_CHROMIUM") {
        Ok(bin) if !bin.is_empty() => Some(bin),
        _ => std::path::Path::new("/usr/bin/chromium")
            .exists()
            .then(|| "/usr/bin/chromium".to_owned()),
    }
}

fn screenshots() -> PathBuf {
    match std::env::var("GREG_SCREENSHOTS") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(ROOT).join(dir),
        _ => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
    }
}

/// Runs `steps` in Chromium against greg at `url`; one result per step (see pages.mjs).
async fn browse(browser: &str, url: &str, steps: &Value) -> anyhow::Result<Vec<Value>> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("steps.json");
    std::fs::write(&file, serde_json::to_vec(steps)?)?;
    let run = tokio::process::Command::new("node")
        .arg(PathBuf::from(ROOT).join("tests/browser/pages.mjs"))
        .arg(&file)
        .env("GREG_URL", url)
        .env("GREG_CHROMIUM", browser)
        .env("GREG_SCREENSHOTS", screenshots())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .context("the browser did not finish within 180 s")??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer: Value = serde_json::from_str(stdout.trim()).with_context(|| {
        format!(
            "pages.mjs printed no result: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    if let Some(e) = answer["error"].as_str() {
        bail!("the browser failed: {e}\nafter: {results:#?}");
    }
    Ok(results)
}

fn text(r: &Value) -> &str {
    r["text"].as_str().unwrap_or("")
}

fn status(r: &Value) -> u64 {
    r["status"].as_u64().unwrap_or(0)
}

/// A PNG of some size was written for `r`.
fn assert_png(r: &Value) {
    let path = r["path"].as_str().unwrap_or("");
    let bytes = std::fs::read(path).unwrap_or_default();
    assert!(
        bytes.len() > 2000 && bytes.starts_with(b"\x89PNG"),
        "{path}: not a screenshot"
    );
}

/// The world of the screenshots: #1 landed, #2 is being merged, #3 waits behind it, #4 left
/// the queue when its head moved, and #2's head carries a CI report with a failed test.
async fn world(t: &GregTester) -> anyhow::Result<[PrNumber; 4]> {
    t.set_permission("alice", Permission::Admin)?;
    t.set_permission("bob", Permission::Write)?;
    let mut prs = Vec::new();
    for (author, branch) in [
        ("carol", "fix-parser"),
        ("dave", "faster-builds"),
        ("carol", "docs-typo"),
        ("erin", "new-api"),
    ] {
        let (pr, _) = t.open_pr(author, branch).await?;
        t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
        t.approve(pr, "bob").await?;
        prs.push(pr);
    }
    let [one, two, three, four] = [prs[0], prs[1], prs[2], prs[3]];
    t.post_comment(one, "alice", "@greg please").await?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    t.post_comment(two, "alice", "@greg please").await?;
    t.post_comment(three, "alice", "@greg please p=1").await?;
    t.post_comment(four, "alice", "@greg please").await?;
    t.push_to_pr(four, "second").await?;
    let head = t.world.read(|s| {
        s.github
            .repos
            .values()
            .find_map(|r| r.pulls.get(&two.0).map(|p| p.head_sha.clone()))
    });
    let junit = std::fs::read_to_string(format!(
        "{ROOT}/crates/greg-report/tests/data/junit/gradle-spring-failure.xml"
    ))
    .context("the Gradle JUnit report")?;
    for (job, status) in [("unit", "failure"), ("lint", "success")] {
        let mut body = json!({"repo": "acme/demo", "sha": head, "pr": two.0, "job": job,
            "status": status});
        if status == "failure" {
            body["junit"] = json!([{"name": "build/test-results/TEST-unit.xml", "xml": junit}]);
        }
        let resp = t
            .client()
            .post(format!(
                "{}/api/reports?builder=jenkins&token={JENKINS_TOKEN}",
                t.url
            ))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(resp.status().as_u16() == 202, "report: {}", resp.status());
    }
    t.settle().await?;
    t.engine.wait_idle().await;
    Ok([one, two, three, four])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_render_and_an_admin_edits_the_reviewers_in_a_browser() -> anyhow::Result<()> {
    let Some(browser) = chromium() else {
        println!("skipped: no Chromium or no playwright-core (see .ci/run)");
        return Ok(());
    };
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: "    merge_mode: staging\n".to_owned(),
        sign_in: true,
        public_pages: true,
        ..TesterOptions::default()
    })
    .await?;
    let [one, two, three, four] = world(&t).await?;
    t.world.sign_in_as(Some("alice"));

    let steps = json!([
        {"goto": "/"},
        {"screenshot": "index"},
        {"goto": "/queue/acme/demo"},
        {"screenshot": "queue"},
        {"goto": format!("/pr/acme/demo/{}", two.0)},
        {"screenshot": "pr"},
        {"goto": format!("/pr/acme/demo/{}", four.0)},
        {"goto": "/project/acme/demo"},
        {"click": "text=Sign in with GitHub"},
        {"goto": "/project/acme/demo"},
        {"fill": "textarea[name=reviewers]", "value": "dave\nfrank"},
        {"click": "text=Save reviewers"},
        {"screenshot": "project"},
        {"request": {"method": "POST", "path": "/project/acme/demo",
                     "form": {"reviewers": "mallory"}}},
        {"viewport": {"width": 390, "height": 844}},
        {"color_scheme": "dark"},
        {"goto": "/queue/acme/demo"},
        {"screenshot": "queue-phone-dark"},
    ]);
    let r = browse(&browser, &t.url, &steps).await?;
    // The index lists the repository.
    assert_eq!(status(&r[0]), 200);
    assert!(text(&r[0]).contains("acme/demo"), "{}", text(&r[0]));
    // The queue: #2 being merged, #3 waiting behind it; #1 landed and #4 left.
    assert_eq!(status(&r[2]), 200);
    let queue = text(&r[2]);
    for pr in [two, three] {
        assert!(
            queue.contains(&format!("#{}", pr.0)),
            "#{pr} not queued: {queue}"
        );
    }
    assert!(!queue.contains(&format!("#{} ", four.0)), "{queue}");
    // Each queued pull request with its title and author (the fake's default title).
    for title in ["Merge faster-builds by dave", "Merge docs-typo by carol"] {
        assert!(queue.contains(title), "{title} not shown: {queue}");
    }
    // #2's page: its builds and its report with the failed job.
    assert_eq!(status(&r[4]), 200);
    let pr = text(&r[4]);
    assert!(pr.contains("merge"), "{pr}");
    assert!(pr.contains("unit"), "the report's job is shown: {pr}");
    assert!(
        pr.contains("failsToDemonstrateJUnitAnnotations"),
        "the failed test is shown: {pr}"
    );
    // #4's page says why it left the queue.
    assert_eq!(status(&r[6]), 200);
    let left = text(&r[6]).to_lowercase();
    assert!(left.contains("head") || left.contains("push"), "{left}");
    // Anonymous: no form, an invitation to sign in; after signing in, alice (admin) edits.
    assert!(
        text(&r[7]).contains("Sign in with GitHub"),
        "{}",
        text(&r[7])
    );
    assert!(text(&r[9]).contains("alice"), "signed in: {}", text(&r[9]));
    // Saved: back on the project page (the list is checked through its JSON twin below).
    assert_eq!(status(&r[11]), 200, "{}", text(&r[11]));
    assert!(
        r[11]["url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/project/acme/demo"),
        "{}",
        r[11]
    );
    // A POST without the CSRF token is refused and changes nothing.
    assert_eq!(status(&r[13]), 403, "{}", text(&r[13]));
    for shot in [&r[1], &r[3], &r[5], &r[12], &r[17]] {
        assert_png(shot);
    }
    let api: Value = t
        .client()
        .get(format!("{}/api/project/acme/demo", t.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(api["reviewers"], json!(["dave", "frank"]), "{api}");

    // The rules read them at once: #3's next "@greg ok" needs dave and frank.
    let comments_before = t.world.bot_comments(&t.repo, three).len();
    t.post_comment(three, "alice", "@greg ok").await?;
    let all = t.world.bot_comments(&t.repo, three);
    let answer = all
        .get(comments_before)
        .map(|c| c.body.clone())
        .unwrap_or_default();
    assert!(answer.contains("@dave has not approved"), "{answer}");
    assert!(answer.contains("@frank has not approved"), "{answer}");

    // bob may write but is no admin: no form for him, and his forged POST is refused.
    t.world.sign_in_as(Some("bob"));
    let steps = json!([
        {"goto": "/project/acme/demo"},
        {"click": "text=Sign in with GitHub"},
        {"goto": "/project/acme/demo"},
        {"request": {"method": "POST", "path": "/project/acme/demo",
                     "form": {"reviewers": "mallory"}, "csrf_from_page": true}},
    ]);
    let r = browse(&browser, &t.url, &steps).await?;
    assert!(text(&r[2]).contains("bob"), "signed in: {}", text(&r[2]));
    assert!(!text(&r[2]).contains("Save reviewers"), "{}", text(&r[2]));
    assert_eq!(status(&r[3]), 403, "{}", text(&r[3]));
    let api: Value = t
        .client()
        .get(format!("{}/api/project/acme/demo", t.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        api["reviewers"],
        json!(["dave", "frank"]),
        "unchanged: {api}"
    );
    let _ = one;
    drop(t);
    Ok(())
}
