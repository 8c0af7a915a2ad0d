//! The fake Jenkins driven over HTTP: crumbs, basic auth, buildWithParameters → queue item →
//! build, Notification-plugin callbacks to a recording endpoint standing in for greg, stop,
//! cancel, config.xml, folders.

mod common;

use common::{Fakes, start};
use greg_core::{BuildNumber, BuildOutcome, BuildPhase, QueueItemId};
use greg_testkit::world::JenkinsTiming;
use greg_testkit::{Delivery, GREG_PARAMETERS, Outcome, RequestSink, Server, fake_sha};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn fixture(path: &str) -> Value {
    let full = format!("{}/../../tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).expect("fixture")).expect("json")
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

fn params(commit: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SOURCE", "git@github.com:acme/demo.git".to_owned()),
        ("COMMIT", commit.to_owned()),
        ("CONTEXT", "test".to_owned()),
        ("REPORT", "true".to_owned()),
        ("BRANCH", "fix".to_owned()),
    ]
}

async fn trigger(
    f: &Fakes,
    job: &str,
    form: &[(&str, String)],
    crumb: Option<&str>,
) -> reqwest::Response {
    let mut req = f
        .jk(Method::POST, &format!("/job/{job}/buildWithParameters"))
        .form(form);
    if let Some(c) = crumb {
        req = req.header("Jenkins-Crumb", c);
    }
    req.send().await.expect("send")
}

async fn get_json(f: &Fakes, path: &str) -> (u16, Value) {
    let resp = f.jk(Method::GET, path).send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn queue_path(location: &str, root: &str) -> String {
    location
        .strip_prefix(root)
        .expect("location under root")
        .to_owned()
}

#[tokio::test]
async fn a_triggered_build_runs_and_notifies_greg_with_crumbs_on() {
    let f = start();
    let greg = RequestSink::start(202).expect("sink");
    let callback = format!("{}/build?builder=jenkins&token=j3nk1ns", greg.url);
    f.world.set_notification_url(Some(&callback));
    f.world
        .create_job("demo-test", GREG_PARAMETERS)
        .expect("job");
    f.world.require_crumb(Some("c0ffee"));

    let (status, crumb) = get_json(&f, "/crumbIssuer/api/json").await;
    assert_eq!(status, 200);
    assert_eq!(crumb["crumbRequestField"], "Jenkins-Crumb");
    assert_eq!(crumb["crumb"], "c0ffee");

    let commit = fake_sha("build-1");
    let refused = trigger(&f, "demo-test", &params(commit.as_str()), None).await;
    assert_eq!(refused.status().as_u16(), 403);
    assert!(
        refused
            .text()
            .await
            .expect("text")
            .contains("No valid crumb was included in the request")
    );

    let resp = trigger(&f, "demo-test", &params(commit.as_str()), Some("c0ffee")).await;
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("location")
        .to_owned();
    assert!(
        location.starts_with(&format!("{}/queue/item/", f.jenkins.url)),
        "{location}"
    );
    assert!(location.ends_with('/'), "{location}");

    // Follow the queue item to the build, as greg does.
    let item_path = format!("{}api/json", queue_path(&location, &f.jenkins.url));
    let mut number = None;
    for _ in 0..200 {
        let (_, item) = get_json(&f, &item_path).await;
        if let Some(n) = item["executable"]["number"].as_u64() {
            assert_eq!(item["_class"], "hudson.model.Queue$LeftItem");
            assert_eq!(item["cancelled"], false);
            number = Some(n);
            break;
        }
        assert_eq!(item["_class"], "hudson.model.Queue$BuildableItem");
        assert_eq!(item["why"], "Waiting for next available executor");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let number = number.expect("the queue item left the queue");
    assert_eq!(number, 1);

    // QUEUED, STARTED, COMPLETED, FINALIZED reach greg's endpoint in order.
    let got = greg.wait_for(4, WAIT).await.expect("notifications");
    let phases: Vec<&str> = got
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).expect("json"))
        .map(|v| match v["build"]["phase"].as_str() {
            Some("QUEUED") => "QUEUED",
            Some("STARTED") => "STARTED",
            Some("COMPLETED") => "COMPLETED",
            Some("FINALIZED") => "FINALIZED",
            _ => "other",
        })
        .collect();
    assert_eq!(phases, ["QUEUED", "STARTED", "COMPLETED", "FINALIZED"]);
    for r in &got {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/build");
        assert_eq!(r.query, "builder=jenkins&token=j3nk1ns");
        assert_eq!(
            r.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
    }
    let started: Value = serde_json::from_str(&got[1].body).expect("json");
    let finalized: Value = serde_json::from_str(&got[3].body).expect("json");
    // The plugin's field list (tests/data/SOURCES.md): `status` only once there is a result.
    assert_eq!(
        keys(&started["build"]),
        [
            "artifacts",
            "duration",
            "full_url",
            "log",
            "notes",
            "number",
            "parameters",
            "phase",
            "queue_id",
            "scm",
            "timestamp",
            "url"
        ]
        .map(String::from)
        .into_iter()
        .collect()
    );
    assert_eq!(
        keys(&finalized),
        ["build", "display_name", "name", "url"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    assert_eq!(finalized["name"], "demo-test");
    assert_eq!(finalized["url"], "job/demo-test/");
    assert_eq!(finalized["build"]["status"], "SUCCESS");
    assert_eq!(finalized["build"]["number"], 1);
    assert_eq!(finalized["build"]["url"], "job/demo-test/1/");
    assert_eq!(
        finalized["build"]["full_url"],
        format!("{}/job/demo-test/1/", f.jenkins.url).as_str()
    );
    assert_eq!(finalized["build"]["parameters"]["COMMIT"], commit.as_str());
    assert_eq!(finalized["build"]["parameters"]["PR"], "");
    let queue_id: u64 = location
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("queue id");
    assert_eq!(finalized["build"]["queue_id"], queue_id);

    // The build JSON agrees.
    let (status, build) = get_json(&f, "/job/demo-test/1/api/json").await;
    assert_eq!(status, 200);
    assert_eq!(build["building"], false);
    assert_eq!(build["result"], "SUCCESS");
    assert_eq!(build["number"], 1);
    assert_eq!(
        build["url"],
        format!("{}/job/demo-test/1/", f.jenkins.url).as_str()
    );
    let commit_param = build["actions"][0]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "COMMIT")
        .map(|p| p["value"].clone());
    assert_eq!(commit_param, Some(Value::from(commit.as_str())));

    f.world.settle(WAIT).await.expect("settled");
    assert!(
        f.world
            .notifications()
            .iter()
            .all(|n| n.delivery == Delivery::Delivered { status: 202 })
    );
}

#[tokio::test]
async fn the_fakes_json_has_the_fixture_fields() {
    let f = start();
    f.world.create_job("test", &["a"]).expect("job");
    f.world.hold_queue(true);
    let id = f
        .world
        .trigger(&"test".into(), &[("a".to_owned(), "4".to_owned())])
        .expect("trigger");
    let (_, waiting) = get_json(&f, &format!("/queue/item/{id}/api/json")).await;
    // A BuildableItem has the fields of the fixture's BlockedItem and `pending`.
    let blocked_fixture = fixture("jenkins/remote-api/queue-item.blocked.json");
    let mut expected = keys(&blocked_fixture);
    expected.insert("pending".to_owned());
    assert_eq!(expected, keys(&waiting));
    assert_eq!(waiting["params"], "\na=4");
    assert_eq!(waiting["_class"], "hudson.model.Queue$BuildableItem");
    assert_eq!(waiting["why"], "Waiting for next available executor");
    assert_eq!(
        (&waiting["blocked"], &waiting["buildable"]),
        (&Value::Bool(false), &Value::Bool(true))
    );
    f.world
        .block_queued(id, "Build #9 is already in progress (ETA:15 sec)")
        .expect("block");
    let (_, blocked) = get_json(&f, &format!("/queue/item/{id}/api/json")).await;
    assert_eq!(keys(&blocked_fixture), keys(&blocked));
    for k in ["_class", "why", "blocked", "buildable"] {
        assert_eq!(blocked[k], blocked_fixture[k], "{k}");
    }

    f.world.start_queued(id).expect("start");
    let (_, left) = get_json(&f, &format!("/queue/item/{id}/api/json")).await;
    let running = fixture("jenkins/remote-api/queue-item.left-running.json");
    assert!(keys(&running).is_subset(&keys(&left)), "{left}");
    assert!(keys(&running["executable"]).is_subset(&keys(&left["executable"])));

    let (_, build) = get_json(&f, "/job/test/1/api/json").await;
    let fixture_build = fixture("jenkins/remote-api/build.json");
    let missing: Vec<_> = keys(&fixture_build)
        .difference(&keys(&build))
        .cloned()
        .collect();
    assert_eq!(missing, Vec::<String>::new());
    // The parameters the build was triggered with, in Jenkins 2.x's ParametersAction shape
    // (the queue-item captures; the cdancy build captures predate `_class`).
    assert_eq!(build["actions"][0], blocked_fixture["actions"][0]);
    assert_eq!(build["building"], true);
    assert_eq!(build["result"], Value::Null);

    let (_, job) = get_json(&f, "/job/test/api/json").await;
    for k in [
        "name",
        "url",
        "builds",
        "lastBuild",
        "nextBuildNumber",
        "property",
        "inQueue",
    ] {
        assert!(job.get(k).is_some(), "job JSON lacks {k}");
    }
    assert_eq!(job["nextBuildNumber"], 2);
}

#[tokio::test]
async fn basic_auth_is_required() {
    let f = start();
    let resp = f
        .http
        .get(format!("{}/job/x/api/json", f.jenkins.url))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 401);
    f.world.set_jenkins_credentials(Some(("greg", "secret")));
    let (status, _) = get_json(&f, "/crumbIssuer/api/json").await;
    assert_eq!(status, 401, "wrong token");
    f.world.set_jenkins_credentials(Some(("greg", "api-token")));
    let (status, _) = get_json(&f, "/crumbIssuer/api/json").await;
    assert_eq!(status, 404, "right token, crumbs off");
}

#[tokio::test]
async fn a_manual_build_is_stopped_as_aborted() {
    let f = start();
    let greg = RequestSink::start(202).expect("sink");
    f.world
        .set_notification_url(Some(&format!("{}/build", greg.url)));
    f.world
        .create_job("demo-test", GREG_PARAMETERS)
        .expect("job");
    let commit = fake_sha("manual");
    f.world
        .script_outcome("demo-test", Some(&commit), Outcome::Manual);
    let resp = trigger(&f, "demo-test", &params(commit.as_str()), None).await;
    assert_eq!(resp.status().as_u16(), 201);
    greg.wait_for(2, WAIT).await.expect("queued + started");
    f.world.settle(WAIT).await.expect("settled");
    let build = f.world.build("demo-test", BuildNumber(1)).expect("build");
    assert!(build.building, "a Manual build stays running");

    let resp = f
        .jk(Method::POST, "/job/demo-test/1/stop")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 302);
    assert_eq!(
        resp.headers().get("location").and_then(|l| l.to_str().ok()),
        Some(format!("{}/job/demo-test/1/", f.jenkins.url).as_str())
    );
    let got = greg.wait_for(4, WAIT).await.expect("completed + finalized");
    let last: Value = serde_json::from_str(&got[3].body).expect("json");
    assert_eq!(last["build"]["phase"], "FINALIZED");
    assert_eq!(last["build"]["status"], "ABORTED");
    let build = f.world.build("demo-test", BuildNumber(1)).expect("build");
    assert_eq!(
        (build.building, build.result),
        (false, Some(BuildOutcome::Aborted))
    );

    // Stopping again is harmless; finishing by hand is refused.
    let again = f
        .jk(Method::POST, "/job/demo-test/1/stop")
        .send()
        .await
        .expect("send");
    assert_eq!(again.status().as_u16(), 302);
    assert!(
        f.world
            .finish_build("demo-test", BuildNumber(1), BuildOutcome::Success)
            .is_err()
    );
    let missing = f
        .jk(Method::POST, "/job/demo-test/9/stop")
        .send()
        .await
        .expect("send");
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test]
async fn finish_build_reports_the_result_a_test_chooses() {
    let f = start();
    let greg = RequestSink::start(202).expect("sink");
    f.world
        .set_notification_url(Some(&format!("{}/build", greg.url)));
    f.world
        .create_job("demo-merge", GREG_PARAMETERS)
        .expect("job");
    f.world.script_outcome("demo-merge", None, Outcome::Manual);
    trigger(&f, "demo-merge", &params(fake_sha("m").as_str()), None).await;
    greg.wait_for(2, WAIT).await.expect("started");
    let build = f
        .world
        .finish_build("demo-merge", BuildNumber(1), BuildOutcome::Failure)
        .expect("finish");
    assert_eq!(build.result, Some(BuildOutcome::Failure));
    let got = greg.wait_for(4, WAIT).await.expect("finalized");
    let last: Value = serde_json::from_str(&got[3].body).expect("json");
    assert_eq!(last["build"]["status"], "FAILURE");
    assert!(last["build"]["duration"].as_u64().is_some_and(|d| d > 0));
}

#[tokio::test]
async fn scripted_outcomes_pick_the_commit_first() {
    let f = start();
    f.world
        .create_job("demo-test", GREG_PARAMETERS)
        .expect("job");
    let red = fake_sha("red");
    f.world
        .script_outcome("demo-test", Some(&red), Outcome::Failure);
    f.world.script_outcome("demo-test", None, Outcome::Unstable);
    trigger(&f, "demo-test", &params(red.as_str()), None).await;
    trigger(&f, "demo-test", &params(fake_sha("other").as_str()), None).await;
    let results = f
        .world
        .wait_for("two finished builds", WAIT, |s| {
            let builds: Vec<_> = s
                .jenkins
                .jobs
                .get(&"demo-test".into())?
                .builds
                .values()
                .collect();
            (builds.len() == 2 && builds.iter().all(|b| !b.building)).then(|| {
                builds
                    .iter()
                    .map(|b| (b.param("COMMIT").map(str::to_owned), b.result))
                    .collect::<Vec<_>>()
            })
        })
        .await
        .expect("builds");
    assert!(results.contains(&(Some(red.to_string()), Some(BuildOutcome::Failure))));
    assert!(results.contains(&(
        Some(fake_sha("other").to_string()),
        Some(BuildOutcome::Unstable)
    )));
}

#[tokio::test]
async fn queue_items_cancel_like_jenkins() {
    let f = start();
    f.world
        .create_job("demo-test", GREG_PARAMETERS)
        .expect("job");
    f.world.hold_queue(true);
    let resp = trigger(&f, "demo-test", &params(fake_sha("q").as_str()), None).await;
    assert_eq!(resp.status().as_u16(), 201);
    let id = f
        .world
        .read(|s| s.jenkins.queue.keys().next().copied())
        .expect("item");

    let cancel = |id: u64| {
        f.jk(Method::POST, &format!("/queue/cancelItem?id={id}"))
            .send()
    };
    assert_eq!(cancel(id).await.expect("send").status().as_u16(), 204);
    let (_, item) = get_json(&f, &format!("/queue/item/{id}/api/json")).await;
    assert_eq!(item["_class"], "hudson.model.Queue$LeftItem");
    assert_eq!(item["cancelled"], true);
    assert_eq!(item["executable"], Value::Null);
    assert_eq!(
        cancel(id).await.expect("send").status().as_u16(),
        500,
        "already left"
    );
    assert_eq!(cancel(999).await.expect("send").status().as_u16(), 404);
    assert!(f.world.start_queued(QueueItemId(id)).is_err());
    assert!(f.world.builds("demo-test").is_empty());
}

#[tokio::test]
async fn undeclared_parameters_are_dropped_and_unparameterized_jobs_refuse() {
    let f = start();
    f.world.hold_queue(true);
    f.world.create_job("narrow", &["COMMIT"]).expect("job");
    f.world.create_job("plain", &[]).expect("job");
    let resp = trigger(&f, "narrow", &params(fake_sha("n").as_str()), None).await;
    assert_eq!(resp.status().as_u16(), 201);
    let item = f
        .world
        .read(|s| s.jenkins.queue.values().next().cloned())
        .expect("item");
    assert_eq!(
        item.params,
        [("COMMIT".to_owned(), fake_sha("n").to_string())]
    );
    assert_eq!(
        item.ignored_params,
        ["SOURCE", "CONTEXT", "REPORT", "BRANCH"]
    );
    let plain = trigger(&f, "plain", &params("x"), None).await;
    assert_eq!(plain.status().as_u16(), 400);
    let missing = trigger(&f, "nope", &params("x"), None).await;
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test]
async fn config_xml_round_trips_and_its_endpoints_receive_callbacks() {
    let f = start();
    let hook = RequestSink::start(200).expect("sink");
    f.world.create_job("demo-test", &["COMMIT"]).expect("job");
    let resp = f
        .jk(Method::GET, "/job/demo-test/config.xml")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let xml = resp.text().await.expect("text");
    assert!(xml.contains("<name>COMMIT</name>"));

    // The JJB fixture's endpoint block, pointed at the sink (`&` escaped as in real XML).
    let fixture_xml = std::fs::read_to_string(format!(
        "{}/../../tests/data/jenkins/config/notification-endpoint.jjb-001.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let endpoint = fixture_xml.replace(
        "http://example.com/jenkins_endpoint",
        &format!("{}/build?builder=jenkins&amp;token=t", hook.url),
    );
    let props_start = endpoint.find("<properties>").expect("properties");
    let props_end = endpoint.find("</properties>").expect("properties");
    let notification = &endpoint[props_start + "<properties>".len()..props_end];
    let new_xml = xml
        .replace("<properties>", &format!("<properties>{notification}"))
        .replace("<name>COMMIT</name>", "<name>COMMIT</name></hudson.model.StringParameterDefinition><hudson.model.StringParameterDefinition><name>CONTEXT</name>");
    let resp = f
        .jk(Method::POST, "/job/demo-test/config.xml")
        .header("content-type", "application/xml")
        .body(new_xml.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let job = f
        .world
        .read(|s| s.jenkins.jobs.get(&"demo-test".into()).cloned())
        .expect("job");
    assert_eq!(job.parameters, ["COMMIT", "CONTEXT"]);
    assert_eq!(job.config_xml, new_xml);

    trigger(&f, "demo-test", &params(fake_sha("x").as_str()), None).await;
    let got = hook.wait_for(4, WAIT).await.expect("callbacks");
    assert_eq!(got[0].query, "builder=jenkins&token=t");
    let n = f.world.notifications();
    assert_eq!(n.len(), 4);
    assert_eq!(n[3].phase, BuildPhase::Finalized);
}

#[tokio::test]
async fn dropped_callbacks_are_recorded_but_not_sent() {
    let f = start();
    let greg = RequestSink::start(202).expect("sink");
    f.world
        .set_notification_url(Some(&format!("{}/build", greg.url)));
    f.world
        .create_job("demo-test", GREG_PARAMETERS)
        .expect("job");
    f.world.drop_callbacks(true);
    trigger(&f, "demo-test", &params(fake_sha("d").as_str()), None).await;
    f.world
        .wait_for("the build to finish", WAIT, |s| {
            s.jenkins
                .jobs
                .get(&"demo-test".into())?
                .builds
                .get(&1)
                .filter(|b| !b.building)
                .map(|_| ())
        })
        .await
        .expect("finished");
    f.world.settle(WAIT).await.expect("settled");
    let n = f.world.notifications();
    assert_eq!(n.len(), 4);
    assert!(n.iter().all(|n| n.delivery == Delivery::Dropped));
    assert!(greg.received().is_empty());
}

#[tokio::test]
async fn folder_jobs_live_under_nested_job_paths() {
    let f = start();
    let greg = RequestSink::start(202).expect("sink");
    f.world
        .set_notification_url(Some(&format!("{}/build", greg.url)));
    f.world
        .create_job("team/app", GREG_PARAMETERS)
        .expect("job");
    let resp = trigger(&f, "team/job/app", &params(fake_sha("f").as_str()), None).await;
    assert_eq!(resp.status().as_u16(), 201);
    let got = greg.wait_for(4, WAIT).await.expect("callbacks");
    let last: Value = serde_json::from_str(&got[3].body).expect("json");
    assert_eq!(last["name"], "app");
    assert_eq!(last["url"], "job/team/job/app/");
    assert_eq!(last["build"]["url"], "job/team/job/app/1/");
    let (status, build) = get_json(&f, "/job/team/job/app/1/api/json").await;
    assert_eq!(status, 200);
    assert_eq!(
        build["url"],
        format!("{}/job/team/job/app/1/", f.jenkins.url).as_str()
    );
}

#[tokio::test]
async fn faults_and_timing_are_configurable() {
    let f = start();
    f.world
        .create_job("demo-test", GREG_PARAMETERS)
        .expect("job");
    f.world.set_jenkins_timing(JenkinsTiming {
        start_after: Duration::from_millis(1),
        run_for: Duration::from_millis(1),
    });
    f.world
        .fail_next(Server::Jenkins, "buildWithParameters$", 502, None)
        .expect("regex");
    let failed = trigger(&f, "demo-test", &params("x"), None).await;
    assert_eq!(failed.status().as_u16(), 502);
    assert!(f.world.read(|s| s.jenkins.queue.is_empty()));
    let ok = trigger(&f, "demo-test", &params("x"), None).await;
    assert_eq!(ok.status().as_u16(), 201);
    f.world.settle(WAIT).await.expect("settled");
    assert_eq!(
        f.world.build("demo-test", BuildNumber(1)).map(|b| b.result),
        Some(Some(BuildOutcome::Success))
    );
    let log = f
        .world
        .requests_matching(Server::Jenkins, "POST", "buildWithParameters");
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].form.as_ref().map(Vec::len), Some(5));
}

/// greg's real Jenkins client reads the fake: the queue reason, and a build whose own record
/// differs from its callbacks (kept running, then finished FAILURE quietly, then another
/// COMMIT), while the recording endpoint got only QUEUED and STARTED.
#[tokio::test]
async fn jenkins_own_view_can_differ_from_its_callbacks() {
    use greg_core::{BuildState, Builder as _, JobName, Secret};
    use greg_jenkins::{JenkinsBuilder, JenkinsConfig};

    let f = start();
    let greg = RequestSink::start(202).expect("sink");
    f.world
        .set_notification_url(Some(&format!("{}/build", greg.url)));
    f.world
        .create_job("demo-merge", GREG_PARAMETERS)
        .expect("job");
    f.world.set_jenkins_timing(JenkinsTiming {
        start_after: Duration::from_millis(10),
        run_for: Duration::from_millis(200),
    });
    f.world.hold_queue(true);
    let client = JenkinsBuilder::new(JenkinsConfig::new(
        f.jenkins.url.clone(),
        "greg",
        Secret::new("api-token"),
    ))
    .expect("client");
    let job = JobName::from("demo-merge");
    let commit = fake_sha("staging");
    let build_params = greg_core::BuildParams {
        source: "git@github.com:acme/demo.git".to_owned(),
        commit: commit.clone(),
        context: greg_core::BuildContext::Merge,
        report: true,
        branch: "fix".to_owned(),
        pr: Some(greg_core::PrNumber(7)),
        target: Some("main".to_owned()),
    };
    let id = client.trigger(&job, &build_params).await.expect("trigger");
    assert_eq!(
        client.queue_item(id).await,
        Ok(BuildState::Queued {
            why: Some("Waiting for next available executor".to_owned())
        })
    );
    f.world
        .set_queue_why(
            id,
            "Waiting for next available executor on \u{2018}linux\u{2019}",
        )
        .expect("why");
    assert_eq!(
        client.queue_item(id).await,
        Ok(BuildState::Queued {
            why: Some("Waiting for next available executor on \u{2018}linux\u{2019}".to_owned())
        })
    );

    let build = f.world.start_queued(id).expect("start");
    f.world
        .keep_running("demo-merge", build.number)
        .expect("keep running");
    tokio::time::sleep(Duration::from_millis(400)).await;
    f.world.settle(WAIT).await.expect("settle");
    assert!(matches!(
        client.build(&job, build.number).await,
        Ok(BuildState::Running { .. })
    ));

    f.world
        .finish_build_quietly("demo-merge", build.number, BuildOutcome::Failure)
        .expect("quiet finish");
    let url = format!("{}/job/demo-merge/1/", f.jenkins.url);
    assert_eq!(
        client.build(&job, build.number).await,
        Ok(BuildState::Finished {
            number: build.number,
            url: url.clone(),
            outcome: BuildOutcome::Failure,
            commit: Some(commit.clone()),
        })
    );
    let other = fake_sha("not-staging");
    f.world
        .set_build_param("demo-merge", build.number, "COMMIT", other.as_str())
        .expect("param");
    assert_eq!(
        client.build(&job, build.number).await,
        Ok(BuildState::Finished {
            number: build.number,
            url,
            outcome: BuildOutcome::Failure,
            commit: Some(other),
        })
    );
    f.world.settle(WAIT).await.expect("settle");
    let phases: Vec<_> = f.world.notifications().iter().map(|n| n.phase).collect();
    assert_eq!(phases, [BuildPhase::Queued, BuildPhase::Started]);
    assert_eq!(greg.received().len(), 2);
}
