use dioxus::prelude::*;
use homeward_shared::api::AlertView;
use uuid::Uuid;

use super::Problem;
use crate::Route;
use crate::components::NavLink;
use crate::state::use_app;
use crate::sync::note_result;

/// Where a push notification opens. Leaders' alert screens come later; this shows the alert's id
/// and, when the server lets this user see it, what it is.
#[component]
pub fn Alert(id: String) -> Element {
    let mut state = use_app();
    let alert_id = Uuid::parse_str(&id).ok();
    let details = use_resource(move || async move {
        let id = alert_id?;
        let result = state.api().alert(id).await;
        note_result(&mut state, &result);
        Some(result.map_err(|e| e.message()))
    });
    let details = details.read().clone().flatten();
    rsx! {
        AlertScreen { id, details }
    }
}

#[component]
pub fn AlertScreen(id: String, details: Option<Result<AlertView, String>>) -> Element {
    rsx! {
        main { class: "screen alert", "data-testid": "alert", "data-alert-id": "{id}",
            h1 { "Alert" }
            p { class: "field-hint", "Alert {id}" }
            match details {
                Some(Ok(alert)) => rsx! {
                    p { class: "banner bad", "{alert.kind:?}: {alert.worker_name}, {alert.session.address}" }
                    p { "Status: {alert.status:?}" }
                    if let Some(instruction) = &alert.instruction {
                        p { strong { "{instruction}" } }
                    }
                },
                Some(Err(problem)) => rsx! {
                    Problem { text: format!("The alert's details could not be loaded: {problem}") }
                },
                None => rsx! {},
            }
            NavLink { to: Route::Today {}, class: "button big", "Back to Today" }
        }
    }
}
