//! Jenkins Notification-plugin parsing (`greg_jenkins::parse_notification`) must not panic
//! on any body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match greg_jenkins::parse_notification(data) {
        Ok(inbound) => {
            let _ = format!("{inbound:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
