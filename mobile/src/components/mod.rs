//! Pieces of screens that take everything through their props.

mod board_map;
mod field;
mod nav_link;
mod notices;
mod panic_button;
mod role_nav;
mod session_card;
mod status_bar;

pub use board_map::{BoardMap, MapPoint, map_model};
pub use field::Field;
pub use nav_link::NavLink;
pub use notices::{Notices, Rejections};
pub use panic_button::PanicButton;
pub use role_nav::{PushBanner, RoleNav};
pub use session_card::{CardModel, SessionCard, StartOption};
pub use status_bar::{StatusBar, StatusModel};
