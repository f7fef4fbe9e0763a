//! SQL, in small named functions per concept. Writes take a [`crate::db::WriteTx`] so a change and its
//! audit entry commit together or not at all.

pub mod alerts;
pub mod audit;
pub mod board;
pub mod export;
pub mod figures;
pub mod messages;
pub mod ping_group;
pub mod pings;
pub mod plans;
pub mod reviews;
pub mod rota;
pub mod schools;
pub mod sessions;
pub mod sign_ins;
pub mod signal_map;
pub mod users;
