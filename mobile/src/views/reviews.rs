use dioxus::prelude::*;
use homeward_shared::api::{ReviewItem, ReviewKind};
use uuid::Uuid;

use super::{Loading, Problem};
use crate::labels;
use crate::state::use_app;
use crate::sync::note_result;

pub fn kind_words(kind: ReviewKind) -> &'static str {
    match kind {
        ReviewKind::Concern => "Safeguarding concern",
        ReviewKind::Incident => "Incident",
        ReviewKind::ResolvedAlarm => "Resolved alarm",
    }
}

/// The DSL's review queue: concerns, incidents and resolved alarms, oldest first.
#[component]
pub fn Reviews() -> Element {
    let mut state = use_app();
    let mut items = use_signal(|| None::<Result<Vec<ReviewItem>, String>>);
    let mut error = use_signal(|| None::<String>);
    let mut reload = use_signal(|| 0u32);
    let mut show_done = use_signal(|| false);
    use_resource(move || async move {
        let _ = reload();
        let status = if show_done() { "all" } else { "pending" };
        let result = state.api().reviews(status).await;
        note_result(&mut state, &result);
        items.set(Some(result.map_err(|e| e.message())));
    });
    let on_mark = move |(id, action): (Uuid, String)| {
        spawn(async move {
            let result = state.api().mark_reviewed(id, &action).await;
            note_result(&mut state, &result);
            match result {
                Ok(_) => {
                    error.set(None);
                    reload += 1;
                }
                Err(e) => error.set(Some(e.message())),
            }
        });
    };
    rsx! {
        ReviewsScreen {
            items: items(),
            error: error(),
            show_done: show_done(),
            on_toggle_done: move |_| show_done.toggle(),
            on_mark,
        }
    }
}

#[component]
pub fn ReviewsScreen(
    items: Option<Result<Vec<ReviewItem>, String>>,
    error: Option<String>,
    show_done: bool,
    on_toggle_done: EventHandler<()>,
    on_mark: EventHandler<(Uuid, String)>,
) -> Element {
    rsx! {
        main { class: "screen reviews", "data-testid": "reviews",
            h1 { "Review queue" }
            p { class: "field-hint", "Visits whose outcome raised a concern, incidents, and resolved alarms: oldest first." }
            button { class: "button small", "data-testid": "toggle-done", onclick: move |_| on_toggle_done.call(()),
                if show_done { "Show only those waiting" } else { "Show reviewed ones too" }
            }
            if let Some(problem) = error {
                Problem { text: problem }
            }
            match items {
                None => rsx! { Loading { text: "Loading the review queue…" } },
                Some(Err(e)) => rsx! { Problem { text: format!("Could not load the queue: {e}") } },
                Some(Ok(list)) if list.is_empty() => rsx! {
                    p { class: "empty", "data-testid": "reviews-empty", "Nothing is waiting for review." }
                },
                Some(Ok(list)) => rsx! {
                    for item in list {
                        ReviewCard { key: "{item.subject_id}", item, on_mark }
                    }
                },
            }
        }
    }
}

#[component]
fn ReviewCard(item: ReviewItem, on_mark: EventHandler<(Uuid, String)>) -> Element {
    let mut action = use_signal(String::new);
    let id = item.subject_id;
    let kind = match item.kind {
        ReviewKind::Concern => "concern",
        ReviewKind::Incident => "incident",
        ReviewKind::ResolvedAlarm => "resolved_alarm",
    };
    let done = item.reviewed_at.is_some();
    rsx! {
        article {
            class: if done { "card" } else { "card status-overdue" },
            "data-testid": "review-item",
            "data-kind": "{kind}",
            "data-session-id": "{item.session_id}",
            "data-reviewed": "{done}",
            div { class: "card-head",
                strong { class: "card-title", "{kind_words(item.kind)}" }
                span { class: "badge", if done { "Reviewed" } else { "Waiting" } }
            }
            p { "{item.worker_name} · {labels::kind(&item.session_kind, None)} · {labels::when(item.occurred_at, chrono::Utc::now())}" }
            if let Some(pupil) = &item.pupil_reference {
                p { "Pupil reference: {pupil}" }
            }
            p { "{item.summary}" }
            if !item.notes.is_empty() {
                p { class: "visit-notes", "“{item.notes}”" }
            }
            if let (Some(by), Some(action_taken)) = (&item.reviewed_by_name, &item.action_taken) {
                p { class: "banner ok", "Reviewed by {by}: {action_taken}" }
            } else {
                div { class: "field",
                    label { r#for: "action-{id}", "Action taken" }
                    textarea { id: "action-{id}", name: "action_taken", value: "{action}", oninput: move |e| action.set(e.value()) }
                }
                button {
                    class: "button primary",
                    "data-testid": "mark-reviewed",
                    disabled: action().trim().is_empty(),
                    onclick: move |_| on_mark.call((id, action())),
                    "Mark reviewed"
                }
            }
        }
    }
}
