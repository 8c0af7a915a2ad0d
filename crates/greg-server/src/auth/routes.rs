//! `GET /login`, `GET /oauth/callback`, `GET /logout` (a confirm form) and `POST /logout`
//! (SPEC §9).
//!
//! `/login` seals a random `state` and the page to return to in a 10-minute cookie and
//! redirects to GitHub; `/oauth/callback` checks the `state` GitHub echoes against that
//! cookie (constant time; a mismatch or no cookie is 400), exchanges the code, reads the
//! login, sets the session cookie and returns to the page. `POST /logout` needs the
//! session's CSRF token (403 without it) and removes the cookie. No answer or log line
//! carries the code, a token or a secret.

use super::session::{
    self, FormError, PendingSignIn, SESSION_COOKIE, STATE_COOKIE, STATE_MS, field, same_site_path,
};
use super::{SignIn, sign_in_of, viewer};
use crate::pages::{Chrome, render};
use crate::routes::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login))
        .route("/oauth/callback", web::get().to(callback))
        .route("/logout", web::get().to(logout_form))
        .route("/logout", web::post().to(logout));
}

/// A one-message page (sign-in problems, refusals).
#[derive(Template)]
#[template(path = "auth_message.html")]
pub(crate) struct MessagePage<'a> {
    pub(crate) chrome: Chrome,
    pub(crate) title: &'a str,
    pub(crate) message: &'a str,
}

/// The sign-out confirmation (for a `GET /logout`).
#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    chrome: Chrome,
}

/// A [`MessagePage`] answer.
pub(crate) fn message(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    title: &str,
    text: &str,
) -> HttpResponse {
    let chrome = Chrome::new(
        viewer(req, state).as_ref(),
        super::sign_in_configured(state),
    );
    render(
        status,
        &MessagePage {
            chrome,
            title,
            message: text,
        },
    )
}

/// Whether cookies get `Secure`: greg is served over https.
fn secure(sign_in: &SignIn, req: &HttpRequest) -> bool {
    match &sign_in.public_url {
        Some(u) => u.starts_with("https://"),
        None => req.connection_info().scheme() == "https",
    }
}

/// greg's callback URL: `<server.public_url>/oauth/callback`, or from the request's host.
fn callback_url(sign_in: &SignIn, req: &HttpRequest) -> String {
    match &sign_in.public_url {
        Some(u) => format!("{u}/oauth/callback"),
        None => {
            let info = req.connection_info();
            format!("{}://{}/oauth/callback", info.scheme(), info.host())
        }
    }
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    let Some(sign_in) = sign_in_of(&state) else {
        return sign_in_off(&req, &state);
    };
    let Ok(oauth) = &sign_in.oauth else {
        return unavailable(&req, &state);
    };
    let Some(token) = session::random_token() else {
        return unavailable(&req, &state);
    };
    let pending = PendingSignIn {
        state: token,
        next: same_site_path(query.next.as_deref()),
        expires_ms: state.engine().now_ms().saturating_add(STATE_MS),
    };
    let secure = secure(sign_in, &req);
    let location = oauth.authorize_url(&callback_url(sign_in, &req), &pending.state);
    HttpResponse::Found()
        .insert_header(("location", location))
        .insert_header(("cache-control", "no-store"))
        .insert_header((
            "set-cookie",
            session::pending_cookie(&sign_in.key, &pending, secure),
        ))
        .finish()
}

/// The 404 page of `/login` and `/oauth/callback` when `providers.github.oauth` is not set.
fn sign_in_off(req: &HttpRequest, state: &AppState) -> HttpResponse {
    message(
        req,
        state,
        StatusCode::NOT_FOUND,
        "Sign-in is off",
        "greg has no sign-in configured (providers.github.oauth).",
    )
}

