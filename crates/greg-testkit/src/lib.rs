//! greg-testkit.
