//! `${file:PATH}` secrets: the value comes from the file with one trailing newline removed,
//! relative paths are relative to config.yaml's directory, and a file that cannot be read
//! is an error naming the key, the line and the path but never the content.

use greg_config::{Config, ConfigError, ConfigErrorKind, Sources};
use std::io;
use std::path::Path;

/// A Greg-style document whose GitHub token and Jenkins password come from files.
const YAML: &str = r#"providers:
  github:
    username: greg
    password: ${file:/run/secrets/github_token}
    incoming_token: hunter2-incoming
    source: "git@github.com:"
builders:
  jenkins:
    url: https://ci.example.com
    username: greg
    password: ${file:secrets/jenkins_token}
    incoming_token: ${JENKINS_INCOMING}
repos:
  - provider: github
    organizations: [acme]
    names: [demo]
"#;

fn env(name: &str) -> Option<String> {
    (name == "JENKINS_INCOMING").then(|| "incoming-from-env".to_owned())
}

/// An in-memory file system: the GitHub token ends with a newline, the Jenkins one
/// (relative, under `/etc/greg`) with CRLF.
fn files(path: &Path) -> io::Result<String> {
    match path.to_str() {
        Some("/run/secrets/github_token") => Ok("ghp_fromfile\n".to_owned()),
        Some("/etc/greg/secrets/jenkins_token") => Ok("jenkins-fromfile\r\n".to_owned()),
        _ => Err(io::Error::from(io::ErrorKind::NotFound)),
    }
}

fn parse(yaml: &str) -> Result<Config, ConfigError> {
    let sources = Sources {
        env: &env,
        file: &files,
        base_dir: Path::new("/etc/greg"),
    };
    Config::from_yaml_str_with(yaml, sources)
}

#[test]
fn values_come_from_files_with_one_trailing_newline_trimmed() {
    let config = match parse(YAML) {
        Ok(config) => config,
        Err(err) => panic!("rejected: {err}"),
    };
    let github = config
        .providers
        .github
        .as_ref()
        .map(|g| g.password.expose());
    assert_eq!(github, Some("ghp_fromfile"));
    let jenkins = config
        .builders
        .jenkins
        .as_ref()
        .map(|j| j.password.expose());
    assert_eq!(jenkins, Some("jenkins-fromfile"));
    let incoming = config
        .builders
        .jenkins
        .as_ref()
        .map(|j| j.incoming_token.expose());
    assert_eq!(incoming, Some("incoming-from-env"));
}

#[test]
fn only_one_trailing_newline_is_trimmed() {
    let two = |_: &Path| Ok("tok\n\n".to_owned());
    let sources = Sources {
        env: &env,
        file: &two,
        base_dir: Path::new("/etc/greg"),
    };
    let config = Config::from_yaml_str_with(YAML, sources).map_err(|e| e.to_string());
    let github = config
        .as_ref()
        .ok()
        .and_then(|c| c.providers.github.as_ref())
        .map(|g| g.password.expose().to_owned());
    assert_eq!(github.as_deref(), Some("tok\n"), "{config:?}");
}

#[test]
fn a_missing_file_names_the_path_key_and_line_but_not_the_content() {
    let yaml = YAML.replace("secrets/jenkins_token", "secrets/missing");
    let err = match parse(&yaml) {
        Ok(_) => panic!("accepted a missing file"),
        Err(err) => err,
    };
    assert_eq!(err.kind, ConfigErrorKind::Io);
    assert_eq!(err.line, Some(11));
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("fromfile"), "content leaked: {shown}");
    insta::assert_snapshot!(format!("{err}\nkey: {}", err.key.as_deref().unwrap_or("-")));
}

