use dioxus::prelude::*;
use homeward_shared::api::SessionView;
use uuid::Uuid;

use super::{Loading, Problem};
use crate::labels;
use crate::state::use_app;
use crate::sync::note_result;

/// The reason given when a leader requires a companion: the worker plans the visit again with one.
pub const COMPANION_REASON: &str = "A companion is required for this visit: plan it again with a colleague.";

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Approve(Uuid),
    Reject { id: Uuid, reason: String },
    RequireCompanion(Uuid),
}

/// Visits waiting for a leader's decision, with their risk assessments.
#[component]
pub fn Approvals() -> Element {
    let mut state = use_app();
    let mut pending = use_signal(|| None::<Result<Vec<SessionView>, String>>);
    let mut error = use_signal(|| None::<String>);
    let mut done = use_signal(Vec::<String>::new);
    let mut reload = use_signal(|| 0u32);
    use_resource(move || async move {
        let _ = reload();
        let result = state.api().awaiting_my_approval().await;
        note_result(&mut state, &result);
        pending.set(Some(result.map_err(|e| e.message())));
    });
    let on_decide = move |decision: Decision| {
        spawn(async move {
            let api = state.api();
            let (result, words) = match &decision {
                Decision::Approve(id) => (api.approve(*id).await, "Approved"),
                Decision::Reject { id, reason } => (api.reject(*id, reason).await, "Not approved"),
                Decision::RequireCompanion(id) => (api.reject(*id, COMPANION_REASON).await, "Companion required"),
            };
            note_result(&mut state, &result);
            match result {
                Ok(view) => {
                    error.set(None);
                    done.write().push(format!("{words}: {} ({})", view.worker_name, view.address));
                    reload += 1;
                }
                Err(e) => error.set(Some(e.message())),
            }
        });
    };
    rsx! {
        ApprovalsScreen { pending: pending(), error: error(), done: done(), on_decide }
    }
}

#[component]
pub fn ApprovalsScreen(
    pending: Option<Result<Vec<SessionView>, String>>,
    error: Option<String>,
    done: Vec<String>,
    on_decide: EventHandler<Decision>,
) -> Element {
    rsx! {
        main { class: "screen approvals", "data-testid": "approvals",
            h1 { "Approvals" }
            if let Some(problem) = error {
                Problem { text: problem }
            }
            for line in done {
                p { class: "banner ok", role: "status", "{line}" }
            }
            match pending {
                None => rsx! { Loading { text: "Loading visits awaiting approval…" } },
                Some(Err(e)) => rsx! { Problem { text: format!("Could not load the visits: {e}") } },
                Some(Ok(list)) if list.is_empty() => rsx! {
                    p { class: "empty", "data-testid": "approvals-empty", "No visits are waiting for approval." }
                },
                Some(Ok(list)) => rsx! {
                    for session in list {
                        ApprovalCard { key: "{session.id}", session, on_decide }
                    }
                },
            }
        }
    }
}

#[component]
fn ApprovalCard(session: SessionView, on_decide: EventHandler<Decision>) -> Element {
    let mut reason = use_signal(String::new);
    let id = session.id;
    let risk = &session.risk_assessment;
    rsx! {
        article { class: "card", "data-testid": "approval", "data-session-id": "{id}",
            div { class: "card-head",
                strong { class: "card-title", "{session.worker_name}" }
                span { class: "badge", "Risk: {risk.overall.as_str()}" }
            }
            p { "{labels::session_title(&session)} at {session.address}" }
            p { "Planned {labels::clock_time(session.planned_start)} for {session.expected_duration_minutes} min" }
            table { class: "risk-table",
                tbody {
                    for rating in risk.factors.iter() {
                        tr {
                            th { "{rating.factor.label()}" }
                            td { "{rating.level.as_str()}" }
                            td { "{rating.notes}" }
                        }
                    }
                }
            }
            div { class: "actions",
                button {
                    class: "button primary",
                    "data-testid": "approve",
                    onclick: move |_| on_decide.call(Decision::Approve(id)),
                    "Approve"
                }
                button {
                    class: "button",
                    "data-testid": "require-companion",
                    onclick: move |_| on_decide.call(Decision::RequireCompanion(id)),
                    "Require a companion"
                }
            }
            div { class: "field",
                label { r#for: "reason-{id}", "Reason for not approving" }
                input { id: "reason-{id}", name: "reason", value: "{reason}", oninput: move |e| reason.set(e.value()) }
            }
            button {
                class: "button end",
                "data-testid": "reject",
                disabled: reason().trim().is_empty(),
                onclick: move |_| on_decide.call(Decision::Reject { id, reason: reason() }),
                "Do not approve"
            }
        }
    }
}
