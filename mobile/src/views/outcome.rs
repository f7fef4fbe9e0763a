use dioxus::prelude::*;
use homeward_shared::api::ClientEventKind;
use homeward_shared::session::{Concern, Outcome};
use uuid::Uuid;

use super::{Loading, Problem};
use crate::Route;
use crate::components::NavLink;
use crate::labels;
use crate::state::use_app;

/// The outcome form as filled in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutcomeForm {
    pub child_seen: bool,
    pub responsible_adult_present: bool,
    pub entered_premises: bool,
    pub safeguarding_concern: bool,
    pub notes: String,
}

/// One change to the form.
#[derive(Debug, Clone, PartialEq)]
pub enum OutcomeChange {
    Checked(&'static str, bool),
    Safeguarding(bool),
    Notes(String),
}

impl OutcomeForm {
    pub fn apply(&mut self, change: OutcomeChange) {
        match change {
            OutcomeChange::Checked("child_seen", value) => self.child_seen = value,
            OutcomeChange::Checked("responsible_adult_present", value) => self.responsible_adult_present = value,
            OutcomeChange::Checked(_, value) => self.entered_premises = value,
            OutcomeChange::Safeguarding(value) => self.safeguarding_concern = value,
            OutcomeChange::Notes(notes) => self.notes = notes,
        }
    }

    pub fn validate(&self) -> Result<Outcome, String> {
        if self.notes.chars().count() > Outcome::MAX_NOTES {
            return Err(format!("Notes are at most {} characters.", Outcome::MAX_NOTES));
        }
        Ok(Outcome {
            child_seen: self.child_seen,
            responsible_adult_present: self.responsible_adult_present,
            entered_premises: self.entered_premises,
            concern: if self.safeguarding_concern { Concern::Safeguarding } else { Concern::None },
            notes: self.notes.trim().to_string(),
        })
    }
}

/// Whether the form can be filled in.
#[derive(Debug, Clone, PartialEq)]
pub enum OutcomeState {
    Loading,
    Missing(String),
    Ready,
    /// The visit has not ended (or its end was refused, with the reason).
    NotEnded(Option<String>),
    AlreadyRecorded,
}

/// After the visit: what happened.
#[component]
pub fn VisitOutcome(id: String) -> Element {
    let mut state = use_app();
    let session_id = Uuid::parse_str(&id).ok();
    let mut form = use_signal(OutcomeForm::default);
    let mut error = use_signal(|| None::<String>);

    let (title, outcome_state) = match session_id {
        None => (String::new(), OutcomeState::Missing("That is not a visit's address.".into())),
        Some(id) => match state.session(id) {
            None if state.sessions.read().loaded_at.is_some() => {
                (String::new(), OutcomeState::Missing("This visit is not on this phone.".into()))
            }
            None => (String::new(), OutcomeState::Loading),
            Some((view, projected)) => {
                let refused_end = state
                    .queue
                    .read()
                    .rejected()
                    .iter()
                    .rev()
                    .find(|r| r.session_id == id && matches!(r.kind.as_str(), "end" | "end_with_pin"))
                    .map(|r| r.message.clone());
                let outcome_state = if projected.outcome_recorded {
                    OutcomeState::AlreadyRecorded
                } else if !projected.ended {
                    OutcomeState::NotEnded(refused_end)
                } else {
                    OutcomeState::Ready
                };
                (labels::session_title(&view), outcome_state)
            }
        },
    };

    rsx! {
        OutcomeScreen {
            id: session_id.unwrap_or_default(),
            title,
            state: outcome_state,
            form: form(),
            error: error(),
            on_change: move |change: OutcomeChange| form.write().apply(change),
            on_submit: move |_| {
                let Some(id) = session_id else { return };
                match form.read().validate() {
                    Ok(outcome) => {
                        state.record(id, ClientEventKind::Outcome { outcome });
                        navigator().push(Route::Today {});
                    }
                    Err(problem) => error.set(Some(problem)),
                }
            },
        }
    }
}

#[component]
pub fn OutcomeScreen(
    id: Uuid,
    title: String,
    state: OutcomeState,
    form: OutcomeForm,
    error: Option<String>,
    on_change: EventHandler<OutcomeChange>,
    on_submit: EventHandler<()>,
) -> Element {
    let checkbox = |name: &'static str, label: &'static str, checked: bool| {
        rsx! {
            label { class: "check",
                input {
                    name,
                    r#type: "checkbox",
                    checked,
                    onchange: move |evt: FormEvent| on_change.call(OutcomeChange::Checked(name, evt.checked())),
                }
                span { "{label}" }
            }
        }
    };
    rsx! {
        main { class: "screen outcome", "data-testid": "outcome",
            h1 { "Visit outcome" }
            if !title.is_empty() {
                p { class: "lead", "{title}" }
            }
            match state {
                OutcomeState::Loading => rsx! {
                    Loading { text: "Loading the visit…" }
                },
                OutcomeState::Missing(why) => rsx! {
                    Problem { text: why }
                    NavLink { to: Route::Today {}, class: "button big", "Back to Today" }
                },
                OutcomeState::AlreadyRecorded => rsx! {
                    p { class: "banner", "data-testid": "outcome-recorded", "The outcome of this visit is recorded. Thank you." }
                    NavLink { to: Route::Today {}, class: "button primary big", "Back to Today" }
                },
                OutcomeState::NotEnded(refused) => rsx! {
                    if let Some(reason) = refused {
                        Problem { text: format!("The visit has not ended: the end was refused ({reason}).") }
                    } else {
                        p { class: "banner warn", "This visit has not ended yet. End it first." }
                    }
                    NavLink { to: Route::Visit { id: id.to_string() }, class: "button primary big", "Back to the visit" }
                },
                OutcomeState::Ready => rsx! {
                    form {
                        class: "form",
                        novalidate: true,
                        onsubmit: move |evt: FormEvent| {
                            evt.prevent_default();
                            on_submit.call(());
                        },
                        fieldset {
                            legend { "What happened" }
                            {checkbox("child_seen", "I saw the child", form.child_seen)}
                            {checkbox("responsible_adult_present", "A responsible adult was present", form.responsible_adult_present)}
                            {checkbox("entered_premises", "I went inside the premises", form.entered_premises)}
                        }
                        div { class: "field",
                            label {
                                span { class: "field-label", "Concerns" }
                                select {
                                    name: "concern",
                                    onchange: move |evt: FormEvent| {
                                        on_change.call(OutcomeChange::Safeguarding(evt.value() == "safeguarding"))
                                    },
                                    option { value: "none", selected: !form.safeguarding_concern, "No concerns" }
                                    option { value: "safeguarding", selected: form.safeguarding_concern,
                                        "A safeguarding concern (goes to the DSL)"
                                    }
                                }
                            }
                        }
                        div { class: "field",
                            label {
                                span { class: "field-label", "Notes" }
                                textarea {
                                    name: "notes",
                                    rows: "5",
                                    value: "{form.notes}",
                                    oninput: move |evt: FormEvent| on_change.call(OutcomeChange::Notes(evt.value())),
                                }
                            }
                        }
                        if let Some(error) = error {
                            p { class: "field-error", role: "alert", "data-testid": "outcome-error", "{error}" }
                        }
                        button {
                            class: "button primary big",
                            r#type: "submit",
                            "data-testid": "submit-outcome",
                            "Record the outcome"
                        }
                    }
                },
            }
        }
    }
}
