//! The job `config.xml` editor behind `greg fix-hooks` and `greg check-config` (SPEC §7):
//! makes a Jenkins job call greg back and accept greg's build parameters. Pure: text in,
//! text out, no IO.
//!
//! What a wired job carries (formats from jenkinsci/notification-plugin `Endpoint.java`,
//! `UrlInfo.java`, `HudsonNotificationProperty.java`, summarized in tests/data/SOURCES.md;
//! examples under tests/data/jenkins/config/):
//!
//! ```xml
//! <properties>
//!   <com.tikal.hudson.plugins.notification.HudsonNotificationProperty>
//!     <endpoints>
//!       <com.tikal.hudson.plugins.notification.Endpoint>
//!         <protocol>HTTP</protocol>
//!         <format>JSON</format>
//!         <urlInfo>
//!           <urlOrId>https://greg.example.com/build?builder=jenkins&amp;token=…</urlOrId>
//!           <urlType>PUBLIC</urlType>
//!         </urlInfo>
//!         <event>all</event>
//!         <timeout>30000</timeout>
//!         <loglines>0</loglines>
//!         <retries>0</retries>
//!         <branch>.*</branch>
//!       </com.tikal.hudson.plugins.notification.Endpoint>
//!     </endpoints>
//!   </com.tikal.hudson.plugins.notification.HudsonNotificationProperty>
//!   <hudson.model.ParametersDefinitionProperty>
//!     <parameterDefinitions>
//!       <hudson.model.StringParameterDefinition>
//!         <name>SOURCE</name> … (SPEC §6: SOURCE, COMMIT, CONTEXT, REPORT, BRANCH, PR,
//!         TARGET, TARGET_BRANCH)
//! ```
//!
//! Jenkins reads config.xml with XStream, which does not run field initializers: a field
//! missing from the XML is null, not the plugin's default. So greg writes every field the
//! plugin dereferences: `urlType` (a null one throws in `Phase.notifyEndpoint`) and `branch`
//! (since plugin 1.15 a null branch filter drops every notification of a job without
//! `BRANCH_NAME`; older plugins keep an unknown `<branch>` as "old data" and load the rest).
//!
//! Design: a small DOM over quick-xml (`job_config/dom.rs`) that keeps the source text of
//! every node, so everything greg does not edit — plugin elements, attributes such as
//! `plugin="git@5.2.1"`, comments, the `<?xml version='1.1'?>` declaration, formatting —
//! is written back byte for byte, and a document without changes comes back identical.

mod dom;
mod inspect;
mod mask;
#[cfg(test)]
mod tests;

pub use inspect::{EndpointSummary, JobConfigSummary, inspect};
pub use mask::{mask_token, unified_diff};

use dom::{Document, Element};
use std::fmt;
use url::Url;

/// The Notification plugin's job property element.
pub const NOTIFICATION_PROPERTY: &str =
    "com.tikal.hudson.plugins.notification.HudsonNotificationProperty";
/// One endpoint inside the property's `<endpoints>`.
pub const NOTIFICATION_ENDPOINT: &str = "com.tikal.hudson.plugins.notification.Endpoint";
/// Jenkins' job property holding the declared build parameters.
pub const PARAMETERS_PROPERTY: &str = "hudson.model.ParametersDefinitionProperty";
/// The parameter type greg declares.
pub const STRING_PARAMETER: &str = "hudson.model.StringParameterDefinition";

/// The parameters greg sends to `buildWithParameters` (SPEC §6, Greg's names), with the
/// description greg writes when it declares one.
pub const GREG_PARAMETERS: [(&str, &str); 8] = [
    ("SOURCE", "Set by greg: git URL of the repository to build."),
    ("COMMIT", "Set by greg: full sha of the commit to build."),
    ("CONTEXT", "Set by greg: test, merge or try."),
    (
        "REPORT",
        "Set by greg: true when greg reports the result to the pull request.",
    ),
    (
        "BRANCH",
        "Set by greg: source branch of the push or pull request.",
    ),
    (
        "PR",
        "Set by greg: pull request number (merge and try builds).",
    ),
    (
        "TARGET",
        "Set by greg: target branch (merge and try builds).",
    ),
    (
        "TARGET_BRANCH",
        "Set by greg: target branch, as TARGET (merge and try builds).",
    ),
];

