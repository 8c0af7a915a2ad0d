//! The load generators' HTTP/1.1 client, shared by `benches/ingest.rs` and `benches/memory.rs`
//! (each includes it with `#[path = "common/http.rs"] mod http;`): signed GitHub deliveries
//! prepared once, only the delivery id written per request, the answer read by
//! `Content-Length`. Minimal on purpose, so that it takes as little CPU from greg as it can.
#![allow(dead_code)]

use anyhow::Context as _;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub const SYNCHRONIZE_JSON: &str =
    include_str!("../../tests/data/github/pull_request.synchronize.json");
pub const COMMENT_JSON: &str =
    include_str!("../../tests/data/github/issue_comment.created.on-pull-request.json");
/// The largest answer head the client accepts.
const MAX_HEAD: usize = 16 * 1024;

/// One signed delivery, ready to send but for its delivery id.
pub struct Fixture {
    /// The request line and every header but `X-GitHub-Delivery`, ending in `\r\n`.
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

impl Fixture {
    /// Rewrites `repository.full_name` of the vendor payload `json` to `repo`, signs it with
    /// `secret` and prepares the request head for `addr` (`POST /repo?provider=github&token=`).
    pub fn new(
        json: &str,
        event: &str,
        repo: &str,
        token: &str,
        secret: &str,
        addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        let mut payload: serde_json::Value = serde_json::from_str(json)?;
        let name = payload
            .pointer_mut("/repository/full_name")
            .context("the fixture has no repository.full_name")?;
        *name = serde_json::Value::from(repo);
        let body = serde_json::to_vec(&payload)?;
        let signature = greg_testkit::sign(secret, &body);
        let head = format!(
            "POST /repo?provider=github&token={token} HTTP/1.1\r\n\
             Host: {addr}\r\n\
             User-Agent: GitHub-Hookshot/bench\r\n\
             Content-Type: application/json\r\n\
             X-GitHub-Event: {event}\r\n\
             X-Hub-Signature-256: {signature}\r\n\
             Content-Length: {}\r\n",
            body.len()
        );
        Ok(Self {
            head: head.into_bytes(),
            body,
        })
    }

    /// The whole request with delivery id `id`, into `out`.
    pub fn write_request(&self, id: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"X-GitHub-Delivery: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
    }
}

/// One answer as the client read it.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub close: bool,
}

impl Answer {
    /// `Some(seq)` for `202 accepted: delivery N queued`; `Err` with a one-line kind otherwise.
    pub fn accepted_seq(&self) -> Result<i64, String> {
        let text = String::from_utf8_lossy(&self.body);
        match text.strip_prefix("accepted: delivery ") {
            Some(rest) if self.status == 202 => Ok(rest
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)),
            _ => Err(format!(
                "{} {}",
                self.status,
                text.lines().next().unwrap_or("").trim()
            )),
        }
    }
}

/// A keep-alive connection that reconnects after an error or `Connection: close`.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    pending: Vec<u8>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            pending: Vec::with_capacity(4 * 1024),
        }
    }

    /// Sends `request` and reads its answer.
    pub async fn send(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        let result = async {
            let s = match self.stream.as_mut() {
                Some(s) => s,
                None => {
                    let s = TcpStream::connect(self.addr).await?;
                    s.set_nodelay(true)?;
                    self.stream.insert(s)
                }
            };
            s.write_all(request).await?;
            read_answer(s, &mut self.pending).await
        }
        .await;
        match &result {
            Ok(a) if a.close => self.stream = None,
            Ok(_) => {}
            Err(_) => {
                self.stream = None;
                self.pending.clear();
            }
        }
        result
    }
}

/// Reads one HTTP/1.1 answer (status line, headers, `Content-Length` body) from `stream`;
/// `pending` keeps bytes read past it.
async fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>) -> std::io::Result<Answer> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let head_len = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if pending.len() > MAX_HEAD {
            return Err(invalid("answer head too large"));
        }
        if stream.read_buf(pending).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    };
    let head = std::str::from_utf8(&pending[..head_len]).map_err(|_| invalid("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let mut length = None;
    let mut close = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let length = length.ok_or_else(|| invalid("answer without Content-Length"))?;
    while pending.len() < head_len + length {
        if stream.read_buf(pending).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    let body = pending[head_len..head_len + length].to_vec();
    pending.drain(..head_len + length);
    Ok(Answer {
        status,
        body,
        close,
    })
}

/// A run id for delivery ids, different between runs.
pub fn run_id() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0)
}

/// A GUID-shaped delivery id, unique per run, connection and request.
pub fn delivery_id(run_id: u32, connection: usize, n: u64) -> String {
    format!("{run_id:08x}-{connection:04x}-4000-8000-{n:012x}")
}
