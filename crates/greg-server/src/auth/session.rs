//! The session and OAuth-state cookies (sealed with the `cookie` crate's private jar), random
//! tokens, CSRF checks, and small form bodies read with a limit.
//!
//! Both cookies are `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` when greg is served
//! over https (`server.public_url`, or the request's scheme). `SameSite=Lax` still sends
//! them on the top-level GET that GitHub's redirect to `/oauth/callback` is.

use super::Viewer;
use actix_web::HttpRequest;
use actix_web::web;
use base64::Engine as _;
use cookie::{Cookie, CookieJar, Key, SameSite};
use futures::StreamExt;
use greg_core::Login;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "greg_session";
/// The OAuth state cookie's name (set by `/login`, read by `/oauth/callback`).
pub(crate) const STATE_COOKIE: &str = "greg_oauth_state";
/// How long a session lasts: 12 hours.
pub(crate) const SESSION_MS: i64 = 12 * 3600 * 1000;
/// How long a sign-in may take between `/login` and `/oauth/callback`: 10 minutes.
pub(crate) const STATE_MS: i64 = 10 * 60 * 1000;
/// The largest form body greg reads (the reviewer list, a logout); larger is 413.
pub(crate) const FORM_LIMIT: usize = 16 * 1024;

/// What the session cookie seals.
#[derive(Serialize, Deserialize)]
struct Session {
    /// Login.
    l: String,
    /// CSRF token.
    c: String,
    /// Expiry, engine clock, unix milliseconds.
    e: i64,
}

/// What the state cookie seals.
#[derive(Serialize, Deserialize)]
pub(crate) struct PendingSignIn {
    /// The `state` sent to GitHub.
    pub(crate) state: String,
    /// Where to go after signing in (a same-site path).
    pub(crate) next: String,
    /// Expiry, engine clock, unix milliseconds.
    pub(crate) expires_ms: i64,
}

/// 32 random bytes from the OS, URL-safe base64 (43 characters); `None` when the OS random
/// source fails (then nothing is signed in).
pub(crate) fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    match getrandom::fill(&mut bytes) {
        Ok(()) => Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)),
        Err(e) => {
            tracing::error!(error = %e, "The OS random source failed");
            None
        }
    }
}

/// Whether `given` equals `expected`, in constant time (both non-empty).
pub(crate) fn csrf_matches(expected: &str, given: Option<&str>) -> bool {
    match given {
        Some(g) if !expected.is_empty() && !g.is_empty() => {
            bool::from(expected.as_bytes().ct_eq(g.as_bytes()))
        }
        _ => false,
    }
}

/// The cookie named `name` of `req` opened with `key`: `None` when absent, tampered with or
/// sealed under another key.
fn open(req: &HttpRequest, key: &Key, name: &str) -> Option<String> {
    let mut jar = CookieJar::new();
    for header in req.headers().get_all("cookie") {
        let Ok(text) = header.to_str() else { continue };
        for c in Cookie::split_parse(text.to_owned()).flatten() {
            if c.name() == name {
                jar.add_original(c.into_owned());
            }
        }
    }
    jar.private(key).get(name).map(|c| c.value().to_owned())
}

/// The viewer of the session cookie, if it opens and has not expired at `now_ms`.
pub(crate) fn read_session(req: &HttpRequest, key: &Key, now_ms: i64) -> Option<Viewer> {
    let text = open(req, key, SESSION_COOKIE)?;
    let s: Session = serde_json::from_str(&text).ok()?;
    (s.e > now_ms && !s.l.is_empty() && !s.c.is_empty()).then_some(Viewer {
        login: Login(s.l),
        csrf_token: s.c,
    })
}

/// The pending sign-in of the state cookie, if it opens and has not expired at `now_ms`.
pub(crate) fn read_pending(req: &HttpRequest, key: &Key, now_ms: i64) -> Option<PendingSignIn> {
    let text = open(req, key, STATE_COOKIE)?;
    let p: PendingSignIn = serde_json::from_str(&text).ok()?;
    (p.expires_ms > now_ms).then_some(p)
}

