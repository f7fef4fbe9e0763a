//! The Homeward server: the API, sign-in, storage, the escalation engine and its notifications.
//!
//! Layers, each using only those below it (`server/tests/layers.rs` fails on an import that runs
//! upward; the few that still do are listed there, to be taken out):
//!
//! ```text
//! http   routes/ (handlers, extractors), openapi, state, startup, admin (the CLI), demo
//! jobs   escalation::scheduler, notify::deliverer (loops that fire timers and send messages)
//! domain escalation/ (ladder, ownership, signals, safety net), notify/ (outbox, channels),
//!        auth/ (passwords, device sign-in), live, shared_boards, import
//! store  store/: SQL only, one module per table family, and the read models (board, export, ...)
//! db     db/: pools, the backend, the write gate, codecs
//! base   clock, configuration, cli, error, telemetry: used by every layer
//! ```

pub mod admin;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod configuration;
pub mod db;
pub mod demo;
pub mod error;
pub mod escalation;
pub mod import;
pub mod live;
pub mod notify;
pub mod openapi;
pub mod routes;
pub mod shared_boards;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;

pub use homeward_shared::Timestamp;
