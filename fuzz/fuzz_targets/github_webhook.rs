//! GitHub webhook parsing (`greg_github::webhook::parse_event`) must not panic on any body
//! or known event name. Input: selector byte (event name, see `greg_fuzz`), then the body.
#![no_main]

use greg_fuzz::{GITHUB_EVENTS, split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (headers, body) = split(data, greg_github::webhook::EVENT_HEADER, GITHUB_EVENTS);
    if let Err(e) = greg_github::webhook::parse_event(&headers, body) {
        let _ = e.to_string();
    }
});
