//! Jenkins remote-API bodies rendered from the world, in the shapes of the fixtures under
//! tests/data/jenkins/remote-api/ (`queue-item.*.json`, `build.json`, `job.json`) and of the
//! crumb issuer (tests/data/SOURCES.md, "Jenkins crumb issuer").

use crate::world::jenkins::{JenkinsState, result_name};
use crate::world::{FakeBuild, Job, QueueItem};
use serde_json::{Value, json};

fn short_name(full: &str) -> &str {
    full.rsplit('/').next().unwrap_or(full)
}

fn user(j: &JenkinsState) -> String {
    j.credentials
        .as_ref()
        .map_or_else(|| "greg".to_owned(), |(u, _)| u.clone())
}

fn actions(j: &JenkinsState, params: &[(String, String)]) -> Value {
    let who = user(j);
    json!([
        {
            "_class": "hudson.model.ParametersAction",
            "parameters": params.iter().map(|(k, v)| json!({
                "_class": "hudson.model.StringParameterValue",
                "name": k,
                "value": v,
            })).collect::<Vec<_>>(),
        },
        {
            "_class": "hudson.model.CauseAction",
            "causes": [{
                "_class": "hudson.model.Cause$UserIdCause",
                "shortDescription": format!("Started by user {who}"),
                "userId": who,
                "userName": who,
            }],
        },
    ])
}

/// `GET /queue/item/{id}/api/json`: while it waits, `Queue$BuildableItem` (waiting for an
/// executor, with `pending`) or `Queue$BlockedItem` (fixture `queue-item.blocked.json`), each
/// with its `why` and `buildableStartMilliseconds`; `Queue$LeftItem` with `executable` once
/// started, `Queue$LeftItem` with `cancelled: true` once cancelled, `why` null.
pub fn queue_item(j: &JenkinsState, q: &QueueItem) -> Value {
    let params: String = q.params.iter().map(|(k, v)| format!("\n{k}={v}")).collect();
    let left = q.cancelled || q.build.is_some();
    let class = match (left, q.blocked) {
        (true, _) => "hudson.model.Queue$LeftItem",
        (false, true) => "hudson.model.Queue$BlockedItem",
        (false, false) => "hudson.model.Queue$BuildableItem",
    };
    let mut v = json!({
        "_class": class,
        "actions": actions(j, &q.params),
        "blocked": !left && q.blocked,
        "buildable": !left && !q.blocked,
        "id": q.id.0,
        "inQueueSince": q.in_queue_since,
        "params": params,
        "stuck": false,
        "task": {
            "_class": "hudson.model.FreeStyleProject",
            "name": short_name(q.job.as_str()),
            "url": j.job_url(&q.job),
            "color": "blue",
        },
        "url": format!("queue/item/{}/", q.id),
        "why": if left { Value::Null } else { Value::from(q.why.as_str()) },
    });
    if let Some(o) = v.as_object_mut() {
        if left {
            o.insert("cancelled".to_owned(), Value::from(q.cancelled));
            o.insert(
                "executable".to_owned(),
                q.build.map_or(Value::Null, |n| {
                    json!({
                        "_class": "hudson.model.FreeStyleBuild",
                        "number": n.0,
                        "url": j.build_url(&q.job, n),
                    })
                }),
            );
        } else {
            o.insert(
                "buildableStartMilliseconds".to_owned(),
                Value::from(q.in_queue_since),
            );
            if !q.blocked {
                o.insert("pending".to_owned(), Value::from(false));
            }
        }
    }
    v
}

/// `GET /job/{name}/{number}/api/json`.
pub fn build(j: &JenkinsState, b: &FakeBuild) -> Value {
    let short = short_name(b.job.as_str());
    json!({
        "_class": "hudson.model.FreeStyleBuild",
        "actions": actions(j, &b.params),
        "artifacts": [],
        "building": b.building,
        "description": null,
        "displayName": format!("#{}", b.number),
        "duration": b.duration,
        "estimatedDuration": -1,
        "executor": if b.building { json!({ "_class": "hudson.model.Executor" }) } else { Value::Null },
        "fullDisplayName": format!("{} #{}", b.job.as_str().replace('/', " » "), b.number),
        "id": b.number.to_string(),
        "inProgress": b.building,
        "keepLog": false,
        "number": b.number.0,
        "queueId": b.queue_id.0,
        "result": b.result.map(result_name),
        "timestamp": b.timestamp,
        "url": j.build_url(&b.job, b.number),
        "builtOn": "",
        "changeSet": { "_class": "hudson.scm.EmptyChangeLogSet", "items": [], "kind": null },
        "culprits": [],
        "name": short,
    })
}

/// `GET /job/{name}/api/json`.
pub fn job(j: &JenkinsState, job: &Job) -> Value {
    let build_ref = |n: u64| json!({ "_class": "hudson.model.FreeStyleBuild", "number": n, "url": j.build_url(&job.name, greg_core::BuildNumber(n)) });
    let last = job.builds.keys().next_back().copied();
    let in_queue = j
        .queue
        .values()
        .any(|q| q.job == job.name && !q.cancelled && q.build.is_none());
    json!({
        "_class": "hudson.model.FreeStyleProject",
        "name": short_name(job.name.as_str()),
        "fullName": job.name.as_str(),
        "displayName": short_name(job.name.as_str()),
        "url": j.job_url(&job.name),
        "buildable": true,
        "builds": job.builds.keys().rev().map(|n| build_ref(*n)).collect::<Vec<_>>(),
        "color": "blue",
        "inQueue": in_queue,
        "lastBuild": last.map_or(Value::Null, build_ref),
        "nextBuildNumber": job.next_build_number,
        "property": [{
            "_class": "hudson.model.ParametersDefinitionProperty",
            "parameterDefinitions": job.parameters.iter().map(|p| json!({
                "_class": "hudson.model.StringParameterDefinition",
                "defaultParameterValue": { "_class": "hudson.model.StringParameterValue", "name": p, "value": "" },
                "description": null,
                "name": p,
                "type": "StringParameterDefinition",
            })).collect::<Vec<_>>(),
        }],
        "queueItem": null,
    })
}

/// `GET /crumbIssuer/api/json`.
pub fn crumb(value: &str) -> Value {
    json!({
        "_class": "hudson.security.csrf.DefaultCrumbIssuer",
        "crumb": value,
        "crumbRequestField": "Jenkins-Crumb",
    })
}
