//! GitHub App routes of the fake: an app's JWT is exchanged for an installation token
//! (`POST /app/installations/{installation_id}/access_tokens`) and names the installation
//! of a repository (`GET /repos/{owner}/{repo}/installation`), as documented at
//! <https://docs.github.com/en/rest/apps/apps>. Other routes then accept the installation
//! token, which the test sets as [`GithubState::token`](crate::world::GithubState::token).
//!
//! The JWT must be well formed: three base64url parts, header `alg` `RS256`, claims `iss`
//! equal to the app id (number or string) and `exp` after `iat`. Its signature is not
//! checked.

use super::{DOCS, json};
use crate::http::{Reply, Request};
use crate::world::World;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The GitHub App the fake accepts, set in [`GithubState::app`](crate::world::GithubState::app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeApp {
    /// The app id, the JWT's `iss`.
    pub id: u64,
    /// The one installation, on every repository of the world.
    pub installation_id: u64,
    /// The installation token `POST .../access_tokens` hands out.
    pub token: String,
}

/// The answer to an app route, or `None` when the request is not one (or no app is set).
pub(super) fn route(world: &World, req: &Request) -> Option<Reply> {
    let app = world.read(|s| s.github.app.clone())?;
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let installation = match (req.method.as_str(), seg.as_slice()) {
        ("POST", ["app", "installations", id, "access_tokens"]) => Some(id.parse::<u64>().ok()),
        ("GET", ["repos", _, _, "installation"]) => None,
        _ => return None,
    };
    if let Err(why) = check_jwt(req.header("authorization"), app.id) {
        return Some(Reply::json(401, &json::error(&why, 401, DOCS)));
    }
    Some(match installation {
        Some(Some(id)) if id == app.installation_id => Reply::json(
            201,
            &json!({
                "token": app.token,
                "expires_at": "2099-01-01T00:00:00Z",
                "permissions": {"statuses": "write", "issues": "write"},
                "repository_selection": "all",
            }),
        ),
        Some(_) => Reply::json(404, &json::error("Not Found", 404, DOCS)),
        None => Reply::json(
            200,
            &json!({"id": app.installation_id, "app_id": app.id, "target_type": "Organization"}),
        ),
    })
}

/// Checks `Authorization: Bearer <JWT>` for app `app_id`; the error says what is wrong.
fn check_jwt(header: Option<&str>, app_id: u64) -> Result<(), String> {
    let jwt = header
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or("A JSON web token could not be decoded")?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [head, claims, signature] = parts.as_slice() else {
        return Err("A JSON web token could not be decoded".to_owned());
    };
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| format!("JWT part is not base64url: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("JWT part is not JSON: {e}"))
    };
    let (head, claims) = (decode(head)?, decode(claims)?);
    if head["alg"] != "RS256" {
        return Err(format!("JWT alg must be RS256, got {}", head["alg"]));
    }
    let iss_matches = claims["iss"].as_u64() == Some(app_id)
        || claims["iss"].as_str() == Some(app_id.to_string().as_str());
    if !iss_matches {
        return Err(format!("'Issuer' claim ('iss') must be {app_id}"));
    }
    match (claims["iat"].as_i64(), claims["exp"].as_i64()) {
        (Some(iat), Some(exp)) if exp > iat => {}
        _ => return Err("'Expiration time' claim ('exp') must be after 'iat'".to_owned()),
    }
    if signature.is_empty() {
        return Err("the JWT has no signature".to_owned());
    }
    Ok(())
}
