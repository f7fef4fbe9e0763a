use dioxus::prelude::*;
use homeward_shared::Timestamp;

use crate::labels;
use crate::platform::{BatteryLevel, Fix};
use crate::state::{Connection, Reading};

/// What the always-visible status bar shows.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusModel {
    pub location: String,
    pub location_ok: bool,
    pub battery: String,
    pub battery_ok: bool,
    pub connection: Connection,
    pub queued: usize,
    pub sending: bool,
}

impl StatusModel {
    pub fn new(
        location: &Reading<Fix>,
        battery: &Reading<BatteryLevel>,
        connection: Connection,
        queued: usize,
        sending: bool,
        now: Timestamp,
    ) -> Self {
        let (location, location_ok) = match location {
            Reading::Off(why) => (format!("off, {why}"), true),
            Reading::Waiting => ("finding a fix…".into(), false),
            Reading::Available(fix) => {
                (format!("±{:.0} m, {}", fix.accuracy_m, labels::ago(fix.at, now)), fix.accuracy_m <= 100.0)
            }
            Reading::Unavailable(why) => (strip(why, "Location: "), false),
        };
        let (battery, battery_ok) = match battery {
            Reading::Off(why) => (format!("off ({why})"), true),
            Reading::Waiting => ("reading…".into(), true),
            Reading::Available(level) => (
                format!("{}%{}", level.percent, if level.charging { ", charging" } else { "" }),
                level.percent >= 15 || level.charging,
            ),
            Reading::Unavailable(why) => (strip(why, "Battery: "), false),
        };
        Self { location, location_ok, battery, battery_ok, connection, queued, sending }
    }
}

fn strip(message: &str, prefix: &str) -> String {
    message.strip_prefix(prefix).unwrap_or(message).to_string()
}

/// Location fix and accuracy, battery, connection, and how many actions wait to be sent.
#[component]
pub fn StatusBar(model: StatusModel) -> Element {
    let connection = model.connection.as_str();
    let queue_class = if model.queued > 0 { "status-item warn" } else { "status-item" };
    rsx! {
        section { class: "status-bar", "aria-label": "Status",
            p { class: if model.location_ok { "status-item" } else { "status-item warn" },
                span { class: "status-label", "Location: " }
                span { "data-testid": "status-location", "{model.location}" }
            }
            p { class: if model.battery_ok { "status-item" } else { "status-item warn" },
                span { class: "status-label", "Battery: " }
                span { "data-testid": "status-battery", "{model.battery}" }
            }
            p { class: if model.connection == Connection::Online { "status-item" } else { "status-item bad" },
                span { class: "status-label", "Connection: " }
                span { "data-testid": "status-connection", "{connection}" }
            }
            p { class: queue_class,
                span { class: "status-label", "To send: " }
                span { "data-testid": "queue-count", "{model.queued}" }
                if model.sending {
                    span { class: "status-note", " (sending…)" }
                }
            }
        }
    }
}
