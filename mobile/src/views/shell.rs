use dioxus::prelude::*;

use crate::Route;
use crate::components::{NavLink, Notices, PushBanner, Rejections, RoleNav, StatusBar, StatusModel};
use crate::state::{Action, use_app};

/// The frame of every signed-in screen: the app bar, the status bar (location, battery, connection,
/// waiting events) and any notices, around the screen itself. Signed out, it sends you to sign in.
#[component]
pub fn Shell() -> Element {
    let mut state = use_app();
    // A leader or the DSL with no device for alerts is told on every screen until they subscribe.
    let mut push_warning = use_signal(|| None::<String>);
    use_future(move || async move {
        loop {
            let responder = state.auth.peek().as_ref().is_some_and(|a| a.is_leader());
            if responder {
                // Unknown is not the same as fine: on an error, keep what was last known.
                if let Ok(status) = state.api().push_status().await {
                    push_warning.set(status.message.filter(|_| status.needs_subscription));
                }
            } else {
                push_warning.set(None);
            }
            crate::platform::sleep(std::time::Duration::from_secs(20)).await;
        }
    });
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
            RoleNav { roles: auth.user.roles.clone() }
            PushBanner { message: push_warning() }
            StatusBar { model: status }
            Notices { notice }
            Rejections { items: rejections, on_dismiss: move |id| state.dispatch(Action::DismissRejection(id)) }
            Outlet::<Route> {}
        }
    }
}
