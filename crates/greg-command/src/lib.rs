//! greg-command: the grammar of the commands people give greg in pull-request comments
//! (SPEC §4), as pure functions with no IO.
//!
//! [`parse_comment`] turns a comment body into commands or user errors; [`help_text`] is the
//! reply to `@greg help`. The engine decides who may give which command (SPEC §4: write access
//! or a configured reviewer) and what each one does.

mod command;
mod help;
mod parser;
mod suggest;

pub use command::{Addressing, Argument, Command, CommandError, CommandKind};
pub use help::help_text;
pub use parser::parse_comment;
