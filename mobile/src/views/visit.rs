use std::time::Duration;

use dioxus::prelude::*;
use homeward_shared::api::{ClientEventKind, SessionView};
use homeward_shared::session::{AlarmKind, ApprovalStatus, SessionStatus};
use uuid::Uuid;

use super::{Loading, Problem};
use crate::Route;
use crate::components::{NavLink, PanicButton};
use crate::countdown::Countdown;
use crate::labels;
use crate::platform::sleep;
use crate::projection::Projected;
use crate::queue::Queue;
use crate::state::{Action, AppState, Connection, Reading, SyncStatus, use_app};
use crate::sync::note_result;

/// The cancel window after the panic button has been held.
pub const PANIC_CANCEL_SECONDS: i64 = 5;
const REFRESH_EVERY: Duration = Duration::from_secs(15);
const SAFETY_NET_EVERY: Duration = Duration::from_secs(60);

/// Where the end-of-visit step is.
#[derive(Debug, Clone, PartialEq)]
pub enum EndStage {
    Idle,
    AskingPin { pin: String, error: Option<String> },
}

/// What the panic area shows.
#[derive(Debug, Clone, PartialEq)]
pub enum PanicView {
    Idle,
    /// Held: seconds left to cancel.
    Countdown(i64),
    /// Queued, being sent.
    Sending,
    /// Queued, and the server cannot be reached: keeps retrying; call 999.
    Failing,
    /// The server has the alarm.
    Sent,
    /// The server refused it (the visit had already ended, say): call 999 if in danger.
    Refused(String),
}

/// The panic button's local stage on this screen.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LocalPanic {
    Idle,
    Countdown { press: u64, left: i64 },
    Queued(Uuid),
}

#[derive(Debug, Clone, PartialEq)]
pub struct VisitModel {
    pub id: Uuid,
    pub status: SessionStatus,
    pub title: String,
    pub address: String,
    pub household_notes: String,
    pub pupil_reference: Option<String>,
    pub countdown: Countdown,
    /// Local time of the deadline, when there is one.
    pub deadline: Option<String>,
    pub last_check_in: Option<String>,
    pub approval: String,
    pub can_start: bool,
    pub has_pin: bool,
    pub end: EndStage,
    pub panic: PanicView,
    /// Actions on this visit not yet confirmed by the server.
    pub waiting: usize,
    pub offline: bool,
    /// Before the start: what the server's safety-net check found wrong with the plan (empty when fine or
    /// not yet known).
    pub safety_net: Vec<String>,
}

impl VisitModel {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        view: &SessionView,
        projected: &Projected,
        now: chrono::DateTime<chrono::Utc>,
        has_pin: bool,
        end: EndStage,
        panic: PanicView,
        waiting: usize,
        offline: bool,
    ) -> Self {
        let status = projected.status_at(now);
        Self {
            id: view.id,
            status,
            title: labels::session_title(view),
            address: view.address.clone(),
            household_notes: view.household_notes.clone(),
            pupil_reference: view.pupil_reference.clone(),
            countdown: if status.is_live() { Countdown::to(projected.deadline, now) } else { Countdown::NoDeadline },
            deadline: projected.deadline.filter(|_| status.is_live()).map(labels::clock_time),
            last_check_in: projected.last_check_in.map(labels::clock_time),
            approval: labels::approval(&view.approval),
            can_start: status == SessionStatus::Planned
                && matches!(projected.approval, ApprovalStatus::NotRequired | ApprovalStatus::Approved),
            has_pin,
            end,
            panic,
            waiting,
            offline,
            safety_net: Vec::new(),
        }
    }
}

fn panic_view(
    local: LocalPanic,
    queue: &Queue,
    id: Uuid,
    projected: &Projected,
    sync: &SyncStatus,
    connection: Connection,
) -> PanicView {
    if let LocalPanic::Countdown { left, .. } = local {
        return PanicView::Countdown(left);
    }
    let queued = queue.events_for(id).iter().any(|e| matches!(e.kind, ClientEventKind::Panic { .. }));
    if queued {
        return if sync.failing || connection == Connection::Offline { PanicView::Failing } else { PanicView::Sending };
    }
    if let LocalPanic::Queued(event) = local
        && let Some(rejection) = queue.rejection(event)
    {
        return PanicView::Refused(rejection.message.clone());
    }
    // Sent until a leader resolves the alarm; then the button is back.
    if projected.alarm == Some(AlarmKind::Panic) { PanicView::Sent } else { PanicView::Idle }
}

