//! Reading config.yaml: one pass over the plain YAML tree to find the `${ENV}` variables
//! and the configured provider and builder names, then the typed pass of [`crate::schema`]
//! with those installed as the [`crate::env`] context.

use crate::env::{self, Context};
use crate::error::ConfigError;
use crate::model::Config;
use crate::schema::FileConfig;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use yaml_serde::Value;

impl Config {
    /// Parses config.yaml text. `env` answers `${NAME}` lookups (`None`: not set); it is
    /// called once per distinct variable the document references, and the function does no
    /// other IO. Errors name the file as `config.yaml`; see [`ConfigError`].
    ///
    /// # Errors
    ///
    /// Malformed YAML, an unknown or duplicate key, a missing required key, an unset
    /// variable or a bad value (see the crate docs for every check).
    pub fn from_yaml_str(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let tree: Value = yaml_serde::from_str(text).map_err(|e| ConfigError::from_yaml(&e))?;
        if tree.is_null() {
            return Err(ConfigError::empty());
        }
        let mut names = BTreeSet::new();
        collect_references(&tree, &mut names);
        let ctx = Context {
            vars: names
                .into_iter()
                .map(|name| {
                    let value = env(&name);
                    (name, value)
                })
                .collect::<HashMap<_, _>>(),
            providers: section_keys(&tree, "providers"),
            builders: section_keys(&tree, "builders"),
        };
        let file: FileConfig = env::scoped(ctx, || yaml_serde::from_str(text))
            .map_err(|e| ConfigError::from_yaml(&e))?;
        Ok(Config::from(file))
    }

    /// Reads and parses the file at `path`, expanding `${NAME}` from the process
    /// environment (a variable whose value is not valid UTF-8 counts as not set). Errors
    /// name the file by `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or anything [`from_yaml_str`](Self::from_yaml_str) rejects.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(file.clone(), &e))?;
        let env = |name: &str| std::env::var(name).ok();
        Config::from_yaml_str(&text, &env).map_err(|e| e.with_file(file))
    }
}

/// Every `${NAME}` in the tree's string values (keys are never expanded).
fn collect_references(value: &Value, names: &mut BTreeSet<String>) {
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