#[test]
fn from_yaml_str_reads_no_files() {
    let err = match Config::from_yaml_str(YAML, &env) {
        Ok(_) => panic!("read a file"),
        Err(err) => err,
    };
    assert_eq!(err.kind, ConfigErrorKind::Io);
    assert_eq!(err.line, Some(4));
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn load_resolves_relative_paths_against_the_config_directory() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("temp dir: {err}"),
    };
    let secrets = dir.path().join("secrets");
    let github = dir.path().join("github_token");
    let written = std::fs::create_dir(&secrets)
        .and_then(|()| std::fs::write(secrets.join("jenkins_token"), "jenkins-fromdisk\n"))
        .and_then(|()| std::fs::write(&github, "ghp_fromdisk\n"));
    assert!(written.is_ok(), "{written:?}");
    let yaml = YAML
        .replace("/run/secrets/github_token", &github.display().to_string())
        .replace("${JENKINS_INCOMING}", "literal-incoming");
    let path = dir.path().join("config.yaml");
    assert!(std::fs::write(&path, yaml).is_ok());
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(err) => panic!("rejected: {err}"),
    };
    let github = config
        .providers
        .github
        .as_ref()
        .map(|g| g.password.expose());
    assert_eq!(github, Some("ghp_fromdisk"));
    let jenkins = config
        .builders
        .jenkins
        .as_ref()
        .map(|j| j.password.expose());
    assert_eq!(jenkins, Some("jenkins-fromdisk"));
}

/// `YAML` with the GitHub token replaced by an app whose key is `key_line`.
fn with_app(key_line: &str) -> String {
    YAML.replace(
        "    password: ${file:/run/secrets/github_token}\n",
        &format!("    app:\n      id: 42\n{key_line}"),
    )
}

fn app_of(config: &Config) -> Option<(u64, String, Option<u64>)> {
    let app = config.providers.github.as_ref()?.app.as_ref()?;
    Some((
        app.id,
        app.private_key.expose().to_owned(),
        app.installation_id,
    ))
}

#[test]
fn a_github_app_key_comes_from_private_key_path_relative_to_the_config() {
    let yaml =
        with_app("      private_key_path: secrets/jenkins_token\n      installation_id: 7\n");
    let config = match parse(&yaml) {
        Ok(config) => config,
        Err(err) => panic!("rejected: {err}"),
    };
    assert_eq!(
        app_of(&config),
        Some((42, "jenkins-fromfile".to_owned(), Some(7)))
    );
    let password = config
        .providers
        .github
        .as_ref()
        .map(|g| g.password.expose());
    assert_eq!(password, Some(""));
    let yaml = with_app("      private_key: ${file:/run/secrets/github_token}\n");
    let config = parse(&yaml).map_err(|e| e.to_string());
    assert_eq!(
        config.as_ref().ok().and_then(app_of),
        Some((42, "ghp_fromfile".to_owned(), None)),
        "{config:?}"
    );
}

#[test]
fn a_github_app_errors_name_the_key_and_line() {
    let cases = [
        (
            "both_credentials",
            YAML.replace(
                "    incoming_token: hunter2-incoming\n",
                "    app: {id: 42, private_key: x}\n    incoming_token: hunter2-incoming\n",
            ),
        ),
        (
            "no_credentials",
            YAML.replace("    password: ${file:/run/secrets/github_token}\n", ""),
        ),
        (
            "missing_key_file",
            with_app("      private_key_path: /nope.pem\n"),
        ),
        ("no_key", with_app("      installation_id: 7\n")),
        (
            "zero_id",
            with_app("      private_key: x\n").replace("id: 42", "id: 0"),
        ),
    ];
    let mut shown = String::new();
    for (name, yaml) in cases {
        match parse(&yaml) {
            Ok(_) => panic!("{name}: accepted:\n{yaml}"),
            Err(err) => shown.push_str(&format!(
                "{name}: {err}\n  key: {}\n",
                err.key.as_deref().unwrap_or("-")
            )),
        }
    }
    assert!(!shown.contains("fromfile") && !shown.contains("hunter2"));
    insta::assert_snapshot!(shown);
}
