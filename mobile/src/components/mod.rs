//! Pieces of screens that take everything through their props.

mod field;
mod nav_link;
mod notices;
mod panic_button;
mod session_card;
mod status_bar;

pub use field::Field;
pub use nav_link::NavLink;
pub use notices::{Notices, Rejections};
pub use panic_button::PanicButton;
pub use session_card::{CardModel, SessionCard, StartOption};
pub use status_bar::{StatusBar, StatusModel};