/// The active visit: countdown, check in, extend, end, panic.
#[component]
pub fn Visit(id: String) -> Element {
    // Keyed by the visit, so going from one visit to another starts afresh (its own polling and panic state).
    rsx! {
        VisitPage { key: "{id}", id: id.clone() }
    }
}

#[component]
fn VisitPage(id: String) -> Element {
    let mut state = use_app();
    let session_id = Uuid::parse_str(&id).ok();
    let mut end = use_signal(|| EndStage::Idle);
    let mut panic = use_signal(|| LocalPanic::Idle);
    let mut presses = use_signal(|| 0u64);
    let mut load_error = use_signal(|| None::<String>);
    let mut safety_net = use_signal(Vec::<String>::new);

    use_future(move || async move {
        let Some(id) = session_id else { return };
        loop {
            let mark = state.read_mark();
            let result = state.api().session(id).await;
            note_result(&mut state, &result);
            // A view read while queued events were being confirmed may be older than the phone's.
            let mut fresh = true;
            match result {
                Ok(view) => {
                    load_error.set(None);
                    fresh = state.still_fresh(mark);
                    if fresh {
                        state.dispatch(Action::SessionUpdated(view));
                    }
                }
                Err(e) => load_error.set(Some(e.message())),
            }
            sleep(if fresh { REFRESH_EVERY } else { Duration::from_secs(1) }).await;
        }
    });

    // The safety-net check, for the start screen: asked again now and then, as devices subscribe.
    use_future(move || async move {
        let Some(id) = session_id else { return };
        loop {
            if let Ok(report) = state.api().safety_net(id).await {
                safety_net.set(report.problems);
            }
            sleep(SAFETY_NET_EVERY).await;
        }
    });

    let Some(id) = session_id else {
        return rsx! {
            main { class: "screen",
                Problem { text: "That is not a visit's address." }
            }
        };
    };
    let Some((view, projected)) = state.session(id) else {
        return rsx! {
            main { class: "screen visit",
                match load_error() {
                    Some(error) => rsx! {
                        Problem { text: format!("This visit is not on this phone and could not be loaded: {error}") }
                        NavLink { to: Route::Today {}, class: "button big", "Back to Today" }
                    },
                    None => rsx! {
                        Loading { text: "Loading the visit…" }
                    },
                }
            }
        };
    };

    let now = *state.now.read();
    let queue = state.queue.read();
    let local = panic();
    let panic_shown = panic_view(local, &queue, id, &projected, &state.sync.read(), *state.connection.read());
    let waiting = queue.events_for(id).len();
    drop(queue);
    let has_pin = state.auth.read().as_ref().is_some_and(|a| a.user.has_pin);
    let mut model = VisitModel::new(
        &view,
        &projected,
        now,
        has_pin,
        end(),
        panic_shown,
        waiting,
        *state.connection.read() == Connection::Offline,
    );
    model.safety_net = safety_net();

    let to_outcome = move || {
        navigator().push(Route::VisitOutcome { id: id.to_string() });
    };
    let live = projected.status_at(now).is_live();

    rsx! {
        super::messages::VisitMessages { session_id: id, live }
        VisitScreen {
            model,
            on_start: move |_| {
                let location = latest_fix(&state);
                state.record(id, ClientEventKind::Start { location });
            },
            on_check_in: move |_| {
                state.record(id, ClientEventKind::CheckIn);
            },
            on_extend: move |minutes: i64| {
                state.record(id, ClientEventKind::Extend { minutes });
            },
            on_end: move |_| {
                if has_pin {
                    end.set(EndStage::AskingPin { pin: String::new(), error: None });
                } else {
                    state.record(id, ClientEventKind::End);
                    to_outcome();
                }
            },
            on_pin: move |pin: String| {
                end.set(EndStage::AskingPin { pin, error: None });
            },
            on_confirm_end: move |_| {
                let EndStage::AskingPin { pin, .. } = end() else { return };
                if pin.trim().is_empty() {
                    end.set(EndStage::AskingPin { pin, error: Some("Enter your PIN to end the visit.".into()) });
                    return;
                }
                end.set(EndStage::Idle);
                state.record(id, ClientEventKind::EndWithPin { pin: pin.trim().to_string() });
                to_outcome();
            },
            on_cancel_end: move |_| end.set(EndStage::Idle),
            on_panic_armed: move |_| {
                let press = *presses.peek() + 1;
                presses.set(press);
                panic.set(LocalPanic::Countdown { press, left: PANIC_CANCEL_SECONDS });
                spawn(async move {
                    for left in (0..PANIC_CANCEL_SECONDS).rev() {
                        sleep(Duration::from_secs(1)).await;
                        if !matches!(*panic.peek(), LocalPanic::Countdown { press: p, .. } if p == press) {
                            return;
                        }
                        if left > 0 {
                            panic.set(LocalPanic::Countdown { press, left });
                        }
                    }
                    let location = latest_fix(&state);
                    let event = state.record(id, ClientEventKind::Panic { location });
                    panic.set(LocalPanic::Queued(event));
                });
            },
            on_panic_cancel: move |_| panic.set(LocalPanic::Idle),
        }
    }
}

