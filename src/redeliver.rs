//! `greg redeliver SEQ…` (SPEC §11): runs dead-lettered deliveries again through the running
//! greg's admin API (`POST /api/deliveries/{seq}/redeliver` with `server.admin_token`), on
//! `server.public_url`, or on the listen address when there is none. One line per delivery;
//! exit 0 when every one was queued again, 1 when any was not, 2 for bad usage or
//! configuration (SPEC §7).

use greg_config::Config;
use std::process::ExitCode;
use std::time::Duration;

/// Redelivers each of `seqs` (as typed on the command line).
pub async fn run(config: &Config, seqs: &[String]) -> ExitCode {
    let Some(token) = config.server.admin_token.as_ref() else {
        eprintln!("error: server.admin_token is not set; the admin API is off");
        return ExitCode::from(2);
    };
    let mut parsed = Vec::with_capacity(seqs.len());
    for s in seqs {
        match s.parse::<i64>() {
            Ok(n) if n > 0 => parsed.push(n),
            _ => {
                eprintln!("error: `{s}` is not a delivery sequence number");
                return ExitCode::from(2);
            }
        }
    }
    let base = base_url(config);
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot build an HTTP client: {e}");
            return ExitCode::from(1);
        }
    };
    let mut all_ok = true;
    for seq in parsed {
        let url = format!("{base}/api/deliveries/{seq}/redeliver");
        let answer = client.post(&url).bearer_auth(token.expose()).send().await;
        let line = match answer {
            Ok(r) if r.status().as_u16() == 202 => "redelivered".to_owned(),
            Ok(r) => {
                all_ok = false;
                let status = r.status().as_u16();
                let reason = r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                format!("not redelivered: {status} {reason}")
            }
            Err(e) => {
                all_ok = false;
                // reqwest's error names the URL, which carries no secret (the token is a header).
                format!("not redelivered: greg does not answer at {base}: {e}")
            }
        };
        println!("{seq}: {line}");
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Where the running greg answers: `server.public_url`, or `http://` and the listen address
/// (a wildcard address reached on loopback).
fn base_url(config: &Config) -> String {
    if let Some(url) = &config.server.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let listen = &config.server.listen;
    let listen = if let Some(port) = listen.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = listen.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        listen.clone()
    };
    format!("http://{listen}")
}