/// Root elements of items that are not buildable jobs (folders, multibranch projects,
/// organization folders): they take no build parameters, so greg refuses to edit them.
const NOT_JOBS: [&str; 4] = [
    "com.cloudbees.hudson.plugins.folder.Folder",
    "jenkins.branch.OrganizationFolder",
    "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject",
    "html",
];

/// Elements Jenkins writes before `<properties>` in a job (`<actions/>`, `<description>`,
/// `<displayName>`, `<logRotator>`, `<keepDependencies>`); a new `<properties>` goes after
/// the last of them, else first.
const BEFORE_PROPERTIES: [&str; 5] = [
    "actions",
    "description",
    "displayName",
    "logRotator",
    "keepDependencies",
];

/// The endpoint fields in the order XStream writes them (`Endpoint.java` declaration order);
/// a missing field is inserted after the last present field that comes before it.
const ENDPOINT_FIELDS: [&str; 9] = [
    "protocol",
    "format",
    "urlInfo",
    "event",
    "timeout",
    "loglines",
    "buildNotes",
    "retries",
    "branch",
];

/// The endpoint settings greg requires besides the URL, `(field, value)`: SPEC §7 and Greg's
/// README ("Format: JSON, Protocol: HTTP, Timeout: 30000, Log: 0"; event `all` so greg hears
/// every phase of SPEC §6), and the `branch` filter that lets every branch through.
pub(crate) const REQUIRED_SETTINGS: [(&str, &str); 6] = [
    ("protocol", "HTTP"),
    ("format", "JSON"),
    ("event", "all"),
    ("timeout", "30000"),
    ("loglines", "0"),
    ("branch", ".*"),
];

/// Where the Notification plugin must call greg: `<public_url>/build?builder=NAME&token=…`
/// (SPEC §3). An endpoint is greg's ([`is_gregs`](Self::is_gregs)) when its URL has the same
/// scheme, host, port (explicit or the scheme's default) and path as this one (Greg matched
/// scheme + host + port; the path keeps another service on the same host apart), or when it
/// ends in greg's own path and names the same builder (`…/build?builder=NAME…`) on any host:
/// an endpoint greg's old address or an old token left behind (SPEC §7). Either way the URL
/// is rewritten to this one.
///
/// `Debug` masks the token.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The full callback URL, token included.
    pub url: String,
}

impl EndpointSpec {
    /// The callback URL for `public_url` (greg's base URL, with or without a path prefix or
    /// trailing `/`), the builder's name in config.yaml and its `incoming_token`.
    ///
    /// Errors: [`JobConfigError::InvalidEndpoint`] when `public_url` is not an absolute
    /// http(s) URL with a host, or carries a query or fragment.
    pub fn callback(public_url: &str, builder: &str, token: &str) -> Result<Self, JobConfigError> {
        let mut url = parse_http_url(public_url)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(JobConfigError::InvalidEndpoint {
                message: format!(
                    "{}: greg's public URL must not have a query or fragment",
                    mask_token(public_url)
                ),
            });
        }
        let path = format!("{}/build", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.query_pairs_mut()
            .append_pair("builder", builder)
            .append_pair("token", token);
        Ok(EndpointSpec { url: url.into() })
    }

    /// True when `candidate` (an endpoint URL as written in config.xml) points at greg: same
    /// scheme, host, port and path (a trailing `/` aside). A text that is not a URL (a
    /// credential id, a `$VARIABLE`) is not greg's.
    pub fn matches(&self, candidate: &str) -> bool {
        let (Ok(ours), Ok(theirs)) = (Url::parse(&self.url), Url::parse(candidate.trim())) else {
            return false;
        };
        ours.scheme() == theirs.scheme()
            && ours.host_str() == theirs.host_str()
            && ours.port_or_known_default() == theirs.port_or_known_default()
            && ours.path().trim_end_matches('/') == theirs.path().trim_end_matches('/')
    }

