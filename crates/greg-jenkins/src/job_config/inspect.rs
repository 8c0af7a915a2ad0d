//! The read side for `greg check-config`: the Notification plugin endpoints and the declared
//! parameters of a job's config.xml, both endpoint URL forms (legacy `<url>` and
//! `<urlInfo>`), as written.

use super::dom::Element;
use super::{
    EndpointSpec, GREG_PARAMETERS, JobConfigError, NOTIFICATION_ENDPOINT, NOTIFICATION_PROPERTY,
    PARAMETERS_PROPERTY, REQUIRED_SETTINGS, mask_token, parse_job,
};
use std::fmt;

/// One notification endpoint as config.xml declares it (see [`inspect`]). Fields hold the
/// trimmed text as written, `None` when the element is absent. `Debug` masks the token.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSummary {
    /// `urlInfo/urlOrId`, or the legacy `<url>`; a credential id when `url_type` is
    /// `SECRET`; empty when neither is present. Print it through [`mask_token`].
    pub url: String,
    /// `urlInfo/urlType` (`PUBLIC` or `SECRET`); `PUBLIC` for the legacy form.
    pub url_type: Option<String>,
    /// True when the URL is the legacy `<url>` element.
    pub legacy: bool,
    /// `protocol`: `HTTP`, `TCP` or `UDP`.
    pub protocol: Option<String>,
    /// `format`: `JSON` or `XML`.
    pub format: Option<String>,
    /// `event`: `all`, `started`, `completed`, `finalized`, `failed`, ….
    pub event: Option<String>,
    /// `timeout`, in milliseconds.
    pub timeout: Option<String>,
    /// `loglines`: 0 none, -1 all.
    pub loglines: Option<String>,
    /// `branch`: a regex on `BRANCH_NAME`.
    pub branch: Option<String>,
}

impl EndpointSummary {
    /// True when this endpoint points at greg (see [`EndpointSpec::matches`]); a `SECRET`
    /// endpoint never does.
    pub fn points_at(&self, spec: &EndpointSpec) -> bool {
        self.url_type.as_deref().unwrap_or("PUBLIC") == "PUBLIC" && spec.matches(&self.url)
    }

    /// True when this endpoint is greg's, in place or stale (see [`EndpointSpec::is_gregs`]:
    /// greg's path and builder on an old host, or with an old token); a `SECRET` endpoint
    /// never is.
    pub fn is_gregs(&self, spec: &EndpointSpec) -> bool {
        self.url_type.as_deref().unwrap_or("PUBLIC") == "PUBLIC" && spec.is_gregs(&self.url)
    }

    /// True when this endpoint is exactly what [`ensure_greg_job_config`] writes for `spec`
    /// (no [`problems`](EndpointSummary::problems)).
    ///
    /// [`ensure_greg_job_config`]: super::ensure_greg_job_config
    pub fn is_correct_for(&self, spec: &EndpointSpec) -> bool {
        self.problems(spec).is_empty()
    }

    /// How this endpoint differs from greg's, one phrase each, token masked: `legacy <url>
    /// form`, `URL is https://…&token=*** (greg's is …)`, `event is completed, greg needs
    /// all`, `branch is missing, greg needs .*`.
    pub fn problems(&self, spec: &EndpointSpec) -> Vec<String> {
        let mut problems = Vec::new();
        if self.legacy {
            problems.push("legacy <url> form".to_owned());
        }
        if self.url_type.as_deref() != Some("PUBLIC") {
            problems.push(match &self.url_type {
                Some(t) => format!("urlType is {t}, greg needs PUBLIC"),
                None => "urlType is missing, greg needs PUBLIC".to_owned(),
            });
        }
        if self.url != spec.url {
            // Both masked: equal masked texts mean only the token differs.
            let (is, wants) = (mask_token(&self.url), mask_token(&spec.url));
            problems.push(if is == wants {
                "URL has another token".to_owned()
            } else {
                format!("URL is {is}, greg's is {wants}")
            });
        }
        for (name, want) in REQUIRED_SETTINGS {
            let is = match name {
                "protocol" => &self.protocol,
                "format" => &self.format,
                "event" => &self.event,
                "timeout" => &self.timeout,
                "loglines" => &self.loglines,
                _ => &self.branch,
            };
            match is.as_deref() {
                Some(v) if v == want => {}
                Some(v) => problems.push(format!("{name} is {v}, greg needs {want}")),
                None => problems.push(format!("{name} is missing, greg needs {want}")),
            }
        }
        problems
    }
}

impl fmt::Debug for EndpointSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointSummary")
            .field("url", &mask_token(&self.url))
            .field("url_type", &self.url_type)
            .field("legacy", &self.legacy)
            .field("protocol", &self.protocol)
            .field("format", &self.format)
            .field("event", &self.event)
            .field("timeout", &self.timeout)
            .field("loglines", &self.loglines)
            .field("branch", &self.branch)
            .finish()
    }
}

