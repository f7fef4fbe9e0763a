use dioxus::prelude::*;

use crate::Route;
use crate::components::{NavLink, Notices, Rejections, StatusBar, StatusModel};
use crate::state::{Action, use_app};

/// The frame of every signed-in screen: the app bar, the status bar (location, battery, connection,
/// waiting events) and any notices, around the screen itself. Signed out, it sends you to sign in.
#[component]
pub fn Shell() -> Element {
    let mut state = use_app();
    use_effect(move || {
        if state.auth.read().is_none() {
            navigator().replace(Route::SignIn {});
        }
    });
    let Some(auth) = state.auth.read().clone() else {
        return rsx! {
            p { class: "loading", "Sign in to continue…" }
        };
    };
    let status = StatusModel::new(
        &state.location.read(),
        &state.battery.read(),
        *state.connection.read(),
        state.queue.read().len(),
        state.sync.read().sending,
        *state.now.read(),
    );
    let rejections = state.queue.read().rejected().to_vec();
    let notice = state.notice.read().clone();
    rsx! {
        div { class: "app",
            header { class: "app-bar",
                NavLink { to: Route::Today {}, class: "app-name", "Homeward" }
                span { class: "app-user", "{auth.user.name}" }
            }
            StatusBar { model: status }
            Notices { notice }
            Rejections { items: rejections, on_dismiss: move |id| state.dispatch(Action::DismissRejection(id)) }
            Outlet::<Route> {}
        }
    }
}
