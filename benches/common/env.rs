//! Benchmark settings from the environment, shared by the benches that take them.

use anyhow::Context as _;

/// The positive integer in environment variable `name`, or `default` when it is unset.
///
/// # Errors
/// The variable is set to anything but a positive integer (surrounding blanks allowed); the
/// message names the variable and its value.
pub fn positive(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("{name}: expected a positive integer, got `{v}`")),
        Err(_) => Ok(default),
    }
}
