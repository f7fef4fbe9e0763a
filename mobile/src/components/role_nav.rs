use dioxus::prelude::*;
use homeward_shared::Role;

use super::NavLink;
use crate::Route;

/// The screens a user's roles open, under the app bar: each role sees its own.
#[component]
pub fn RoleNav(roles: Vec<Role>) -> Element {
    let has = |r: Role| roles.contains(&r);
    let leads = has(Role::Leader) || has(Role::Dsl);
    let oversees = leads || has(Role::Admin);
    let records = has(Role::Dsl) || has(Role::Admin);
    if !oversees {
        return rsx! {};
    }
    rsx! {
        nav { class: "role-nav", "data-testid": "role-nav",
            NavLink { to: Route::Board {}, class: "button small", testid: "nav-board", "Live board" }
            if leads {
                NavLink { to: Route::Approvals {}, class: "button small", testid: "nav-approvals", "Approvals" }
            }
            if has(Role::Dsl) {
                NavLink { to: Route::Reviews {}, class: "button small", testid: "nav-reviews", "Reviews" }
            }
            if records {
                NavLink { to: Route::Records {}, class: "button small", testid: "nav-records", "Figures & export" }
                NavLink { to: Route::Audit {}, class: "button small", testid: "nav-audit", "Audit log" }
            }
            if has(Role::Admin) {
                NavLink { to: Route::Admin {}, class: "button small", testid: "nav-admin", "Admin" }
            }
        }
    }
}

/// Shown on every screen to a leader or DSL whose alerts reach no device.
#[component]
pub fn PushBanner(message: Option<String>) -> Element {
    let Some(message) = message else { return rsx! {} };
    rsx! {
        div { class: "banner bad", role: "alert", "data-testid": "no-push",
            p { strong { "Alerts cannot reach you. " } "{message}" }
            NavLink { to: Route::Settings {}, class: "button small", testid: "no-push-settings", "Turn on notifications" }
        }
    }
}