    /// True when `candidate` is greg's endpoint, in place or stale: it [`matches`](Self::matches),
    /// or it is an http(s) URL of any host and port whose path ends in `/build` (a trailing
    /// `/` aside) and whose query has this spec's `builder=NAME`, whatever its token (SPEC §7:
    /// "an endpoint … whose URL ends in greg's own path (`/build?builder=jenkins…`) but points
    /// at an old host or carries an old token is greg's: it is updated, not duplicated").
    /// Another tool's endpoint (another path, no or another `builder`), a credential id and a
    /// `$VARIABLE` are not greg's.
    pub fn is_gregs(&self, candidate: &str) -> bool {
        if self.matches(candidate) {
            return true;
        }
        let (Ok(ours), Ok(theirs)) = (Url::parse(&self.url), Url::parse(candidate.trim())) else {
            return false;
        };
        let builder = |url: &Url| {
            url.query_pairs()
                .find(|(k, _)| k == "builder")
                .map(|(_, v)| v.into_owned())
        };
        let last_segment = theirs
            .path()
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        matches!(theirs.scheme(), "http" | "https")
            && theirs.host_str().is_some()
            && last_segment == "build"
            && builder(&ours).is_some_and(|name| builder(&theirs) == Some(name))
    }
}

impl fmt::Debug for EndpointSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointSpec")
            .field("url", &mask_token(&self.url))
            .finish()
    }
}

/// The result of [`ensure_greg_job_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobConfigChange {
    /// The config.xml to POST back: the input itself when nothing changed.
    pub xml: String,
    /// True when `xml` differs from the input.
    pub changed: bool,
    /// One line per change, for people (`added notification endpoint`, `removed 1 duplicate
    /// endpoint`, `added parameter COMMIT`, `converted legacy <url> endpoint`, `set endpoint
    /// event to all (was completed)`); never contains the token.
    pub actions: Vec<String>,
}

/// Why a config.xml could not be read or edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobConfigError {
    /// Not well-formed XML (or XML greg does not accept: unknown entities, text outside the
    /// root); line and column are 1-based, the column counts characters.
    #[error("config.xml is not well-formed XML: line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    /// The item is a folder, a multibranch project or not a Jenkins item at all (an HTML
    /// login page, say); `root` is its root element.
    #[error(
        "config.xml describes a <{root}>, not a job greg can build (folders and multibranch \
         projects take no parameters; name the job itself)"
    )]
    NotAJob { root: String },
    /// greg's callback URL is unusable; the message shows it with the token masked.
    #[error("greg's callback URL is invalid: {message}")]
    InvalidEndpoint { message: String },
}

impl From<JobConfigError> for greg_core::Error {
    /// `Malformed` → `Protocol` (Jenkins answered something greg cannot read), `NotAJob` →
    /// `InvalidConfig{key: "jobs"}`, `InvalidEndpoint` → `InvalidConfig{key:
    /// "server.public_url"}`.
    fn from(e: JobConfigError) -> Self {
        let message = e.to_string();
        match e {
            JobConfigError::Malformed { .. } => greg_core::Error::Protocol { message },
            JobConfigError::NotAJob { .. } => greg_core::Error::InvalidConfig {
                key: "jobs".to_owned(),
                message,
            },
            JobConfigError::InvalidEndpoint { .. } => greg_core::Error::InvalidConfig {
                key: "server.public_url".to_owned(),
                message,
            },
        }
    }
}

