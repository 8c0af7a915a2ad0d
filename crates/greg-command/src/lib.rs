//! greg-command.
