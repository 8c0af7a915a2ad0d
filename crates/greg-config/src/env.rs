//! `${ENV_VAR}` and `${file:PATH}` expansion of string values, and the per-parse context
//! that the validating `Deserialize` impls of [`crate::validate`] read.
//!
//! Grammar, applied to every string value of config.yaml (never to keys):
//!
//! - `${NAME}` is replaced by the value of the environment variable `NAME`; `NAME` is
//!   letters, digits and `_`, not starting with a digit. An unset variable is an error; a
//!   variable set to the empty string expands to the empty string.
//! - `${file:PATH}` is replaced by the content of the file at `PATH` (relative paths are
//!   relative to config.yaml's directory), with one trailing newline (`\n` or `\r\n`)
//!   removed, as secret files usually end with one. A file that cannot be read is an
//!   error naming the path; the content is never shown.
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
         starting with a digit) or `file:` and a path; write `$$` for a literal `$`"
    )]
    BadName,
    /// `${file:PATH}` whose file could not be read. `path` is the path as resolved (not a
    /// secret); `reason` is the IO error, which never quotes the content.
    #[error("cannot read the secret file `{path}`: {reason}")]
    File {
        /// The path greg tried, relative paths resolved against config.yaml's directory.
        path: String,
        /// Why reading failed (`No such file or directory (os error 2)`, ...).
        reason: String,
    },
}

/// One `${...}` reference in a value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reference {
    /// `${NAME}`: an environment variable.
    Var(String),
    /// `${file:PATH}`: a file, `PATH` as written.
    File(String),
}

/// The prefix of a `${file:PATH}` reference.
const FILE_PREFIX: &str = "file:";

/// Expands `raw`, asking `lookup` for each `${NAME}` / `${file:PATH}` in order of
/// appearance. `lookup` answers a variable with `Ok(None)` when it is unset.
pub(crate) fn expand_with(
    raw: &str,
    mut lookup: impl FnMut(Reference) -> Result<Option<String>, ExpandError>,
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
            let reference = match name.strip_prefix(FILE_PREFIX) {
                Some(path) if !path.is_empty() => Reference::File(path.to_owned()),
                _ if is_var_name(name) => Reference::Var(name.to_owned()),
                _ => return Err(ExpandError::BadName),
            };
            let value = lookup(reference)?.ok_or_else(|| ExpandError::Unset(name.to_owned()))?;
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

/// The references in `raw`, in order, up to the first malformed one (the typed pass
/// reports that one with its line).
pub(crate) fn references(raw: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let _ = expand_with(raw, |reference| {
        found.push(reference);
        Ok(Some(String::new()))
    });
    found
}

/// A secret file's content with one trailing newline (`\n` or `\r\n`) removed.
pub(crate) fn trim_one_newline(mut content: String) -> String {
    if content.ends_with('\n') {
        content.pop();
        if content.ends_with('\r') {
            content.pop();
        }
    }
    content
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
    /// Every referenced `${file:PATH}` (path as written) and its trimmed content or the
    /// error reading it.
    pub files: HashMap<String, Result<String, ExpandError>>,
    /// Keys present under `providers` (`github`, `bitbucket`).
    pub providers: Vec<String>,
    /// Keys present under `builders` (`jenkins`).
    pub builders: Vec<String>,
    /// Whether `server.session_secret` is present (`providers.github.oauth` needs it).
    pub session_secret: bool,
}

impl Context {
    /// Expands `raw` against the recorded environment and files.
    pub fn expand(&self, raw: &str) -> Result<String, ExpandError> {
        expand_with(raw, |reference| match reference {
            Reference::Var(name) => Ok(self.vars.get(&name).cloned().flatten()),
            Reference::File(path) => self.read_file(&path).map(Some),
        })
    }

    /// The content of the file at `path` (as written), read before the typed pass.
    pub fn read_file(&self, path: &str) -> Result<String, ExpandError> {
        match self.files.get(path) {
            Some(read) => read.clone(),
            None => Err(ExpandError::File {
                path: path.to_owned(),
                reason: "internal error: the file was not read".to_owned(),
            }),
        }
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
        expand_with(raw, |reference| match reference {
            Reference::Var(name) => Ok(env(&name)),
            Reference::File(path) if path == "/run/secrets/token" => Ok(Some("f1le".into())),
            Reference::File(path) => Err(ExpandError::File {
                path,
                reason: "not found".into(),
            }),
        })
    }

    #[test]
    fn file_references_expand_to_the_file_content() {
        assert_eq!(expand("${file:/run/secrets/token}").as_deref(), Ok("f1le"));
        assert_eq!(
            expand("x${file:/run/secrets/token}${TOKEN}").as_deref(),
            Ok("xf1let0k")
        );
        assert_eq!(
            expand("${file:/nope}"),
            Err(ExpandError::File {
                path: "/nope".into(),
                reason: "not found".into()
            })
        );
        assert_eq!(expand("${file:}"), Err(ExpandError::BadName));
        assert_eq!(expand("$${file:/nope}").as_deref(), Ok("${file:/nope}"));
    }

    #[test]
    fn one_trailing_newline_is_trimmed() {
        assert_eq!(trim_one_newline("t0k\n".into()), "t0k");
        assert_eq!(trim_one_newline("t0k\r\n".into()), "t0k");
        assert_eq!(trim_one_newline("t0k\n\n".into()), "t0k\n");
        assert_eq!(trim_one_newline("t0k".into()), "t0k");
        assert_eq!(trim_one_newline(" t0k \n".into()), " t0k ");
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
        let var = |n: &str| Reference::Var(n.to_owned());
        assert_eq!(
            references("${A} $${B} ${C_1} ${file:x/y}"),
            [var("A"), var("C_1"), Reference::File("x/y".into())]
        );
        assert_eq!(references("${A} ${"), [var("A")]);
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
