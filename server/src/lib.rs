//! The Homeward server: API, auth, storage and (soon) the escalation scheduler.

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
