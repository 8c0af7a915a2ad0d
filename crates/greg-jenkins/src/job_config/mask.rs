//! Secrets out of printed text: the `token=` of greg's callback URL, the password of a URL's
//! user-info (the Notification plugin sends it as basic auth), and the content of config.xml
//! elements named like a secret (`<authToken>`, the job's "trigger builds remotely" token,
//! kept in plain text; `<password>`, `<secret>`). Used for `--dry-run` diffs and for any
//! endpoint URL greg prints.

use regex::{Captures, Regex};
use similar::TextDiff;
use std::sync::LazyLock;

/// A query or form value whose key ends in `token` (`token=`, `access_token=`), up to the
/// next `&` (also the one of an XML-escaped `&amp;`), `#`, quote, `<`, `>` or whitespace.
static TOKEN_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b([a-z0-9_.\-]*token)=([^&#<>"'\s]+)"#).expect("static regex")
});

/// The password of `scheme://user:password@host`.
static USERINFO_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b([a-z][a-z0-9+.\-]*://[^/?#@\s<>"':]*):([^/?#@\s<>"']+)@"#)
        .expect("static regex")
});

/// A one-line element `<name>value</name>`; the closure checks that both names are equal and
/// look like a secret's.
static ELEMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<([A-Za-z_][\w.\-]*)>([^<]+)</([A-Za-z_][\w.\-]*)>").expect("static regex")
});

/// What a masked value is replaced by.
const MASK: &str = "***";

/// Replaces secrets by `***`, remembering distinct values so that [`Masker::numbered`] can
/// tell them apart (`***1`, `***2`) without showing them.
struct Masker {
    numbered: bool,
    seen: Vec<String>,
}

impl Masker {
    fn numbered() -> Self {
        Masker {
            numbered: true,
            seen: Vec::new(),
        }
    }

    fn plain() -> Self {
        Masker {
            numbered: false,
            seen: Vec::new(),
        }
    }

    fn label(&mut self, secret: &str) -> String {
        if !self.numbered {
            return MASK.to_owned();
        }
        let n = match self.seen.iter().position(|s| s == secret) {
            Some(i) => i + 1,
            None => {
                self.seen.push(secret.to_owned());
                self.seen.len()
            }
        };
        format!("{MASK}{n}")
    }

    fn mask(&mut self, text: &str) -> String {
        let text = TOKEN_VALUE.replace_all(text, |c: &Captures<'_>| {
            format!("{}={}", &c[1], self.label(&c[2]))
        });
        let text = USERINFO_PASSWORD.replace_all(&text, |c: &Captures<'_>| {
            format!("{}:{}@", &c[1], self.label(&c[2]))
        });
        ELEMENT
            .replace_all(&text, |c: &Captures<'_>| {
                if c[1] == c[3] && is_secret_name(&c[1]) {
                    format!("<{}>{}</{}>", &c[1], self.label(&c[2]), &c[3])
                } else {
                    c[0].to_owned()
                }
            })
            .into_owned()
    }
}

/// True for element names that hold a secret: the last dotted segment ends in `token`,
/// `password` or `secret`, in any case (`authToken`, `password`, `webhookSecret`).
fn is_secret_name(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name).to_ascii_lowercase();
    ["token", "password", "secret"]
        .iter()
        .any(|suffix| last.ends_with(suffix))
}

/// Masks secrets in `text` for printing: every `…token=VALUE` query value (so
/// `https://greg.example.com/build?builder=jenkins&token=s3cret` becomes
/// `…&token=***`, also inside XML as `&amp;token=***`), the password of a URL's user-info
/// (`https://user:***@host/`), and the content of one-line XML elements named like a secret
/// (`<authToken>***</authToken>`). Empty values stay empty. Anything else is unchanged.
pub fn mask_token(text: &str) -> String {
    Masker::plain().mask(text)
}

/// A unified diff (3 lines of context, headers `--- a/{label}` and `+++ b/{label}`) from
/// `old` to `new`, for `greg fix-hooks --dry-run`; empty when the texts are equal. Both
/// texts are masked first as by [`mask_token`], except that distinct secrets are numbered
/// (`***1`, `***2`) so a changed token still shows as a changed line.
pub fn unified_diff(old: &str, new: &str, label: &str) -> String {
    if old == new {
        return String::new();
    }
    let mut masker = Masker::numbered();
    let old = masker.mask(old);
    let new = masker.mask(new);
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{label}"), &format!("b/{label}"))
        .to_string()
}
