use dioxus::prelude::*;
use homeward_shared::api::{AlertResolution, AlertStatus, AlertView, MessageDirection, ResolveAlertRequest};
use uuid::Uuid;

use super::Problem;
use super::board::{alert_kind, alert_status};
use crate::Route;
use crate::components::NavLink;
use crate::labels;
use crate::state::use_app;
use crate::sync::note_result;

/// What a responder can ask the worker in one tap.
pub const QUICK_QUESTIONS: [&str; 3] = ["Are you OK?", "Please check in now.", "Can you talk? I will phone you."];

pub const RESOLUTIONS: [(AlertResolution, &str, &str); 4] = [
    (AlertResolution::WorkerSafe, "worker_safe", "The worker is safe"),
    (AlertResolution::FalseAlarm, "false_alarm", "False alarm"),
    (AlertResolution::Incident, "incident", "Incident"),
    (AlertResolution::PoliceCalled, "police_called", "Police called"),
];

/// An action on the alert, from the screen.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertAction {
    TakeOwnership,
    Message(String),
    Resolve { resolution: AlertResolution, notes: String },
}

/// One alert for a responder: what it is, the step reached, who was told how and when, the instruction,
/// the visit, its household notes and last position; take ownership, message the worker, resolve.
#[component]
pub fn Alert(id: String) -> Element {
    let mut state = use_app();
    let alert_id = Uuid::parse_str(&id).ok();
    let mut details = use_signal(|| None::<Result<AlertView, String>>);
    let mut busy = use_signal(|| false);
    let mut error = use_signal(|| None::<String>);
    use_future(move || async move {
        loop {
            if let Some(id) = alert_id {
                let result = state.api().alert(id).await;
                note_result(&mut state, &result);
                // A failed refresh keeps what is on screen.
                match result {
                    Ok(view) => details.set(Some(Ok(view))),
                    Err(e) if details.peek().is_none() => details.set(Some(Err(e.message()))),
                    Err(_) => {}
                }
            }
            crate::platform::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
    let me = state.auth.read().as_ref().map(|a| a.user.id);
    let on_action = move |action: AlertAction| {
        let Some(id) = alert_id else { return };
        if *busy.peek() {
            return;
        }
        busy.set(true);
        error.set(None);
        spawn(async move {
            let api = state.api();
            let result = match action {
                AlertAction::TakeOwnership => api.acknowledge(id).await,
                AlertAction::Message(text) => api.message_worker(id, &text).await,
                AlertAction::Resolve { resolution, notes } => {
                    api.resolve(id, &ResolveAlertRequest { resolution, notes }).await
                }
            };
            note_result(&mut state, &result);
            match result {
                Ok(view) => details.set(Some(Ok(view))),
                Err(e) => error.set(Some(e.message())),
            }
            busy.set(false);
        });
    };
    rsx! {
        AlertScreen {
            id,
            details: details(),
            me,
            busy: busy(),
            error: error(),
            on_action,
        }
    }
}

#[component]
pub fn AlertScreen(
    id: String,
    details: Option<Result<AlertView, String>>,
    #[props(default)] me: Option<Uuid>,
    #[props(default)] busy: bool,
    #[props(default)] error: Option<String>,
    #[props(default)] on_action: EventHandler<AlertAction>,
) -> Element {
    let mut message = use_signal(String::new);
    let mut resolution = use_signal(|| None::<AlertResolution>);
    let mut notes = use_signal(String::new);
    rsx! {
        main { class: "screen alert", "data-testid": "alert", "data-alert-id": "{id}",
            h1 { "Alert" }
            p { class: "field-hint", "Alert {id}" }
            if let Some(problem) = error {
                Problem { text: problem }
            }
            match details {
                None => rsx! {
                    p { class: "loading", "Loading the alert…" }
                },
                Some(Err(problem)) => rsx! {
                    Problem { text: format!("The alert's details could not be loaded: {problem}") }
                },
                Some(Ok(alert)) => {
                    let open = matches!(alert.status, AlertStatus::Escalating | AlertStatus::Acknowledged);
                    let red = matches!(alert.kind, homeward_shared::api::AlertKind::Panic | homeward_shared::api::AlertKind::Duress);
                    let status = alert_status(alert.status);
                    let owner = alert.acknowledged_by.map(|o| {
                        if Some(o) == me {
                            "you".to_string()
                        } else {
                            alert.acknowledged_by_name.clone().unwrap_or_else(|| "another leader".into())
                        }
                    });
                    let own_visit = me == Some(alert.worker_id) || me.is_some() && alert.session.companion_id == me;
                    let session = &alert.session;
                    rsx! {
                        p {
                            class: if red { "banner bad" } else { "banner warn" },
                            "data-testid": "alert-kind",
                            "data-kind": "{alert.kind:?}",
                            strong { "{alert_kind(alert.kind)}" }
                            ": {alert.worker_name}, {session.address}"
                        }
                        p { "data-testid": "alert-status", "data-status": "{status}",
                            "Status: {status}"
                            if let Some(owner) = &owner {
                                " (owned by {owner})"
                            }
                            if let Some(resolution) = alert.resolution {
                                ", resolved: {resolution_words(resolution)}"
                            }
                        }
                        p { "Step {alert.steps_fired} of {alert.steps_total} reached; raised {labels::clock_time(alert.raised_at)}." }
                        if let Some(instruction) = &alert.instruction {
                            p { class: "banner", "data-testid": "alert-instruction", strong { "Instruction: {instruction}" } }
                        }
                        section { class: "panel",
                            h2 { "The visit" }
                            p { "{labels::session_title(session)} at {session.address}" }
                            if let Some(pupil) = &session.pupil_reference {
                                p { "Pupil reference: {pupil}" }
                            }
                            p { "Started {session.started_at.map(labels::clock_time).unwrap_or_else(|| \"not started\".into())}; deadline {session.deadline.map(labels::clock_time).unwrap_or_else(|| \"none\".into())}" }
                            if !session.household_notes.is_empty() {
                                p { "data-testid": "household-notes", strong { "Household and risks: " } "{session.household_notes}" }
                            }
                            p { "Overall risk: {session.risk_assessment.overall.as_str()}" }
                            match alert.last_location {
                                Some(at) => rsx! {
                                    p { "data-testid": "last-position",
                                        "Last known position: {at.latitude:.5}, {at.longitude:.5} "
                                        a { href: "geo:{at.latitude},{at.longitude}", "open in maps" }
                                    }
                                },
                                None => rsx! { p { "No position was received." } },
                            }
                            if !alert.trail.is_empty() {
                                details { "data-testid": "trail",
                                    summary { "Trail: the last {alert.trail.len()} position(s)" }
                                    ol {
                                        for point in alert.trail.iter().take(10) {
                                            li { "{labels::clock_time(point.at)}: {point.latitude:.5}, {point.longitude:.5} (±{point.accuracy_m.round()} m)" }
                                        }
                                    }
                                }
                            }
                            match &alert.worker_phone {
                                Some(phone) => rsx! {
                                    a { class: "button primary", href: "tel:{phone}", "data-testid": "call-worker",
                                        "Call {alert.worker_name} ({phone})"
                                    }
                                },
                                None => rsx! {
                                    p { class: "field-hint", "data-testid": "no-phone",
                                        "No phone number is held for {alert.worker_name}: call them from the school's contact list (an admin can add the number)."
                                    }
                                },
                            }
                        }
                        section { class: "panel", "data-testid": "deliveries",
                            h2 { "Who was told" }
                            if alert.delivery_summary.is_empty() {
                                p { "Nobody yet." }
                            }
                            ul {
                                for line in alert.delivery_summary.iter() {
                                    li { "{line}" }
                                }
                            }
                        }
                        section { class: "panel", "data-testid": "messages",
                            h2 { "Messages with the worker" }
                            if alert.messages.is_empty() {
                                p { "No messages yet." }
                            }
                            ul {
                                for m in alert.messages.iter() {
                                    li { "data-testid": "message", "data-direction": if m.direction == MessageDirection::ToWorker { "to_worker" } else { "from_worker" },
                                        strong { "{m.sender_name} ({labels::clock_time(m.sent_at)}): " }
                                        "{m.text}"
                                    }
                                }
                            }
                        }
                        if open && own_visit {
                            p { class: "banner warn", "This alert is about your own visit: another leader must handle it." }
                        } else if open {
                            if alert.status == AlertStatus::Escalating {
                                button {
                                    class: "button primary big",
                                    "data-testid": "take-ownership",
                                    disabled: busy,
                                    onclick: move |_| on_action.call(AlertAction::TakeOwnership),
                                    "Take ownership"
                                }
                            }
                            if alert.kind != homeward_shared::api::AlertKind::Duress {
                                section { class: "panel",
                                    h2 { "Message the worker" }
                                    div { class: "extend-row",
                                        for question in QUICK_QUESTIONS {
                                            button {
                                                class: "button small",
                                                "data-testid": "quick-question",
                                                disabled: busy,
                                                onclick: move |_| on_action.call(AlertAction::Message(question.to_string())),
                                                "{question}"
                                            }
                                        }
                                    }
                                    div { class: "field",
                                        label { r#for: "message", "Or write a message" }
                                        input {
                                            id: "message",
                                            name: "message",
                                            value: "{message}",
                                            oninput: move |e| message.set(e.value()),
                                        }
                                    }
                                    button {
                                        class: "button",
                                        "data-testid": "send-message",
                                        disabled: busy || message().trim().is_empty(),
                                        onclick: move |_| {
                                            on_action.call(AlertAction::Message(message()));
                                            message.set(String::new());
                                        },
                                        "Send"
                                    }
                                }
                            } else {
                                p { class: "banner bad", "A duress alarm is silent: nothing may appear on the worker's phone. Follow the instruction above." }
                            }
                            section { class: "panel",
                                h2 { "Resolve" }
                                fieldset {
                                    legend { "What happened" }
                                    for (value, key, words) in RESOLUTIONS {
                                        label { class: "check",
                                            input {
                                                r#type: "radio",
                                                name: "resolution",
                                                value: "{key}",
                                                checked: resolution() == Some(value),
                                                onchange: move |_| resolution.set(Some(value)),
                                            }
                                            " {words}"
                                        }
                                    }
                                }
                                div { class: "field",
                                    label { r#for: "notes", "Notes" }
                                    textarea {
                                        id: "notes",
                                        name: "notes",
                                        value: "{notes}",
                                        oninput: move |e| notes.set(e.value()),
                                    }
                                }
                                button {
                                    class: "button primary big",
                                    "data-testid": "resolve",
                                    disabled: busy || resolution().is_none(),
                                    onclick: move |_| {
                                        if let Some(value) = resolution() {
                                            on_action.call(AlertAction::Resolve { resolution: value, notes: notes() });
                                        }
                                    },
                                    "Resolve the alert"
                                }
                            }
                        }
                    }
                }
            }
            NavLink { to: Route::Board {}, class: "button big", "Back to the live board" }
            NavLink { to: Route::Today {}, class: "button", "Today" }
        }
    }
}

pub fn resolution_words(resolution: AlertResolution) -> &'static str {
    RESOLUTIONS.iter().find(|(r, _, _)| *r == resolution).map_or("resolved", |(_, _, words)| words)
}
