//! The thin actix-web layer both fakes share: a server on `127.0.0.1:0` running on its own
//! thread and actix system (so it works from `#[tokio::test]`, from a tokio `main` and from
//! plain threads), a default service that turns every request into a framework-free
//! [`Request`], and a synchronous handler that answers a [`Reply`].

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;
use std::net::SocketAddr;

/// Largest request body the fakes accept (10 MiB, greg's own limit).
const BODY_LIMIT: usize = 10 * 1024 * 1024;

/// A request, framework-free.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Upper-case method.
    pub method: String,
    /// The path as sent (percent-encoded), without the query.
    pub path: String,
    /// Path segments, percent-decoded; empty segments (from `//` or a trailing `/`) dropped.
    pub segments: Vec<String>,
    /// The raw query string.
    pub raw_query: String,
    /// Query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Request {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, when it parses.
    pub fn json(&self) -> Option<Value> {
        if self.body.is_empty() {
            return None;
        }
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as a form, when the content type says so.
    pub fn form(&self) -> Option<Vec<(String, String)>> {
        let ct = self.header("content-type")?;
        ct.starts_with("application/x-www-form-urlencoded")
            .then(|| parse_query(&String::from_utf8_lossy(&self.body)))
    }
}

/// A response, framework-free.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type: "application/json; charset=utf-8",
            body: body.to_string(),
        }
    }

    /// A text answer.
    pub fn text(status: u16, content_type: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type,
            body: body.into(),
        }
    }

    /// An empty answer.
    pub fn empty(status: u16) -> Self {
        Self::text(status, "text/plain", "")
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// Decodes `%XX` escapes (and `+` as space when `plus` is set); invalid escapes stay as is.
pub(crate) fn percent_decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `a=1&b=2` (form or query encoding).
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn to_request(req: &HttpRequest, body: Bytes) -> Request {
    let path = req.path().to_owned();
    let raw_query = req.query_string().to_owned();
    Request {
        method: req.method().as_str().to_ascii_uppercase(),
        segments: path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s, false))
            .collect(),
        query: parse_query(&raw_query),
        raw_query,
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        path,
        body,
    }
}

fn to_response(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut b = HttpResponse::build(status);
    for (k, v) in reply.headers {
        b.append_header((k, v));
    }
    if reply.body.is_empty() && (status == StatusCode::NO_CONTENT || status.is_redirection()) {
        return b.finish();
    }
    b.content_type(reply.content_type).body(reply.body)
}

/// Starts a server on `127.0.0.1:0` answering every request with `handler`; `init` runs first
/// inside the server's actix system (spawn background tasks there with
/// `actix_web::rt::spawn`). Returns the bound address and the handle that stops it.
pub(crate) fn serve<H, I>(
    name: &str,
    handler: H,
    init: I,
) -> std::io::Result<(SocketAddr, ServerHandle)>
where
    H: Fn(Request) -> Reply + Send + Sync + Clone + 'static,
    I: FnOnce() + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("{name}-fake"))
        .spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let app_handler = handler.clone();
                let bound = HttpServer::new(move || {
                    let h = app_handler.clone();
                    App::new()
                        .app_data(web::PayloadConfig::new(BODY_LIMIT))
                        .default_service(web::to(move |req: HttpRequest, body: Bytes| {
                            let h = h.clone();
                            async move { to_response(h(to_request(&req, body))) }
                        }))
                })
                .workers(2)
                .disable_signals()
                .shutdown_timeout(1)
                .bind(("127.0.0.1", 0));
                let server = match bound {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let Some(addr) = server.addrs().first().copied() else {
                    let _ = tx.send(Err(std::io::Error::other("server bound no address")));
                    return;
                };
                let running = server.run();
                init();
                let _ = tx.send(Ok((addr, running.handle())));
                let _ = running.await;
            });
        })?;
    rx.recv()
        .map_err(|_| std::io::Error::other("fake server thread ended before binding"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_and_queries() {
        assert_eq!(percent_decode("heads%2Ffeature", false), "heads/feature");
        assert_eq!(percent_decode("a+b%20c", true), "a b c");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(
            parse_query("builder=jenkins&token=a%26b&flag"),
            [
                ("builder".to_owned(), "jenkins".to_owned()),
                ("token".to_owned(), "a&b".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
    }
}
