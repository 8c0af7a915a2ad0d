//! greg-engine.
