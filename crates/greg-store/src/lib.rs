//! greg-store.
