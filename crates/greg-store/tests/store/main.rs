//! greg-store's behaviour, run on every backend (see `common`): SQLite file, SQLite in
//! memory, and PostgreSQL when `GREG_TEST_POSTGRES_URL` is set.

mod approvals;
mod builds;
mod common;
mod connect;
mod deliveries;
mod effects;
mod leases;
mod queue;
mod reports;
mod titles;