fn latest_fix(state: &AppState) -> Option<homeward_shared::Coordinates> {
    match &*state.location.peek() {
        Reading::Available(fix) => Some(fix.coordinates),
        _ => None,
    }
}

#[component]
pub fn VisitScreen(
    model: VisitModel,
    on_start: EventHandler<()>,
    on_check_in: EventHandler<()>,
    on_extend: EventHandler<i64>,
    on_end: EventHandler<()>,
    on_pin: EventHandler<String>,
    on_confirm_end: EventHandler<()>,
    on_cancel_end: EventHandler<()>,
    on_panic_armed: EventHandler<()>,
    on_panic_cancel: EventHandler<()>,
) -> Element {
    let status = model.status.as_str();
    let status_label = labels::status(model.status);
    let live = model.status.is_live();
    let overdue = model.countdown.is_overdue();
    let id = model.id;
    rsx! {
        main { class: "screen visit status-{status}", "data-testid": "visit", "data-session-id": "{id}",
            header { class: "visit-head",
                p { class: "visit-status-line",
                    span { class: "badge badge-{status}", "data-testid": "visit-status", "data-status": "{status}", "{status}" }
                    span { class: "status-words", " {status_label}" }
                }
                h1 { "{model.title}" }
                p { class: "visit-address", "{model.address}" }
            }
            if live {
                section { class: if overdue { "countdown-box overdue" } else { "countdown-box" },
                    p { class: "countdown-label",
                        if overdue {
                            "Past your deadline: check in now"
                        } else {
                            "Time to your next deadline"
                        }
                    }
                    p {
                        class: if overdue { "countdown overdue" } else { "countdown" },
                        "data-testid": "countdown",
                        "data-overdue": "{overdue}",
                        role: "timer",
                        "{model.countdown.text()}"
                    }
                    if let Some(deadline) = &model.deadline {
                        p { class: "countdown-note", "Deadline {deadline}" }
                    }
                    if let Some(at) = &model.last_check_in {
                        p { class: "countdown-note", "Last check-in {at}" }
                    }
                    if model.offline {
                        p { class: "countdown-note warn",
                            "Offline: the clock keeps running; your actions are saved and sent when the connection returns."
                        }
                    }
                }
                button {
                    class: "button primary huge",
                    "data-testid": "check-in",
                    onclick: move |_| on_check_in.call(()),
                    "I'm OK: check in"
                }
                PanicArea { panic: model.panic.clone(), on_panic_armed, on_panic_cancel }
                section { class: "visit-actions",
                    div { class: "extend-row",
                        for minutes in [15i64, 30, 60] {
                            button {
                                class: "button big",
                                "data-testid": "extend-{minutes}",
                                onclick: move |_| on_extend.call(minutes),
                                "+{minutes} min"
                            }
                        }
                    }
                    match &model.end {
                        EndStage::Idle => rsx! {
                            button {
                                class: "button big end",
                                "data-testid": "end-visit",
                                onclick: move |_| on_end.call(()),
                                "End visit: I have left and I am safe"
                            }
                        },
                        EndStage::AskingPin { pin, error } => rsx! {
                            div { class: "pin-box",
                                label {
                                    span { class: "field-label", "Your PIN" }
                                    input {
                                        name: "pin",
                                        r#type: "password",
                                        inputmode: "numeric",
                                        autocomplete: "off",
                                        value: "{pin}",
                                        oninput: move |evt| on_pin.call(evt.value()),
                                    }
                                }
                                if let Some(error) = error {
                                    p { class: "field-error", role: "alert", "data-testid": "error-pin", "{error}" }
                                }
                                button {
                                    class: "button primary big",
                                    "data-testid": "confirm-end",
                                    onclick: move |_| on_confirm_end.call(()),
                                    "End visit"
                                }
                                button {
                                    class: "button big",
                                    onclick: move |_| on_cancel_end.call(()),
                                    "Not yet"
                                }
                            }
                        },
                    }
                }
            } else if model.status == SessionStatus::Planned {
                section { class: "visit-planned",
                    p { class: "card-approval", "{model.approval}" }
                    if !model.safety_net.is_empty() {
                        div { class: "banner bad safety-net", role: "alert", "data-testid": "safety-net",
                            p { strong { "If you do not check in, the plan may reach nobody:" } }
                            ul {
                                for problem in model.safety_net.iter() {
                                    li { "{problem}" }
                                }
                            }
                            p { "Subscribe a device in Settings, or ask your admin before you go." }
                        }
                    }
                    if model.can_start {
                        button {
                            class: "button primary huge",
                            "data-testid": "start-visit",
                            onclick: move |_| on_start.call(()),
                            "Start visit"
                        }
                    }
                }
            } else {
                section { class: "visit-ended",
                    p { "This visit has ended." }
                    if model.status == SessionStatus::Ended {
                        NavLink {
                            to: Route::VisitOutcome { id: id.to_string() },
                            class: "button primary big",
                            "Record the outcome"
                        }
                    }
                    NavLink { to: Route::Today {}, class: "button big", "Back to Today" }
                }
            }
            if model.waiting > 0 {
                p { class: "waiting", "{model.waiting} action(s) on this visit waiting to be sent." }
            }
            if !model.household_notes.is_empty() || model.pupil_reference.is_some() {
                details { class: "visit-notes",
                    summary { "Visit notes" }
                    if let Some(pupil) = &model.pupil_reference {
                        p { "Pupil reference: {pupil}" }
                    }
                    if !model.household_notes.is_empty() {
                        p { "{model.household_notes}" }
                    }
                }
            }
            NavLink { to: Route::Today {}, class: "link", "← Today" }
        }
    }
}

