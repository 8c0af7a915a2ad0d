//! Bitbucket Server webhook parsing (`greg_bitbucket::webhook::parse`) must not panic on any
//! body or known event name. Input: selector byte (event name, see `greg_fuzz`), then the body.
#![no_main]

use greg_bitbucket::Flavor;
use greg_fuzz::{SERVER_EVENTS, split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (headers, body) = split(data, greg_bitbucket::webhook::EVENT_HEADER, SERVER_EVENTS);
    match greg_bitbucket::webhook::parse(Flavor::Server, &headers, body) {
        Ok(parsed) => {
            let _ = format!("{parsed:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = greg_bitbucket::webhook::delivery_id(Flavor::Server, &headers);
});
