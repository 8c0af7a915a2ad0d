//! greg-github.
