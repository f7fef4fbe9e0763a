//! One module per screen. Each routed component gathers what it needs from the app state and hands
//! plain props to a pure `*Screen` component, which is what the tests render.

pub(crate) mod admin;
pub(crate) mod alert;
pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod board;
pub(crate) mod home;
pub(crate) mod messages;
pub(crate) mod outcome;
pub(crate) mod plan;
pub(crate) mod records;
pub(crate) mod reviews;
pub(crate) mod settings;
pub(crate) mod shell;
pub(crate) mod sign_in;
pub(crate) mod today;
pub(crate) mod visit;

pub use admin::Admin;
pub use alert::Alert;
pub use approvals::Approvals;
pub use audit::Audit;
pub use board::Board;
pub use home::{Home, NotFound};
pub use outcome::VisitOutcome;
pub use plan::Plan;
pub use records::Records;
pub use reviews::Reviews;
pub use settings::Settings;
pub use shell::Shell;
pub use sign_in::SignIn;
pub use today::Today;
pub use visit::Visit;

use dioxus::prelude::*;

/// Shown while a screen's data is on its way.
#[component]
pub fn Loading(text: String) -> Element {
    rsx! {
        p { class: "loading", role: "status", "data-testid": "loading", "{text}" }
    }
}

/// Shown when a screen cannot show what was asked for.
#[component]
pub fn Problem(text: String) -> Element {
    rsx! {
        p { class: "banner bad", role: "alert", "data-testid": "problem", "{text}" }
    }
}