/// The panic button, its cancel window, and what became of the alarm.
#[component]
fn PanicArea(panic: PanicView, on_panic_armed: EventHandler<()>, on_panic_cancel: EventHandler<()>) -> Element {
    let call_999 = rsx! {
        a { class: "button call-999 huge", href: "tel:999", "data-testid": "call-999", "Call 999" }
    };
    rsx! {
        section { class: "panic-area",
            match panic {
                PanicView::Idle => rsx! {
                    PanicButton { on_armed: on_panic_armed }
                },
                PanicView::Countdown(left) => rsx! {
                    div { class: "panic-countdown", role: "alert", "data-testid": "panic-countdown",
                        p { class: "panic-countdown-text", "Sending the alarm in " span { class: "panic-seconds", "{left}" } " s" }
                        button {
                            class: "button huge cancel",
                            "data-testid": "panic-cancel",
                            onclick: move |_| on_panic_cancel.call(()),
                            "Cancel: I am safe"
                        }
                    }
                },
                PanicView::Sending => rsx! {
                    p { class: "panic-status", role: "status", "data-testid": "panic-sending", "Sending the alarm…" }
                },
                PanicView::Failing => rsx! {
                    div { class: "panic-status bad", role: "alert", "data-testid": "panic-failing",
                        p { "The alarm cannot reach the server yet. It keeps trying. If you are in danger:" }
                        {call_999}
                    }
                },
                PanicView::Sent => rsx! {
                    div { class: "panic-status sent", role: "status", "data-testid": "panic-sent",
                        p { "Alarm sent. Your leaders have been alerted and are responding." }
                        a { class: "button big", href: "tel:999", "Call 999" }
                    }
                },
                PanicView::Refused(message) => rsx! {
                    div { class: "panic-status bad", role: "alert", "data-testid": "panic-refused",
                        p { "The alarm was refused: {message}. If you are in danger:" }
                        {call_999}
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use homeward_shared::api::ClientEvent;

    use super::*;
    use crate::projection::project;
    use crate::projection::tests::{active_view, t};
    use crate::queue::{Batch, Queued, SendResult};

    fn panic_event(id: u128) -> ClientEvent {
        ClientEvent { id: Uuid::from_u128(id), at: t(5), kind: ClientEventKind::Panic { location: None } }
    }

    fn failing() -> SyncStatus {
        SyncStatus { sending: false, failing: true, last_error: Some("offline".into()) }
    }

    #[test]
    fn a_queued_panic_is_sending_until_a_send_fails_then_offers_999() {
        let view = active_view(None);
        let event = panic_event(7);
        let mut queue = Queue::default();
        queue.push(Queued::Event { session_id: view.id, event: event.clone() });
        let projected = project(&view, None, &[&event]);
        let local = LocalPanic::Queued(event.id);
        let online = Connection::Online;
        assert_eq!(panic_view(local, &queue, view.id, &projected, &SyncStatus::default(), online), PanicView::Sending);
        assert_eq!(panic_view(local, &queue, view.id, &projected, &failing(), online), PanicView::Failing);
        let offline = Connection::Offline;
        assert_eq!(panic_view(local, &queue, view.id, &projected, &SyncStatus::default(), offline), PanicView::Failing);
    }

    #[test]
    fn a_confirmed_panic_shows_sent_until_the_alarm_is_resolved() {
        let mut view = active_view(None);
        view.status = SessionStatus::Alarm;
        view.alarm = Some(AlarmKind::Panic);
        let queue = Queue::default();
        let local = LocalPanic::Queued(Uuid::from_u128(7));
        let sync = SyncStatus::default();
        let projected = project(&view, None, &[]);
        assert_eq!(panic_view(local, &queue, view.id, &projected, &sync, Connection::Online), PanicView::Sent);
        // After a reload the phone still knows, from the server.
        assert_eq!(
            panic_view(LocalPanic::Idle, &queue, view.id, &projected, &sync, Connection::Online),
            PanicView::Sent
        );
        let resolved = project(&active_view(None), None, &[]);
        assert_eq!(panic_view(local, &queue, view.id, &resolved, &sync, Connection::Online), PanicView::Idle);
    }

    #[test]
    fn a_refused_panic_says_so_and_offers_999() {
        let view = active_view(None);
        let event = panic_event(7);
        let mut queue = Queue::default();
        queue.push(Queued::Event { session_id: view.id, event: event.clone() });
        let batch = Batch::Events { session_id: view.id, events: vec![event.clone()] };
        queue.settle(&batch, &SendResult::Refused { message: "the visit has already ended".into() });
        let projected = project(&view, None, &[]);
        let shown = panic_view(
            LocalPanic::Queued(event.id),
            &queue,
            view.id,
            &projected,
            &SyncStatus::default(),
            Connection::Online,
        );
        assert_eq!(shown, PanicView::Refused("the visit has already ended".into()));
    }

    #[test]
    fn the_cancel_window_wins_over_everything() {
        let view = active_view(None);
        let projected = project(&view, None, &[]);
        let local = LocalPanic::Countdown { press: 1, left: 4 };
        let shown =
            panic_view(local, &Queue::default(), view.id, &projected, &SyncStatus::default(), Connection::Offline);
        assert_eq!(shown, PanicView::Countdown(4));
    }
}