/// Makes the job's config.xml call greg back and declare greg's parameters:
///
/// - the Notification plugin property ([`NOTIFICATION_PROPERTY`]) gets exactly one endpoint
///   that is greg's ([`EndpointSpec::is_gregs`]: in place, or on an old host or with an old
///   token): created when there is none (with the property, and `<properties>`, when
///   missing); when there are several, the first in place is kept (else the first) and the
///   others are removed. Greg's endpoint is written in the current form
///   (`<urlInfo><urlOrId>URL</urlOrId><urlType>PUBLIC</urlType></urlInfo>`; a legacy `<url>`
///   is converted) with the URL of `endpoint`, protocol `HTTP`, format `JSON`, event `all`,
///   timeout `30000`, loglines `0` and branch `.*`; its other fields (`retries`,
///   `buildNotes`) are kept. Endpoints of other hosts, `SECRET` endpoints and unparsable
///   URLs are left untouched.
/// - [`PARAMETERS_PROPERTY`] declares every parameter of [`GREG_PARAMETERS`]: missing ones
///   are appended as [`STRING_PARAMETER`] (empty default, no trimming); parameters already
///   declared under that name, of any type, are kept as they are.
///
/// Everything else is written back as it was, byte for byte. Idempotent: running it on its
/// own output gives `changed == false` and the same text.
///
/// Errors: [`JobConfigError::Malformed`] for text that is not well-formed XML,
/// [`JobConfigError::NotAJob`] for folders and multibranch projects,
/// [`JobConfigError::InvalidEndpoint`] when `endpoint.url` is not an absolute http(s) URL.
pub fn ensure_greg_job_config(
    xml: &str,
    endpoint: &EndpointSpec,
) -> Result<JobConfigChange, JobConfigError> {
    parse_http_url(&endpoint.url)?;
    let mut doc = parse_job(xml)?;
    let unit = doc.indent_unit();
    let root = doc.root_mut();
    let mut actions = Vec::new();

    let properties_at = match root.position("properties") {
        Some(i) => i,
        None => {
            let after = root
                .elements()
                .filter(|(_, e)| BEFORE_PROPERTIES.contains(&e.name()))
                .map(|(i, _)| i + 1)
                .last()
                .unwrap_or(0);
            root.insert(after, Element::new("properties"), "", &unit);
            root.position("properties").unwrap_or(after)
        }
    };
    let properties_indent = unit.clone();
    let Some(properties) = root.element_mut(properties_at) else {
        return Err(internal("the <properties> element went missing"));
    };
    ensure_endpoint(
        properties,
        &properties_indent,
        &unit,
        endpoint,
        &mut actions,
    );
    ensure_parameters(properties, &properties_indent, &unit, &mut actions);

    let out = doc.to_xml();
    let changed = out != xml;
    Ok(JobConfigChange {
        xml: if changed { out } else { xml.to_owned() },
        changed,
        actions,
    })
}

pub(crate) fn parse_job(xml: &str) -> Result<Document, JobConfigError> {
    let doc = Document::parse(xml).map_err(|m| JobConfigError::Malformed {
        line: m.line,
        column: m.column,
        message: mask_token(&m.message),
    })?;
    let root = doc.root().name();
    if NOT_JOBS.contains(&root) {
        return Err(JobConfigError::NotAJob {
            root: root.to_owned(),
        });
    }
    Ok(doc)
}

fn parse_http_url(text: &str) -> Result<Url, JobConfigError> {
    let invalid = |why: &str| JobConfigError::InvalidEndpoint {
        message: format!("{}: {why}", mask_token(text)),
    };
    let url = Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("not an absolute http(s) URL"));
    }
    Ok(url)
}

fn internal(what: &str) -> JobConfigError {
    JobConfigError::Malformed {
        line: 1,
        column: 1,
        message: format!("internal error: {what}"),
    }
}

/// True when the endpoint element points at greg through either URL form.
fn is_greg_endpoint(endpoint: &Element, spec: &EndpointSpec) -> bool {
    let legacy = endpoint
        .child_text("url")
        .is_some_and(|url| spec.is_gregs(&url));
    let current = endpoint.child("urlInfo").is_some_and(|info| {
        info.child_text("urlType").as_deref().unwrap_or("PUBLIC") == "PUBLIC"
            && info
                .child_text("urlOrId")
                .is_some_and(|url| spec.is_gregs(&url))
    });
    legacy || current
}

/// True when greg's endpoint already points at greg's current place ([`EndpointSpec::matches`],
/// through either URL form): the one to keep among duplicates.
fn is_in_place(endpoint: &Element, spec: &EndpointSpec) -> bool {
    let url = endpoint
        .child_text("url")
        .or_else(|| endpoint.child("urlInfo")?.child_text("urlOrId"));
    url.is_some_and(|url| spec.matches(&url))
}

/// The endpoint element greg writes for `spec`.
fn new_endpoint(spec: &EndpointSpec) -> Element {
    let field = |name: &str| {
        REQUIRED_SETTINGS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| *v)
    };
    Element::with_children(
        NOTIFICATION_ENDPOINT,
        vec![
            Element::leaf("protocol", field("protocol")),
            Element::leaf("format", field("format")),
            new_url_info(spec),
            Element::leaf("event", field("event")),
            Element::leaf("timeout", field("timeout")),
            Element::leaf("loglines", field("loglines")),
            Element::leaf("retries", "0"),
            Element::leaf("branch", field("branch")),
        ],
    )
}

fn new_url_info(spec: &EndpointSpec) -> Element {
    Element::with_children(
        "urlInfo",
        vec![
            Element::leaf("urlOrId", &spec.url),
            Element::leaf("urlType", "PUBLIC"),
        ],
    )
}

