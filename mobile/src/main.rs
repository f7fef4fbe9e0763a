//! The Homeward client: one Dioxus codebase for the web (a PWA served by the server), desktop and
//! mobile. Offline first: every action is queued on the device before it is sent (see `queue`).

mod api;
mod components;
mod countdown;
mod labels;
mod platform;
mod projection;
mod queue;
mod state;
mod sync;
mod tracking;
mod views;

use dioxus::prelude::*;

use platform::Platform;
use state::AppState;
use views::{
    Admin, Alert, Approvals, Audit, Board, Home, NotFound, Plan, Records, Reviews, Settings, Shell, SignIn, Today,
    Visit, VisitOutcome,
};

#[derive(Debug, Clone, PartialEq, Routable)]
#[rustfmt::skip]
pub enum Route {
    #[route("/")]
    Home {},
    #[route("/signin")]
    SignIn {},
    #[layout(Shell)]
        #[route("/today")]
        Today {},
        #[route("/plan")]
        Plan {},
        #[route("/visit/:id")]
        Visit { id: String },
        #[route("/visit/:id/outcome")]
        VisitOutcome { id: String },
        #[route("/settings")]
        Settings {},
        #[route("/alerts/:id")]
        Alert { id: String },
        #[route("/board")]
        Board {},
        #[route("/approvals")]
        Approvals {},
        #[route("/reviews")]
        Reviews {},
        #[route("/records")]
        Records {},
        #[route("/audit")]
        Audit {},
        #[route("/admin")]
        Admin {},
    #[end_layout]
    #[route("/:..segments")]
    NotFound { segments: Vec<String> },
}

fn main() {
    #[cfg(any(feature = "web", feature = "desktop", feature = "mobile"))]
    dioxus::launch(App);
    #[cfg(not(any(feature = "web", feature = "desktop", feature = "mobile")))]
    {
        // Without a renderer (tests, `cargo check`) the app is still compiled and checked whole.
        let _app: fn() -> Element = App;
        eprintln!("build with --features web, desktop or mobile to run the Homeward client");
    }
}

/// Desktop and mobile have no page to link the stylesheet from; the web page links `/app.css`.
#[cfg(not(target_arch = "wasm32"))]
const APP_CSS: &str = include_str!("../assets/app.css");

#[component]
fn App() -> Element {
    let state = use_context_provider(|| AppState::load(Platform::for_this_device()));
    sync::use_sync(state);
    tracking::use_tracking(state);
    rsx! {
        {native_stylesheet()}
        Router::<Route> {}
    }
}

fn native_stylesheet() -> Element {
    #[cfg(not(target_arch = "wasm32"))]
    return rsx! {
        style { {APP_CSS} }
    };
    // The web page links the stylesheet: the server's Content-Security-Policy allows no inline styles.
    #[cfg(target_arch = "wasm32")]
    return rsx! {};
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_oversight;
