//! greg-server.
