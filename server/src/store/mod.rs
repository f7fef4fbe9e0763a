//! SQL, in small named functions per concept. Writes take a [`crate::db::WriteTx`] so a change and its
//! audit entry commit together or not at all.

pub mod audit;
pub mod pings;
pub mod plans;
pub mod rota;
pub mod schools;
pub mod sessions;
pub mod users;