fn unavailable(req: &HttpRequest, state: &AppState) -> HttpResponse {
    message(
        req,
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in is unavailable",
        "greg cannot sign you in right now; the server log says why.",
    )
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    let Some(sign_in) = sign_in_of(&state) else {
        return sign_in_off(&req, &state);
    };
    let Ok(oauth) = &sign_in.oauth else {
        return unavailable(&req, &state);
    };
    let secure = secure(sign_in, &req);
    let now = state.engine().now_ms();
    let pending = session::read_pending(&req, &sign_in.key, now);
    let state_ok = pending
        .as_ref()
        .is_some_and(|p| session::csrf_matches(&p.state, query.state.as_deref()));
    let refuse = |status: StatusCode, title: &str, text: &str| {
        let mut answer = message(&req, &state, status, title, text);
        if let Ok(v) =
            actix_web::http::header::HeaderValue::from_str(&session::removal(STATE_COOKIE, secure))
        {
            answer
                .headers_mut()
                .append(actix_web::http::header::SET_COOKIE, v);
        }
        answer
    };
    if !state_ok {
        tracing::warn!(
            had_cookie = pending.is_some(),
            "Sign-in refused: the state does not match"
        );
        return refuse(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The sign-in could not be matched to this browser (it expired, or came from \
             elsewhere). Start again from the sign-in link.",
        );
    }
    if query.error.is_some() {
        return refuse(
            StatusCode::FORBIDDEN,
            "Sign-in cancelled",
            "GitHub did not authorize the sign-in.",
        );
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "GitHub's answer carries no code.",
        );
    };
    let login = match oauth.exchange(code, &callback_url(sign_in, &req)).await {
        Ok(token) => oauth.user(&token).await,
        Err(e) => Err(e),
    };
    let login = match login {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "Sign-in failed at GitHub");
            let status = if e.is_retryable() {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::FORBIDDEN
            };
            return refuse(
                status,
                "Sign-in failed",
                "GitHub did not confirm the sign-in. Start again from the sign-in link.",
            );
        }
    };
    let Some(csrf) = session::random_token() else {
        return unavailable(&req, &state);
    };
    let next = pending.map_or_else(|| "/".to_owned(), |p| same_site_path(Some(&p.next)));
    tracing::info!(user = %login, "Signed in");
    HttpResponse::SeeOther()
        .insert_header(("location", next))
        .insert_header(("cache-control", "no-store"))
        .append_header((
            "set-cookie",
            session::session_cookie(&sign_in.key, &login, csrf, now, secure),
        ))
        .append_header(("set-cookie", session::removal(STATE_COOKIE, secure)))
        .finish()
}

async fn logout_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let v = viewer(&req, &state);
    if v.is_none() {
        return HttpResponse::SeeOther()
            .insert_header(("location", "/"))
            .finish();
    }
    let chrome = Chrome::new(v.as_ref(), super::sign_in_configured(&state));
    render(StatusCode::OK, &LogoutPage { chrome })
}

async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let form = match session::read_form(&req, payload).await {
        Ok(f) => f,
        Err(e) => return form_refusal(&req, &state, &e),
    };
    let Some(v) = viewer(&req, &state) else {
        return message(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            "Not signed in",
            "There is no session to end.",
        );
    };
    if !session::csrf_matches(&v.csrf_token, field(&form, "csrf_token")) {
        return csrf_refusal(&req, &state);
    }
    let secure = sign_in_of(&state).is_some_and(|s| secure(s, &req));
    tracing::info!(user = %v.login, "Signed out");
    HttpResponse::SeeOther()
        .insert_header(("location", "/"))
        .insert_header(("cache-control", "no-store"))
        .insert_header(("set-cookie", session::removal(SESSION_COOKIE, secure)))
        .finish()
}

/// 403 for a form without the session's CSRF token.
pub(crate) fn csrf_refusal(req: &HttpRequest, state: &AppState) -> HttpResponse {
    message(
        req,
        state,
        StatusCode::FORBIDDEN,
        "Forbidden",
        "The form's CSRF token is missing or does not match your session. Reload the page and \
         try again.",
    )
}

/// 413 or 400 for a form that was not read.
pub(crate) fn form_refusal(req: &HttpRequest, state: &AppState, e: &FormError) -> HttpResponse {
    match e {
        FormError::TooLarge => message(
            req,
            state,
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too large",
            &format!("A form may hold at most {} bytes.", session::FORM_LIMIT),
        ),
        FormError::Bad(why) => message(req, state, StatusCode::BAD_REQUEST, "Bad form", why),
    }
}
