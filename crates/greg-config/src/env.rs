//! `${ENV_VAR}` expansion of string values, and the per-parse context that the validating
//! `Deserialize` impls of [`crate::validate`] read.
//!
//! Grammar, applied to every string value of config.yaml (never to keys):
//!
//! - `${NAME}` is replaced by the value of the environment variable `NAME`; `NAME` is
//!   letters, digits and `_`, not starting with a digit. An unset variable is an error; a
//!   variable set to the empty string expands to the empty string.
//! - `$$` is a literal `$` (so `$${HOME}` is the text `${HOME}`).
//! - Any other `$` is kept as written, so a Greg password such as `pa$word` keeps working.
//! - Expansion is not recursive: a `${...}` inside a variable's value stays as it is.
//!
//! # Why a thread-local context
//!
//! Expansion happens *during* deserialization so that yaml_serde attaches the line of the
//! offending value to the error. serde's derived `Deserialize` cannot carry state, so
//! [`crate::load`] first reads the document as a plain YAML tree, looks up every variable
//! it references with the injected lookup function, and installs the answers (plus the
//! names configured under `providers` and `builders`, for reference checks) in a
//! thread-local [`Context`] for the duration of the typed pass. [`scoped`] restores the
//! previous context on exit, even on panic.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Why a string value could not be expanded. Messages never contain the value itself, which
/// may be a password; only a variable's name is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ExpandError {
    /// `${NAME}` names a variable that is not set.
    #[error("environment variable `{0}` is not set")]
    Unset(String),
    /// `${` without a closing `}`.
    #[error("`${{` without a closing `}}` (write `$${{` for a literal `${{`)")]
    Unterminated,
    /// `${...}` whose content is not a variable name.
    #[error(
        "`${{...}}` must hold an environment variable name (letters, digits and `_`, not \
         starting with a digit); write `$$` for a literal `$`"
    )]
    BadName,
}

/// Expands `raw`, asking `lookup` for each `${NAME}` in order of appearance.
pub(crate) fn expand_with(
    raw: &str,
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail.find('}').ok_or(ExpandError::Unterminated)?;
            let name = &tail[..end];
            if !is_var_name(name) {
                return Err(ExpandError::BadName);
            }
            let value = lookup(name).ok_or_else(|| ExpandError::Unset(name.to_owned()))?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The variable names `raw` references, in order, up to the first malformed reference (the
/// typed pass reports that one with its line).
pub(crate) fn references(raw: &str) -> Vec<String> {
    let mut names = Vec::new();
    let _ = expand_with(raw, |name| {
        names.push(name.to_owned());
        Some(String::new())
    });
    names
}

/// `[A-Za-z_][A-Za-z0-9_]*`, the POSIX shell's variable names.
fn is_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What the typed pass may consult: the environment as looked up before it started, and the
/// provider and builder names configured in the document.
#[derive(Debug, Default)]
pub(crate) struct Context {
    /// Every referenced variable and its value (`None`: not set).
    pub vars: HashMap<String, Option<String>>,
    /// Keys present under `providers` (`github`, `bitbucket`).
    pub providers: Vec<String>,
    /// Keys present under `builders` (`jenkins`).
    pub builders: Vec<String>,
}

impl Context {
    /// Expands `raw` against the recorded environment.
    pub fn expand(&self, raw: &str) -> Result<String, ExpandError> {
        expand_with(raw, |name| self.vars.get(name).cloned().flatten())
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Context>>> = const { RefCell::new(None) };
}

/// Runs `f` with `ctx` installed as this thread's context.
pub(crate) fn scoped<R>(ctx: Context, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Rc<Context>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.borrow_mut().replace(Rc::new(ctx)));
    let _restore = Restore(previous);
    f()
}

/// This thread's context; `None` outside [`scoped`].
pub(crate) fn current() -> Option<Rc<Context>> {
    CURRENT.with(|c| c.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("t0k".to_owned()),
            "EMPTY" => Some(String::new()),
            "NESTED" => Some("${TOKEN}".to_owned()),
            _ => None,
        }
    }

    fn expand(raw: &str) -> Result<String, ExpandError> {
        expand_with(raw, env)
    }

    #[test]
    fn expands_whole_and_embedded_references() {
        assert_eq!(expand("${TOKEN}").as_deref(), Ok("t0k"));
        assert_eq!(expand("Bearer ${TOKEN}!").as_deref(), Ok("Bearer t0k!"));
        assert_eq!(expand("${TOKEN}${TOKEN}").as_deref(), Ok("t0kt0k"));
        assert_eq!(expand("a${EMPTY}b").as_deref(), Ok("ab"));
    }

    #[test]
    fn double_dollar_is_a_literal_dollar_and_lone_dollars_stay() {
        assert_eq!(expand("$${TOKEN}").as_deref(), Ok("${TOKEN}"));
        assert_eq!(expand("pa$$word").as_deref(), Ok("pa$word"));
        assert_eq!(expand("pa$word $ 5$").as_deref(), Ok("pa$word $ 5$"));
        assert_eq!(expand("$$$${TOKEN}").as_deref(), Ok("$${TOKEN}"));
        assert_eq!(expand("$$${TOKEN}").as_deref(), Ok("$t0k"));
    }

    #[test]
    fn expansion_is_not_recursive() {
        assert_eq!(expand("${NESTED}").as_deref(), Ok("${TOKEN}"));
    }

    #[test]
    fn errors_name_the_variable_but_never_the_value() {
        assert_eq!(
            expand("x ${MISSING} y"),
            Err(ExpandError::Unset("MISSING".into()))
        );
        assert_eq!(expand("hunter2${TOKEN"), Err(ExpandError::Unterminated));
        assert_eq!(expand("${}"), Err(ExpandError::BadName));
        assert_eq!(expand("${1X}"), Err(ExpandError::BadName));
        assert_eq!(expand("${A-B}"), Err(ExpandError::BadName));
        for err in [ExpandError::Unterminated, ExpandError::BadName] {
            assert!(!err.to_string().contains("hunter2"));
        }
        assert_eq!(
            ExpandError::Unset("MISSING".into()).to_string(),
            "environment variable `MISSING` is not set"
        );
    }

    #[test]
    fn references_lists_names_in_order() {
        assert_eq!(references("${A} $${B} ${C_1}"), ["A", "C_1"]);
        assert_eq!(references("${A} ${"), ["A"]);
        assert!(references("plain").is_empty());
    }

    #[test]
    fn scoped_context_is_visible_inside_and_restored_after() {
        assert!(current().is_none());
        let ctx = Context {
            providers: vec!["github".into()],
            ..Context::default()
        };
        scoped(ctx, || {
            let inner = current().map(|c| c.providers.clone());
            assert_eq!(inner, Some(vec!["github".to_owned()]));
        });
        assert!(current().is_none());
    }
}
