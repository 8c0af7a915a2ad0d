//! Job config.xml, read and written the way the fake Jenkins needs: the declared parameters
//! (`hudson.model.*ParameterDefinition` names inside `parameterDefinitions`) and the
//! Notification plugin's endpoints (`com.tikal.hudson.plugins.notification.Endpoint`, legacy
//! `<url>` or `<urlInfo><urlOrId>`; format in tests/data/SOURCES.md and the JJB fixtures under
//! tests/data/jenkins/config/). A regex reading, not an XML parser: enough for the configs
//! Jenkins, Job Builder and greg's fix-hooks write.

use super::jenkins::phase_name;
use greg_core::{BuildOutcome, BuildPhase};
use regex::Regex;
use std::sync::LazyLock;

/// The config.xml of a freestyle job declaring string parameters `params`.
pub fn config_xml_for(params: &[&str]) -> String {
    let defs: String = params
        .iter()
        .map(|p| {
            format!(
                "        <hudson.model.StringParameterDefinition>\n          <name>{}</name>\n          <defaultValue></defaultValue>\n          <trim>false</trim>\n        </hudson.model.StringParameterDefinition>\n",
                xml_escape(p)
            )
        })
        .collect();
    format!(
        "<?xml version='1.1' encoding='UTF-8'?>\n<project>\n  <description></description>\n  <keepDependencies>false</keepDependencies>\n  <properties>\n    <hudson.model.ParametersDefinitionProperty>\n      <parameterDefinitions>\n{defs}      </parameterDefinitions>\n    </hudson.model.ParametersDefinitionProperty>\n  </properties>\n  <scm class=\"hudson.scm.NullSCM\"/>\n  <canRoam>true</canRoam>\n  <disabled>false</disabled>\n  <triggers/>\n  <concurrentBuild>true</concurrentBuild>\n  <builders/>\n  <publishers/>\n  <buildWrappers/>\n</project>\n"
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

static PARAM_BLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)<parameterDefinitions>(.*?)</parameterDefinitions>").expect("static regex")
});
static NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<name>(.*?)</name>").expect("static regex"));
static ENDPOINT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?s)<com\.tikal\.hudson\.plugins\.notification\.Endpoint>(.*?)</com\.tikal\.hudson\.plugins\.notification\.Endpoint>",
    )
    .expect("static regex")
});

fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].trim())
}

/// The parameter names a config.xml declares (every `<name>` inside `<parameterDefinitions>`).
pub fn declared_parameters(config_xml: &str) -> Vec<String> {
    PARAM_BLOCK
        .captures_iter(config_xml)
        .flat_map(|block| {
            let inner = block.get(1).map_or("", |m| m.as_str()).to_owned();
            NAME.captures_iter(&inner)
                .filter_map(|c| c.get(1).map(|m| xml_unescape(m.as_str().trim())))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The HTTP/JSON notification endpoints a config.xml declares, as `(url, event)`; endpoints
/// with another protocol or format, or a credential id instead of a URL, are left out.
pub fn declared_endpoints(config_xml: &str) -> Vec<(String, String)> {
    ENDPOINT
        .captures_iter(config_xml)
        .filter_map(|c| {
            let body = c.get(1)?.as_str();
            let protocol = element(body, "protocol").unwrap_or("HTTP");
            let format = element(body, "format").unwrap_or("JSON");
            if protocol != "HTTP" || format != "JSON" {
                return None;
            }
            let url = match element(body, "urlInfo") {
                Some(info) => {
                    if element(info, "urlType").unwrap_or("PUBLIC") != "PUBLIC" {
                        return None;
                    }
                    element(info, "urlOrId")?
                }
                None => element(body, "url")?,
            };
            let event = element(body, "event").unwrap_or("all");
            Some((xml_unescape(url), event.to_owned()))
        })
        .collect()
}

/// Whether an endpoint's `event` filter lets `phase` through (`Phase.isRun`).
pub(crate) fn event_matches(event: &str, phase: BuildPhase, result: Option<BuildOutcome>) -> bool {
    match event {
        "all" => true,
        "failed" => phase == BuildPhase::Finalized && result == Some(BuildOutcome::Failure),
        "failedAndFirstSuccess" => {
            phase == BuildPhase::Finalized
                && matches!(result, Some(BuildOutcome::Failure | BuildOutcome::Success))
        }
        other => other.eq_ignore_ascii_case(phase_name(phase)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::jenkins::GREG_PARAMETERS;

    fn fixture(path: &str) -> String {
        let full = format!("{}/../../tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(full).expect("fixture")
    }

    #[test]
    fn endpoints_are_read_from_config_xml() {
        // Legacy `<url>` form, JSON, event all.
        assert_eq!(
            declared_endpoints(&fixture("jenkins/config/notification-endpoint.jjb-001.xml")),
            [(
                "http://example.com/jenkins_endpoint".to_owned(),
                "all".to_owned()
            )]
        );
        // XML format: the fake only sends JSON, so the endpoint is left out.
        assert_eq!(
            declared_endpoints(&fixture("jenkins/config/notification-endpoint.jjb-002.xml")),
            []
        );
        // Modern `<urlInfo>`, with an escaped `&`; a SECRET credential id is left out.
        let xml = "<com.tikal.hudson.plugins.notification.Endpoint><event>finalized</event>\
            <urlInfo><urlOrId>http://greg/build?builder=jenkins&amp;token=t</urlOrId><urlType>PUBLIC</urlType></urlInfo>\
            </com.tikal.hudson.plugins.notification.Endpoint>\
            <com.tikal.hudson.plugins.notification.Endpoint>\
            <urlInfo><urlOrId>cred-id</urlOrId><urlType>SECRET</urlType></urlInfo>\
            </com.tikal.hudson.plugins.notification.Endpoint>";
        assert_eq!(
            declared_endpoints(xml),
            [(
                "http://greg/build?builder=jenkins&token=t".to_owned(),
                "finalized".to_owned()
            )]
        );
    }

    #[test]
    fn event_filters_follow_phase_is_run() {
        use BuildPhase::*;
        assert!(event_matches("all", Queued, None));
        assert!(event_matches(
            "finalized",
            Finalized,
            Some(BuildOutcome::Success)
        ));
        assert!(!event_matches(
            "finalized",
            Completed,
            Some(BuildOutcome::Success)
        ));
        assert!(event_matches(
            "failed",
            Finalized,
            Some(BuildOutcome::Failure)
        ));
        assert!(!event_matches(
            "failed",
            Finalized,
            Some(BuildOutcome::Unstable)
        ));
        assert!(!event_matches("manual", Started, None));
    }

    #[test]
    fn parameters_are_read_from_config_xml() {
        assert_eq!(
            declared_parameters(&config_xml_for(GREG_PARAMETERS)),
            GREG_PARAMETERS
        );
        assert_eq!(declared_parameters(&config_xml_for(&["A&B"])), ["A&B"]);
        assert!(declared_parameters("<project/>").is_empty());
    }
}
