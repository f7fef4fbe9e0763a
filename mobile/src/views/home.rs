use dioxus::prelude::*;

use crate::Route;
use crate::components::NavLink;
use crate::state::use_app;

/// `/`: to Today when signed in, else to Sign in.
#[component]
pub fn Home() -> Element {
    let state = use_app();
    use_effect(move || {
        let target = if state.auth.read().is_some() { Route::Today {} } else { Route::SignIn {} };
        navigator().replace(target);
    });
    rsx! {
        p { class: "loading", "Opening Homeward…" }
    }
}

#[component]
pub fn NotFound(segments: Vec<String>) -> Element {
    let path = segments.join("/");
    rsx! {
        main { class: "screen",
            h1 { "Not found" }
            p { "There is nothing at /{path}." }
            NavLink { to: Route::Home {}, class: "button primary big", "Go to Today" }
        }
    }
}