/// What a job's config.xml declares that greg cares about, for `greg check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobConfigSummary {
    /// The root element: `project` (freestyle), `flow-definition` (Pipeline),
    /// `maven2-moduleset`, `matrix-project`, ….
    pub kind: String,
    /// Every Notification plugin endpoint, in document order.
    pub endpoints: Vec<EndpointSummary>,
    /// The names of every declared parameter, of any type, in document order.
    pub parameters: Vec<String>,
}

impl JobConfigSummary {
    /// greg's endpoints, in place or stale ([`EndpointSummary::is_gregs`]); more than one is
    /// a duplicate fix-hooks removes, a stale one is updated.
    pub fn greg_endpoints(&self, spec: &EndpointSpec) -> Vec<&EndpointSummary> {
        self.endpoints.iter().filter(|e| e.is_gregs(spec)).collect()
    }

    /// The SPEC §6 parameters the job does not declare, in SPEC order.
    pub fn missing_parameters(&self) -> Vec<&'static str> {
        GREG_PARAMETERS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !self.parameters.iter().any(|p| p == name))
            .collect()
    }

    /// Everything `greg fix-hooks` would fix, one line each, token masked: no endpoint or
    /// several endpoints pointing at greg, the [`problems`](EndpointSummary::problems) of
    /// greg's endpoint, missing parameters. Empty for a job wired as greg wants.
    pub fn problems(&self, spec: &EndpointSpec) -> Vec<String> {
        let mut problems = Vec::new();
        let ours = self.greg_endpoints(spec);
        match ours.as_slice() {
            [] => problems.push(format!(
                "no notification endpoint points at {}",
                mask_token(&spec.url)
            )),
            [first, rest @ ..] => {
                if !rest.is_empty() {
                    problems.push(format!(
                        "{} notification endpoints point at greg, one is needed",
                        ours.len()
                    ));
                }
                // The one fix-hooks keeps: the first in place, else the first.
                let kept = ours.iter().find(|e| e.points_at(spec)).unwrap_or(first);
                problems.extend(
                    kept.problems(spec)
                        .into_iter()
                        .map(|p| format!("greg's notification endpoint: {p}")),
                );
            }
        }
        let missing = self.missing_parameters();
        if !missing.is_empty() {
            problems.push(format!("missing parameters: {}", missing.join(", ")));
        }
        problems
    }
}

/// Reads the Notification plugin endpoints and the declared parameter names of a job's
/// config.xml (both forms of endpoint URL; see [`EndpointSummary`]).
///
/// Errors: [`JobConfigError::Malformed`], [`JobConfigError::NotAJob`] as for
/// [`ensure_greg_job_config`](super::ensure_greg_job_config).
pub fn inspect(xml: &str) -> Result<JobConfigSummary, JobConfigError> {
    let doc = parse_job(xml)?;
    let root = doc.root();
    let mut endpoints = Vec::new();
    let mut parameters = Vec::new();
    if let Some(properties) = root.child("properties") {
        for (_, property) in properties.elements() {
            if property.name() == NOTIFICATION_PROPERTY {
                if let Some(list) = property.child("endpoints") {
                    endpoints.extend(
                        list.elements()
                            .filter(|(_, e)| e.name() == NOTIFICATION_ENDPOINT)
                            .map(|(_, e)| summarize(e)),
                    );
                }
            } else if property.name() == PARAMETERS_PROPERTY
                && let Some(definitions) = property.child("parameterDefinitions")
            {
                parameters.extend(
                    definitions
                        .elements()
                        .filter_map(|(_, d)| d.child_text("name")),
                );
            }
        }
    }
    Ok(JobConfigSummary {
        kind: root.name().to_owned(),
        endpoints,
        parameters,
    })
}

fn summarize(endpoint: &Element) -> EndpointSummary {
    let legacy_url = endpoint.child_text("url");
    let info = endpoint.child("urlInfo");
    // `Endpoint.readResolve` lets a legacy `<url>` win over `<urlInfo>`.
    let (url, url_type, legacy) = match (legacy_url, info) {
        (Some(url), _) => (url, Some("PUBLIC".to_owned()), true),
        (None, Some(info)) => (
            info.child_text("urlOrId").unwrap_or_default(),
            info.child_text("urlType"),
            false,
        ),
        (None, None) => (String::new(), None, false),
    };
    EndpointSummary {
        url,
        url_type,
        legacy,
        protocol: endpoint.child_text("protocol"),
        format: endpoint.child_text("format"),
        event: endpoint.child_text("event"),
        timeout: endpoint.child_text("timeout"),
        loglines: endpoint.child_text("loglines"),
        branch: endpoint.child_text("branch"),
    }
}