/// The indentation one level deeper than `indent`.
fn deeper(indent: &str, unit: &str) -> String {
    format!("{indent}{unit}")
}

fn ensure_endpoint(
    properties: &mut Element,
    indent: &str,
    unit: &str,
    spec: &EndpointSpec,
    actions: &mut Vec<String>,
) {
    // Every greg endpoint as (index of its property in <properties>, index of <endpoints> in
    // the property, index of the endpoint in <endpoints>), in document order, and whether it
    // is in place.
    let mut found: Vec<(usize, usize, usize)> = Vec::new();
    let mut in_place: Vec<bool> = Vec::new();
    for (p, property) in properties.elements() {
        if property.name() != NOTIFICATION_PROPERTY {
            continue;
        }
        let Some(list_at) = property.position("endpoints") else {
            continue;
        };
        let Some(list) = property.child("endpoints") else {
            continue;
        };
        for (e, endpoint) in list.elements() {
            if endpoint.name() == NOTIFICATION_ENDPOINT && is_greg_endpoint(endpoint, spec) {
                found.push((p, list_at, e));
                in_place.push(is_in_place(endpoint, spec));
            }
        }
    }
    let property_indent = deeper(indent, unit);
    let list_indent = deeper(&property_indent, unit);
    let endpoint_indent = deeper(&list_indent, unit);

    let keep_at = in_place.iter().position(|&b| b).unwrap_or(0);
    let Some(&(keep_p, keep_l, keep_e)) = found.get(keep_at) else {
        add_endpoint(properties, indent, unit, spec);
        actions.push("added notification endpoint".to_owned());
        return;
    };
    // The kept endpoint is edited in place first (its indexes are still valid); removing a
    // duplicate also removes the whitespace before it, which shifts later siblings.
    let mut normalized = Vec::new();
    if let Some(endpoint) = properties
        .element_mut(keep_p)
        .and_then(|property| property.element_mut(keep_l))
        .and_then(|list| list.element_mut(keep_e))
    {
        normalize_endpoint(endpoint, &endpoint_indent, unit, spec, &mut normalized);
    }
    let duplicates = found.len() - 1;
    // Remove from the last, so the indexes of the earlier ones stay valid.
    for (_, &(p, l, e)) in found
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| *i != keep_at)
    {
        if let Some(list) = properties
            .element_mut(p)
            .and_then(|property| property.element_mut(l))
        {
            list.remove(e);
        }
    }
    if duplicates > 0 {
        let s = if duplicates == 1 { "" } else { "s" };
        actions.push(format!("removed {duplicates} duplicate endpoint{s}"));
    }
    actions.extend(normalized);
}

/// Adds greg's endpoint to the first Notification property (creating its `<endpoints>`), or
/// a new property holding it.
fn add_endpoint(properties: &mut Element, indent: &str, unit: &str, spec: &EndpointSpec) {
    let property_indent = deeper(indent, unit);
    let list_indent = deeper(&property_indent, unit);
    let Some(p) = properties.position(NOTIFICATION_PROPERTY) else {
        let property = Element::with_children(
            NOTIFICATION_PROPERTY,
            vec![Element::with_children(
                "endpoints",
                vec![new_endpoint(spec)],
            )],
        );
        properties.append(property, indent, unit);
        return;
    };
    let Some(property) = properties.element_mut(p) else {
        return;
    };
    match property.position("endpoints") {
        Some(l) => {
            if let Some(list) = property.element_mut(l) {
                list.append(new_endpoint(spec), &list_indent, unit);
            }
        }
        None => property.append(
            Element::with_children("endpoints", vec![new_endpoint(spec)]),
            &property_indent,
            unit,
        ),
    }
}

