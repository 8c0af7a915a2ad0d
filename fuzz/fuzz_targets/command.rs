//! The comment grammar (`greg_command::parse_comment`) must not panic on any comment, and a
//! comment without a `g` commands nothing (every name of the bot has one). The check is on
//! the letter, not on the name: Markdown the grammar hides (strikethrough, HTML, link text)
//! glues the text around it, so `gre~~x~~g please` reads as `greg please` (docs/fuzzing.md),
//! and an entity (`&#103;`) decodes to a `g`.
#![no_main]

use greg_command::{Addressing, parse_comment};
use greg_core::Login;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    let addressing = Addressing {
        bot_name: "greg".to_owned(),
        bot_login: Some(Login::from("greg-bot[bot]")),
    };
    let results = parse_comment(&body, &Login::from("alice"), &addressing);
    for result in &results {
        match result {
            Ok(command) => {
                let _ = format!("{command:?}");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    if !body.contains(['g', 'G', '&']) {
        assert!(results.is_empty(), "commands without a g: {results:?}");
    }
    // The bot's own comments are never commands.
    assert!(parse_comment(&body, &Login::from("greg-bot[bot]"), &addressing).is_empty());
});
