use dioxus::prelude::*;
use uuid::Uuid;

use crate::labels;
use crate::queue::Rejection;

/// Messages for the worker that are not tied to one screen.
#[component]
pub fn Notices(notice: Option<String>) -> Element {
    rsx! {
        if let Some(notice) = notice {
            p { class: "banner warn", role: "status", "data-testid": "notice", "{notice}" }
        }
    }
}

/// Actions the server refused: each stays until the worker dismisses it.
#[component]
pub fn Rejections(items: Vec<Rejection>, on_dismiss: EventHandler<Uuid>) -> Element {
    rsx! {
        if !items.is_empty() {
            section { class: "rejections", role: "alert",
                for item in items {
                    div { key: "{item.id}", class: "banner bad", "data-testid": "rejection", "data-kind": "{item.kind}",
                        p {
                            strong { "{item.what} at {labels::clock_time(item.at)} was refused: " }
                            "{item.message}"
                        }
                        button {
                            class: "button small",
                            onclick: move |_| on_dismiss.call(item.id),
                            "Dismiss"
                        }
                    }
                }
            }
        }
    }
}
