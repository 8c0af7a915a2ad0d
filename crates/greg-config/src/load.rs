//! Reading config.yaml: one pass over the plain YAML tree to find the `${ENV}` variables,
//! the `${file:PATH}` files and the configured provider and builder names, then the typed
//! pass of [`crate::schema`] with those installed as the [`crate::env`] context.

use crate::env::{self, Context, ExpandError, Reference};
use crate::error::ConfigError;
use crate::model::Config;
use crate::schema::FileConfig;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::Path;
use yaml_serde::Value;

/// Where `${...}` references get their values, for
/// [`Config::from_yaml_str_with`](Config::from_yaml_str_with).
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// Answers `${NAME}` (`None`: not set).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Reads the file of a `${file:PATH}` as UTF-8 text; it is given `PATH` already joined
    /// to [`base_dir`](Self::base_dir) when relative.
    pub file: &'a dyn Fn(&Path) -> io::Result<String>,
    /// The directory relative `${file:PATH}` paths are relative to: config.yaml's own.
    pub base_dir: &'a Path,
}

impl std::fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

/// The file reader of [`Config::from_yaml_str`]: it reads nothing.
fn refuse_files(_: &Path) -> io::Result<String> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "secret files are read only when the configuration is loaded from a file",
    ))
}

impl Config {
    /// Parses config.yaml text. `env` answers `${NAME}` lookups (`None`: not set); it is
    /// called once per distinct variable the document references, and the function does no
    /// other IO. Errors name the file as `config.yaml`; see [`ConfigError`].
    ///
    /// # Errors
    ///
    /// Malformed YAML, an unknown or duplicate key, a missing required key, an unset
    /// variable or a bad value (see the crate docs for every check).
    ///
    /// A `${file:PATH}` reference is an error here (this function reads no files); use
    /// [`from_yaml_str_with`](Self::from_yaml_str_with) or [`load`](Self::load).
    pub fn from_yaml_str(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::from_yaml_str_with(
            text,
            Sources {
                env,
                file: &refuse_files,
                base_dir: Path::new("."),
            },
        )
    }

    /// Parses config.yaml text, answering `${NAME}` from `sources.env` and `${file:PATH}`
    /// from `sources.file` (one trailing newline of the content removed). Each distinct
    /// variable and file is looked up once; the function does no other IO. Errors name the
    /// file as `config.yaml`; see [`ConfigError`].
    ///
    /// # Errors
    ///
    /// As [`from_yaml_str`](Self::from_yaml_str), plus a file that cannot be read
    /// ([`ConfigErrorKind::Io`](crate::ConfigErrorKind::Io), naming the key, the line and
    /// the path, never the content).
    pub fn from_yaml_str_with(text: &str, sources: Sources<'_>) -> Result<Config, ConfigError> {
        let tree: Value = yaml_serde::from_str(text).map_err(|e| ConfigError::from_yaml(&e))?;
        if tree.is_null() {
            return Err(ConfigError::empty());
        }
        let mut references = BTreeSet::new();
        collect_references(&tree, &mut references);
        let vars: HashMap<String, Option<String>> = references
            .iter()
            .filter_map(|r| match r {
                Reference::Var(name) => Some((name.clone(), (sources.env)(name))),
                Reference::File(_) => None,
            })
            .collect();
        if let Some(path) = key_file_path(&tree, &vars) {
            references.insert(Reference::File(path));
        }
        let mut files = HashMap::new();
        for reference in references {
            match reference {
                Reference::Var(_) => {}
                Reference::File(written) => {
                    let path = sources.base_dir.join(&written);
                    let read = (sources.file)(&path)
                        .map(env::trim_one_newline)
                        .map_err(|e| ExpandError::File {
                            path: path.display().to_string(),
                            reason: e.to_string(),
                        });
                    files.insert(written, read);
                }
            }
        }
        let ctx = Context {
            vars,
            files,
            providers: section_keys(&tree, "providers"),
            builders: section_keys(&tree, "builders"),
            session_secret: tree
                .get("server")
                .and_then(|s| s.get("session_secret"))
                .is_some_and(|v| !v.is_null()),
        };
        let file: FileConfig = env::scoped(ctx, || yaml_serde::from_str(text))
            .map_err(|e| ConfigError::from_yaml(&e))?;
        Ok(Config::from(file))
    }

    /// Reads and parses the file at `path`, expanding `${NAME}` from the process
    /// environment (a variable whose value is not valid UTF-8 counts as not set) and
    /// `${file:PATH}` from the file system, relative paths against `path`'s directory.
    /// Errors name the file by `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or anything
    /// [`from_yaml_str_with`](Self::from_yaml_str_with) rejects.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(file.clone(), &e))?;
        let env = |name: &str| std::env::var(name).ok();
        let read = |p: &Path| std::fs::read_to_string(p);
        let base_dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let sources = Sources {
            env: &env,
            file: &read,
            base_dir,
        };
        Config::from_yaml_str_with(&text, sources).map_err(|e| e.with_file(file))
    }
}

/// `providers.github.app.private_key_path`, expanded, when the document has one that
/// expands (the typed pass reports one that does not).
fn key_file_path(tree: &Value, vars: &HashMap<String, Option<String>>) -> Option<String> {
    let raw = tree
        .get("providers")?
        .get("github")?
        .get("app")?
        .get("private_key_path")?
        .as_str()?;
    env::expand_with(raw, |reference| match reference {
        Reference::Var(name) => Ok(vars.get(&name).cloned().flatten()),
        Reference::File(_) => Err(ExpandError::BadName),
    })
    .ok()
    .filter(|path| !path.trim().is_empty())
}

/// Every `${NAME}` and `${file:PATH}` in the tree's string values (keys are never
/// expanded).
fn collect_references(value: &Value, names: &mut BTreeSet<Reference>) {
    match value {
        Value::String(s) => names.extend(env::references(s)),
        Value::Sequence(items) => items.iter().for_each(|v| collect_references(v, names)),
        Value::Mapping(map) => map.values().for_each(|v| collect_references(v, names)),
        Value::Tagged(tagged) => collect_references(&tagged.value, names),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The string keys of the top-level mapping `section` (`providers`, `builders`) whose value
/// is a mapping: `github:` with nothing under it configures nothing.
fn section_keys(tree: &Value, section: &str) -> Vec<String> {
    tree.get(section)
        .and_then(Value::as_mapping)
        .map(|map| {
            map.iter()
                .filter(|(_, v)| v.is_mapping())
                .filter_map(|(k, _)| k.as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
