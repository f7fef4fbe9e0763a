use std::time::Duration;

use dioxus::prelude::*;
use homeward_shared::api::{AlertMessage, MessageDirection, NoSignalMarkRequest, QUICK_REPLIES};
use uuid::Uuid;

use crate::labels;
use crate::platform::sleep;
use crate::state::{Reading, use_app};
use crate::sync::note_result;

/// How often a live visit looks for a leader's message.
const CHECK_EVERY: Duration = Duration::from_secs(10);

/// Beneath the active visit: messages from the leaders about an alert, answered in one tap, and a way to
/// mark that there is no signal here.
#[component]
pub fn VisitMessages(session_id: Uuid, live: bool) -> Element {
    let mut state = use_app();
    let mut messages = use_signal(Vec::<AlertMessage>::new);
    let mut sending = use_signal(|| false);
    let mut note = use_signal(|| None::<String>);
    let live_now = use_memo(use_reactive!(|live| live));
    use_future(move || async move {
        loop {
            if live_now() {
                let result = state.api().session_messages(session_id).await;
                if let Ok(list) = result {
                    messages.set(list);
                }
            }
            sleep(CHECK_EVERY).await;
        }
    });
    let on_reply = move |text: String| {
        sending.set(true);
        spawn(async move {
            let result = state.api().answer(session_id, &text).await;
            note_result(&mut state, &result);
            match result {
                Ok(sent) => {
                    messages.write().push(sent);
                    note.set(None);
                }
                Err(e) => note.set(Some(format!("Your answer was not sent: {}", e.message()))),
            }
            sending.set(false);
        });
    };
    let on_no_signal = move |_| {
        let fix = match &*state.location.peek() {
            Reading::Available(fix) => Some(fix.coordinates),
            _ => None,
        };
        let Some(at) = fix else {
            note.set(Some("No position yet: the mark needs your location.".into()));
            return;
        };
        spawn(async move {
            let request = NoSignalMarkRequest { latitude: at.latitude, longitude: at.longitude, note: String::new() };
            let result = state.api().mark_no_signal(&request).await;
            note.set(Some(match result {
                Ok(_) => "Marked: leaders will see this place on the signal map.".into(),
                Err(e) => format!("Not marked: {}", e.message()),
            }));
        });
    };
    rsx! {
        MessagesPanel { messages: messages(), sending: sending(), note: note(), live, on_reply, on_no_signal }
    }
}

#[component]
pub fn MessagesPanel(
    messages: Vec<AlertMessage>,
    sending: bool,
    note: Option<String>,
    live: bool,
    on_reply: EventHandler<String>,
    on_no_signal: EventHandler<()>,
) -> Element {
    let waiting = messages.last().is_some_and(|m| m.direction == MessageDirection::ToWorker);
    rsx! {
        if !messages.is_empty() {
            section {
                class: if waiting { "panel banner warn" } else { "panel" },
                "data-testid": "visit-messages",
                "data-waiting": "{waiting}",
                h2 { if waiting { "A leader is asking" } else { "Messages" } }
                ul {
                    for m in messages.iter() {
                        li { key: "{m.id}", "data-testid": "visit-message",
                            strong { if m.direction == MessageDirection::ToWorker { "{m.sender_name}: " } else { "You: " } }
                            "{m.text} "
                            span { class: "field-hint", "{labels::clock_time(m.sent_at)}" }
                        }
                    }
                }
                if waiting {
                    div { class: "extend-row",
                        for reply in QUICK_REPLIES {
                            button {
                                class: "button big",
                                "data-testid": "quick-reply",
                                disabled: sending,
                                onclick: move |_| on_reply.call(reply.to_string()),
                                "{reply}"
                            }
                        }
                    }
                }
            }
        }
        if let Some(note) = note {
            p { class: "banner", role: "status", "data-testid": "visit-note", "{note}" }
        }
        if live {
            button { class: "button small", "data-testid": "no-signal-here", onclick: move |_| on_no_signal.call(()),
                "No signal here? Mark this place"
            }
        }
    }
}
