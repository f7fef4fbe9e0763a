use dioxus::prelude::*;
use homeward_shared::session::SessionStatus;
use uuid::Uuid;

/// Whether a planned visit can be started from its card.
#[derive(Debug, Clone, PartialEq)]
pub enum StartOption {
    Hidden,
    Ready,
    /// Shown but not possible yet, with the reason.
    Blocked(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CardModel {
    pub id: Uuid,
    pub status: SessionStatus,
    pub title: String,
    pub address: String,
    pub when: String,
    pub approval: String,
    /// The countdown of a live visit, and whether it is past its deadline.
    pub countdown: Option<(String, bool)>,
    pub start: StartOption,
    /// Actions on this visit still waiting to be sent.
    pub waiting: usize,
}

/// One session on the Today screen. Tapping it opens the visit.
#[component]
pub fn SessionCard(card: CardModel, on_open: EventHandler<Uuid>, on_start: EventHandler<Uuid>) -> Element {
    let id = card.id;
    let status = card.status.as_str();
    let status_label = crate::labels::status(card.status);
    rsx! {
        article {
            class: "card status-{status}",
            "data-testid": "session-card",
            "data-session-id": "{id}",
            "data-status": "{status}",
            role: "link",
            tabindex: "0",
            onclick: move |_| on_open.call(id),
            onkeydown: move |evt: KeyboardEvent| {
                if evt.key() == Key::Enter {
                    on_open.call(id);
                }
            },
            header { class: "card-head",
                span { class: "badge badge-{status}", "{status_label}" }
                span { class: "card-when", "{card.when}" }
            }
            h3 { class: "card-title", "{card.title}" }
            p { class: "card-address", "{card.address}" }
            p { class: "card-approval", "data-testid": "approval", "{card.approval}" }
            if let Some((countdown, overdue)) = card.countdown {
                p { class: if overdue { "card-countdown overdue" } else { "card-countdown" }, "{countdown}" }
            }
            if card.waiting > 0 {
                p { class: "card-waiting", "{card.waiting} waiting to be sent" }
            }
            match card.start {
                StartOption::Hidden => rsx! {},
                StartOption::Ready => rsx! {
                    button {
                        class: "button primary big",
                        "data-testid": "start-visit",
                        onclick: move |evt| {
                            evt.stop_propagation();
                            on_start.call(id);
                        },
                        "Start visit"
                    }
                },
                StartOption::Blocked(why) => rsx! {
                    button { class: "button big", "data-testid": "start-visit", disabled: true, "Start visit" }
                    p { class: "card-blocked", "{why}" }
                },
            }
        }
    }
}
