//! The web pages' common parts (SPEC §9): the layout every page extends
//! (`templates/base.html`), the one stylesheet (`static/style.css`, served at
//! `/static/style.css`), the 404 page, and the security headers every page carries.
//!
//! Templates are askama's: compiled into the binary and type-checked with the code, and
//! HTML-escaped by default, so a pull-request title or a test name can never inject markup.

use crate::auth::Viewer;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

pub(crate) mod repo;

/// The stylesheet, embedded.
const STYLE: &str = include_str!("../static/style.css");

/// Content-Security-Policy of every page: no script at all, styles only from greg.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self' https: http:; base-uri 'none'; frame-ancestors 'none'";

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/style.css", web::get().to(style))
        .configure(repo::configure);
}

async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(STYLE)
}

/// What the layout shows around every page: who is signed in, whether sign-in is offered,
/// the CSRF token for the sign-out form, and greg's version.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chrome {
    /// The signed-in user's login, if any.
    pub(crate) viewer: Option<String>,
    /// Sign-in is configured (`providers.github.oauth`): show "Sign in with GitHub".
    pub(crate) sign_in: bool,
    /// The session's CSRF token (empty when nobody is signed in).
    pub(crate) csrf_token: String,
    /// greg's version.
    pub(crate) version: &'static str,
}

impl Chrome {
    /// The chrome for `viewer` (None: anonymous); `sign_in`: OAuth is configured.
    pub(crate) fn new(viewer: Option<&Viewer>, sign_in: bool) -> Self {
        Self {
            viewer: viewer.map(|v| v.login.to_string()),
            sign_in,
            csrf_token: viewer.map(|v| v.csrf_token.clone()).unwrap_or_default(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFound<'a> {
    chrome: Chrome,
    message: &'a str,
}

/// Renders `page` as a `status` answer with the page headers (CSP, no sniffing, no framing,
/// not cached by shared caches). A template that fails to render (it cannot, short of a bug)
/// is logged and answered 500 with a one-line text.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("content-security-policy", CSP))
            .insert_header(("x-content-type-options", "nosniff"))
            .insert_header(("referrer-policy", "same-origin"))
            .insert_header(("cache-control", "private, no-cache"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "A page template failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("the page could not be rendered\n")
        }
    }
}

/// The 404 page with a one-line `message` (say, "repository acme/x is not configured").
pub(crate) fn not_found(chrome: Chrome, message: &str) -> HttpResponse {
    render(StatusCode::NOT_FOUND, &NotFound { chrome, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_404_page_escapes_its_message() {
        let page = NotFound {
            chrome: Chrome::new(None, true),
            message: "<script>x</script>",
        };
        let html = page.render().expect("renders");
        assert!(
            html.contains("&#60;script&#62;x&#60;/script&#62;") || html.contains("&lt;script&gt;")
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("Sign in with GitHub"));
    }
}
