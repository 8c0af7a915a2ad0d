//! greg-config.
