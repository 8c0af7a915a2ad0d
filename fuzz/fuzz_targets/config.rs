//! The config loader (`greg_config::Config::from_yaml_str_with`) must not panic on any text.
//! Every `${NAME}` is set (`APPROVALS` to 2) except names starting with `UNSET`, and every `${file:PATH}` reads
//! as `file-secret`, so expansion is exercised as well as the schema.
#![no_main]

use greg_config::{Config, Sources};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| match name {
        n if n.starts_with("UNSET") => None,
        "APPROVALS" => Some("2".to_owned()),
        n => Some(format!("value-of-{n}")),
    };
    let file = |_: &Path| Ok("file-secret\n".to_owned());
    let sources = Sources {
        env: &env,
        file: &file,
        base_dir: Path::new("/etc/greg"),
    };
    if let Err(e) = Config::from_yaml_str_with(text, sources) {
        let _ = e.to_string();
    }
});
