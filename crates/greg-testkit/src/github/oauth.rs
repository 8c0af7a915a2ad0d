//! The OAuth web flow of [`super::FakeGithub`] (greg's sign-in, SPEC §9), as GitHub documents
//! it (<https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps>):
//!
//! - `GET /login/oauth/authorize?client_id&redirect_uri&state`: the person the test chose
//!   ([`World::sign_in_as`]) "clicks Authorize": 302 to `redirect_uri?code=…&state=…` (the
//!   same `state`). Nobody chosen: 403. An unknown client id: 404.
//! - `POST /login/oauth/access_token` (form or JSON): the code (once) for a user token, as
//!   JSON; GitHub's 200 `{"error": "bad_verification_code"}` for an unknown or used code,
//!   `incorrect_client_credentials` for a wrong client id or secret.
//! - `GET /user` with a user token (`Bearer` or `token`): that user.

use super::json;
use crate::http::{Reply, Request};
use crate::world::World;
use serde_json::json;

/// Answers the routes of this module; `None` for any other request (a `GET /user` with
/// greg's own token included).
pub(super) fn route(world: &World, req: &Request) -> Option<Reply> {
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match (req.method.as_str(), seg.as_slice()) {
        ("GET", ["login", "oauth", "authorize"]) => Some(authorize(world, req)),
        ("POST", ["login", "oauth", "access_token"]) => Some(access_token(world, req)),
        ("GET", ["user"]) => user(world, req),
        _ => None,
    }
}

fn authorize(world: &World, req: &Request) -> Reply {
    let (Some(client_id), Some(redirect_uri), Some(state)) = (
        req.query("client_id"),
        req.query("redirect_uri"),
        req.query("state"),
    ) else {
        return Reply::text(
            400,
            "text/plain",
            "client_id, redirect_uri and state are required",
        );
    };
    world.update(|s| {
        let oauth = &mut s.github.oauth;
        if oauth.app.as_ref().is_some_and(|(id, _)| id != client_id) {
            return Reply::text(404, "text/plain", "no such OAuth app");
        }
        let Some(user) = oauth.user.clone() else {
            return Reply::text(403, "text/plain", "nobody signs in (World::sign_in_as)");
        };
        oauth.next += 1;
        let code = format!("code-{}", oauth.next);
        oauth.codes.insert(code.clone(), user);
        let query = url_encode(&[("code", &code), ("state", state)]);
        let sep = if redirect_uri.contains('?') { '&' } else { '?' };
        Reply::empty(302).with_header("location", format!("{redirect_uri}{sep}{query}"))
    })
}

fn access_token(world: &World, req: &Request) -> Reply {
    let params: Vec<(String, String)> = match req.form() {
        Some(form) => form,
        None => req
            .json()
            .and_then(|v| v.as_object().cloned())
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let error = |code: &str, description: &str| {
        Reply::json(
            200,
            &json!({
                "error": code,
                "error_description": description,
                "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors",
            }),
        )
    };
    world.update(|s| {
        let oauth = &mut s.github.oauth;
        if let Some((id, secret)) = &oauth.app
            && (get("client_id") != id || get("client_secret") != secret)
        {
            return error(
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
            );
        }
        let Some(user) = oauth.codes.remove(get("code")) else {
            return error(
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            );
        };
        oauth.next += 1;
        let token = format!("gho_fake{:08}", oauth.next);
        oauth.tokens.insert(token.clone(), user);
        oauth.issued.push(token.clone());
        Reply::json(
            200,
            &json!({"access_token": token, "token_type": "bearer", "scope": ""}),
        )
    })
}

fn user(world: &World, req: &Request) -> Option<Reply> {
    let auth = req.header("authorization")?;
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .or_else(|| auth.strip_prefix("token "))?;
    world.read(|s| {
        let login = s.github.oauth.tokens.get(token)?;
        Some(Reply::json(200, &json::user(&s.github.api_url, login)))
    })
}

/// `k=v&…`, form-encoded.
fn url_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