/// Brings greg's endpoint to the current form and greg's settings, keeping its other fields.
fn normalize_endpoint(
    endpoint: &mut Element,
    indent: &str,
    unit: &str,
    spec: &EndpointSpec,
    actions: &mut Vec<String>,
) {
    if let Some(url_at) = endpoint.position("url") {
        if endpoint.position("urlInfo").is_some() {
            endpoint.remove(url_at);
        } else {
            endpoint.replace(url_at, new_url_info(spec), indent, unit);
        }
        actions.push("converted legacy <url> endpoint".to_owned());
    }
    match endpoint.position("urlInfo") {
        None => {
            insert_field(endpoint, new_url_info(spec), indent, unit);
            actions.push("added endpoint URL".to_owned());
        }
        Some(at) => {
            let info_indent = deeper(indent, unit);
            if let Some(info) = endpoint.element_mut(at) {
                let mut url_changed = false;
                for (name, want) in [("urlOrId", spec.url.as_str()), ("urlType", "PUBLIC")] {
                    url_changed |= set_leaf(info, name, want, &info_indent, unit, false);
                }
                if url_changed {
                    actions.push("updated endpoint URL".to_owned());
                }
            }
        }
    }
    for (name, want) in REQUIRED_SETTINGS {
        let was = endpoint.child_text(name);
        if set_leaf(endpoint, name, want, indent, unit, true) {
            actions.push(match was {
                Some(was) => format!("set endpoint {name} to {want} (was {was})"),
                None => format!("set endpoint {name} to {want}"),
            });
        }
    }
}

/// Makes the child `name` of `parent` hold exactly `want` (trimmed comparison), creating it
/// when missing: at its place in [`ENDPOINT_FIELDS`] when `endpoint_field`, else last.
/// Returns true on a change.
fn set_leaf(
    parent: &mut Element,
    name: &str,
    want: &str,
    indent: &str,
    unit: &str,
    endpoint_field: bool,
) -> bool {
    match parent.position(name) {
        Some(at) => match parent.element_mut(at) {
            Some(leaf) if leaf.text().trim() != want => {
                leaf.set_text(want);
                true
            }
            _ => false,
        },
        None => {
            let leaf = Element::leaf(name, want);
            if endpoint_field {
                insert_field(parent, leaf, indent, unit);
            } else {
                parent.append(leaf, indent, unit);
            }
            true
        }
    }
}

/// Inserts an endpoint field after the last present field that precedes it in
/// [`ENDPOINT_FIELDS`], else first.
fn insert_field(endpoint: &mut Element, field: Element, indent: &str, unit: &str) {
    let rank = ENDPOINT_FIELDS.iter().position(|f| *f == field.name());
    let after = endpoint
        .elements()
        .filter(|(_, e)| {
            let r = ENDPOINT_FIELDS.iter().position(|f| *f == e.name());
            matches!((r, rank), (Some(r), Some(rank)) if r < rank)
        })
        .map(|(i, _)| i + 1)
        .last()
        .unwrap_or(0);
    endpoint.insert(after, field, indent, unit);
}

fn ensure_parameters(
    properties: &mut Element,
    indent: &str,
    unit: &str,
    actions: &mut Vec<String>,
) {
    let property_indent = deeper(indent, unit);
    let list_indent = deeper(&property_indent, unit);
    let new_definition = |name: &str, description: &str| {
        Element::with_children(
            STRING_PARAMETER,
            vec![
                Element::leaf("name", name),
                Element::leaf("description", description),
                Element::leaf("defaultValue", ""),
                Element::leaf("trim", "false"),
            ],
        )
    };
    let Some(p) = properties.position(PARAMETERS_PROPERTY) else {
        let definitions = GREG_PARAMETERS
            .iter()
            .map(|(name, description)| new_definition(name, description))
            .collect();
        properties.append(
            Element::with_children(
                PARAMETERS_PROPERTY,
                vec![Element::with_children("parameterDefinitions", definitions)],
            ),
            indent,
            unit,
        );
        actions.extend(
            GREG_PARAMETERS
                .iter()
                .map(|(name, _)| format!("added parameter {name}")),
        );
        return;
    };
    let Some(property) = properties.element_mut(p) else {
        return;
    };
    let l = match property.position("parameterDefinitions") {
        Some(l) => l,
        None => {
            property.append(Element::new("parameterDefinitions"), &property_indent, unit);
            match property.position("parameterDefinitions") {
                Some(l) => l,
                None => return,
            }
        }
    };
    let Some(list) = property.element_mut(l) else {
        return;
    };
    let declared: Vec<String> = list
        .elements()
        .filter_map(|(_, d)| d.child_text("name"))
        .collect();
    for (name, description) in GREG_PARAMETERS {
        if !declared.iter().any(|d| d == name) {
            list.append(new_definition(name, description), &list_indent, unit);
            actions.push(format!("added parameter {name}"));
        }
    }
}