/// `Set-Cookie` for a new session of `login` until `now_ms` + [`SESSION_MS`].
pub(crate) fn session_cookie(
    key: &Key,
    login: &Login,
    csrf: String,
    now_ms: i64,
    secure: bool,
) -> String {
    let s = Session {
        l: login.as_str().to_owned(),
        c: csrf,
        e: now_ms.saturating_add(SESSION_MS),
    };
    sealed(key, SESSION_COOKIE, &s, SESSION_MS, secure)
}

/// `Set-Cookie` for a pending sign-in.
pub(crate) fn pending_cookie(key: &Key, pending: &PendingSignIn, secure: bool) -> String {
    sealed(key, STATE_COOKIE, pending, STATE_MS, secure)
}

/// `Set-Cookie` that removes cookie `name`.
pub(crate) fn removal(name: &str, secure: bool) -> String {
    let mut c = attributes(Cookie::new(name.to_owned(), ""), secure);
    c.make_removal();
    c.to_string()
}

fn sealed(key: &Key, name: &str, value: &impl Serialize, max_age_ms: i64, secure: bool) -> String {
    // Serializing these plain structs cannot fail.
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut c = attributes(Cookie::new(name.to_owned(), text), secure);
    c.set_max_age(cookie::time::Duration::milliseconds(max_age_ms));
    let mut jar = CookieJar::new();
    jar.private_mut(key).add(c);
    jar.get(name).map(ToString::to_string).unwrap_or_default()
}

fn attributes(mut c: Cookie<'static>, secure: bool) -> Cookie<'static> {
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/");
    c.set_secure(secure);
    c
}

/// Why a form was not read.
pub(crate) enum FormError {
    /// Over [`FORM_LIMIT`]: 413.
    TooLarge,
    /// Not readable (a broken connection, not UTF-8): 400.
    Bad(String),
}

/// Reads an `application/x-www-form-urlencoded` body of at most [`FORM_LIMIT`] bytes
/// (by Content-Length first, then while reading) into its fields.
pub(crate) async fn read_form(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Vec<(String, String)>, FormError> {
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > FORM_LIMIT) {
        return Err(FormError::TooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| FormError::Bad(format!("could not read the form: {e}")))?;
        if body.len() + chunk.len() > FORM_LIMIT {
            return Err(FormError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(url::form_urlencoded::parse(&body).into_owned().collect())
}

/// The first value of field `name`.
pub(crate) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `next` if it is a path on this site (`/…`, not `//…` nor `/\…`, no control character),
/// else `/`: no open redirect.
pub(crate) fn same_site_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 2000
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_site_paths_are_followed_after_sign_in() {
        for (next, expected) in [
            (Some("/queue/acme/demo?x=1"), "/queue/acme/demo?x=1"),
            (Some("//evil.example.com/"), "/"),
            (Some("/\\evil.example.com"), "/"),
            (Some("https://evil.example.com/"), "/"),
            (Some("/a\r\nb"), "/"),
            (Some(""), "/"),
            (None, "/"),
        ] {
            assert_eq!(same_site_path(next), expected, "{next:?}");
        }
    }

    #[test]
    fn csrf_tokens_compare_whole_and_never_empty() {
        assert!(csrf_matches("abc", Some("abc")));
        assert!(!csrf_matches("abc", Some("abd")));
        assert!(!csrf_matches("abc", Some("ab")));
        assert!(!csrf_matches("abc", None));
        assert!(!csrf_matches("", Some("")));
    }

    #[test]
    fn a_sealed_cookie_carries_the_flags_and_not_the_login_in_clear() {
        let key = Key::derive_from(&[7u8; 32]);
        let text = session_cookie(&key, &Login::from("alice"), "t0k3n".into(), 0, false);
        assert!(text.starts_with("greg_session="), "{text}");
        assert!(text.contains("HttpOnly"), "{text}");
        assert!(text.contains("SameSite=Lax"), "{text}");
        assert!(text.contains("Path=/"), "{text}");
        assert!(!text.contains("Secure"), "{text}");
        assert!(!text.contains("alice") && !text.contains("t0k3n"), "{text}");
        let secure = session_cookie(&key, &Login::from("alice"), "t".into(), 0, true);
        assert!(secure.contains("Secure"), "{secure}");
    }

    #[test]
    fn random_tokens_differ() {
        let a = random_token().expect("random");
        let b = random_token().expect("random");
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
