use std::time::Duration;

use dioxus::prelude::*;
use homeward_shared::Timestamp;
use homeward_shared::api::{ClientEvent, ClientEventKind};
use homeward_shared::session::{ApprovalStatus, SessionStatus};
use uuid::Uuid;

use super::{Loading, Problem};
use crate::Route;
use crate::components::{CardModel, NavLink, SessionCard, StartOption};
use crate::countdown::Countdown;
use crate::labels;
use crate::platform::{sleep, with_timeout};
use crate::queue::Queue;
use crate::state::{Action, AppState, Connection, Reading, SessionCache, use_app};
use crate::sync::note_result;

const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// How long starting a visit waits for a location fix before starting without one.
const START_FIX_WAIT: Duration = Duration::from_secs(5);

/// Something that needs the worker's (or the leader's) attention.
#[derive(Debug, Clone, PartialEq)]
pub enum NeedsMe {
    Overdue {
        id: Uuid,
        title: String,
    },
    RecordOutcome {
        id: Uuid,
        title: String,
    },
    AskApproval {
        id: Uuid,
        title: String,
    },
    NotApproved {
        id: Uuid,
        title: String,
        reason: String,
    },
    /// Leaders: visits waiting for their decision.
    Approvals {
        count: usize,
    },
    /// Leaders: an open alert.
    Alert {
        id: Uuid,
        text: String,
    },
}

/// My sessions as cards, and what needs me, from what the phone knows.
pub fn today_model(sessions: &SessionCache, queue: &Queue, now: Timestamp) -> (Vec<CardModel>, Vec<NeedsMe>) {
    let today = now.with_timezone(&chrono::Local).date_naive();
    let mut rows = Vec::new();
    let mut needs = Vec::new();
    for (id, view) in &sessions.sessions {
        let Some(projected) = sessions.projected(*id, queue) else { continue };
        let status = projected.status_at(now);
        let title = labels::session_title(view);
        let ended_today = view.ended_at.is_none_or(|at| at.with_timezone(&chrono::Local).date_naive() == today);
        match status {
            SessionStatus::Overdue => needs.push(NeedsMe::Overdue { id: *id, title: title.clone() }),
            SessionStatus::Ended => needs.push(NeedsMe::RecordOutcome { id: *id, title: title.clone() }),
            SessionStatus::Planned => match projected.approval {
                ApprovalStatus::Required => needs.push(NeedsMe::AskApproval { id: *id, title: title.clone() }),
                ApprovalStatus::Rejected => needs.push(NeedsMe::NotApproved {
                    id: *id,
                    title: title.clone(),
                    reason: view.approval.reason.clone().unwrap_or_default(),
                }),
                _ => {}
            },
            _ => {}
        }
        if matches!(status, SessionStatus::Ended | SessionStatus::OutcomeRecorded) && !ended_today {
            continue;
        }
        let start = match (status, projected.approval) {
            (SessionStatus::Planned, ApprovalStatus::NotRequired | ApprovalStatus::Approved) => StartOption::Ready,
            (SessionStatus::Planned, ApprovalStatus::Required) => {
                StartOption::Blocked("This visit needs a leader's approval first: ask for it below.".into())
            }
            (SessionStatus::Planned, ApprovalStatus::Pending) => {
                StartOption::Blocked("Waiting for a leader's approval before it can start.".into())
            }
            _ => StartOption::Hidden,
        };
        let countdown = status.is_live().then(|| {
            let countdown = Countdown::to(projected.deadline, now);
            (countdown.text(), countdown.is_overdue())
        });
        let order = match status {
            SessionStatus::Alarm | SessionStatus::Overdue | SessionStatus::Active => 0,
            SessionStatus::Planned => 1,
            SessionStatus::Ended | SessionStatus::OutcomeRecorded => 2,
        };
        let sort_time = projected.deadline.unwrap_or(view.planned_start);
        rows.push((
            order,
            sort_time,
            CardModel {
                id: *id,
                status,
                title,
                address: view.address.clone(),
                when: labels::when(view.planned_start, now),
                approval: labels::approval(&view.approval),
                countdown,
                start,
                waiting: queue.events_for(*id).len(),
            },
        ));
    }
    rows.sort_by_key(|row| (row.0, row.1));
    (rows.into_iter().map(|(_, _, card)| card).collect(), needs)
}

/// Load my sessions (and, for leaders, what awaits them). False when the list was too old to show.
async fn refresh(
    mut state: AppState,
    mut loading: Signal<bool>,
    mut error: Signal<Option<String>>,
    mut leader: Signal<Vec<NeedsMe>>,
) -> bool {
    let Some(auth) = state.auth.peek().clone() else { return true };
    loading.set(true);
    let api = state.api();
    let mark = state.read_mark();
    let result = api.my_sessions().await;
    note_result(&mut state, &result);
    match result {
        Ok(views) => {
            // A list read while the queue was being confirmed may be older than the phone's view.
            if !state.still_fresh(mark) {
                return false;
            }
            state.dispatch(Action::SessionsLoaded(views));
            error.set(None);
        }
        Err(e) => error.set(Some(e.message())),
    }
    loading.set(false);
    if auth.is_leader() {
        let mut items = Vec::new();
        if let Ok(pending) = api.awaiting_my_approval().await
            && !pending.is_empty()
        {
            items.push(NeedsMe::Approvals { count: pending.len() });
        }
        if let Ok(alerts) = api.open_alerts().await {
            items.extend(alerts.into_iter().map(|a| NeedsMe::Alert {
                id: a.id,
                text: format!("{:?} alert: {} at {}", a.kind, a.worker_name, a.session.address),
            }));
        }
        leader.set(items);
    }
    true
}

/// Start a visit: the time is when the button was pressed; the position, if one comes within a few
/// seconds. Then to the visit screen.
fn start(mut state: AppState, mut starting: Signal<Option<Uuid>>, id: Uuid) {
    if starting.peek().is_some() {
        return;
    }
    let pressed = chrono::Utc::now();
    starting.set(Some(id));
    spawn(async move {
        let fix = with_timeout(START_FIX_WAIT, state.platform().location.current()).await;
        let location = match fix {
            Some(Ok(fix)) => {
                state.dispatch(Action::Location(Reading::Available(fix)));
                Some(fix.coordinates)
            }
            Some(Err(why)) => {
                state.dispatch(Action::Location(Reading::Unavailable(why)));
                None
            }
            None => None,
        };
        let event = ClientEvent { id: Uuid::new_v4(), at: pressed, kind: ClientEventKind::Start { location } };
        state.dispatch(Action::Record { session_id: id, event });
        starting.set(None);
        navigator().push(Route::Visit { id: id.to_string() });
    });
}

fn ask_approval(mut state: AppState, mut error: Signal<Option<String>>, id: Uuid) {
    spawn(async move {
        let result = state.api().request_approval(id).await;
        note_result(&mut state, &result);
        match result {
            Ok(view) => state.dispatch(Action::SessionUpdated(view)),
            Err(e) => error.set(Some(format!("Could not ask for approval: {}", e.message()))),
        }
    });
}

/// Today: my planned and live visits, and what needs me.
#[component]
pub fn Today() -> Element {
    let state = use_app();
    let loading = use_signal(|| false);
    let error = use_signal(|| None::<String>);
    let leader = use_signal(Vec::<NeedsMe>::new);
    let starting = use_signal(|| None::<Uuid>);

    use_future(move || async move {
        loop {
            let fresh = refresh(state, loading, error, leader).await;
            sleep(if fresh { REFRESH_EVERY } else { Duration::from_secs(1) }).await;
        }
    });

    let now = *state.now.read();
    let sessions = state.sessions.read();
    let (cards, mut needs) = today_model(&sessions, &state.queue.read(), now);
    needs.extend(leader());
    let loaded = sessions.loaded_at.is_some();
    drop(sessions);
    rsx! {
        TodayScreen {
            cards,
            needs,
            loading: loading() && !loaded,
            loaded,
            error: error(),
            offline: *state.connection.read() == Connection::Offline,
            starting: starting(),
            on_open: move |id: Uuid| {
                navigator().push(Route::Visit { id: id.to_string() });
            },
            on_start: move |id| start(state, starting, id),
            on_request_approval: move |id| ask_approval(state, error, id),
        }
    }
}

#[component]
pub fn TodayScreen(
    cards: Vec<CardModel>,
    needs: Vec<NeedsMe>,
    loading: bool,
    /// Whether the phone has ever had a list from the server.
    loaded: bool,
    error: Option<String>,
    offline: bool,
    starting: Option<Uuid>,
    on_open: EventHandler<Uuid>,
    on_start: EventHandler<Uuid>,
    on_request_approval: EventHandler<Uuid>,
) -> Element {
    rsx! {
        main { class: "screen today", "data-testid": "today",
            nav { class: "actions",
                NavLink {
                    to: Route::Plan {},
                    class: "button primary big",
                    testid: "plan-visit",
                    "Plan a visit"
                }
                NavLink {
                    to: Route::Settings {},
                    class: "button big",
                    testid: "open-settings",
                    "Settings"
                }
            }
            if offline {
                p { class: "banner warn", role: "status", "data-testid": "offline",
                    "Offline: showing what this phone last saved. Your actions are kept and sent when the connection returns."
                }
            } else if let Some(error) = error {
                Problem { text: format!("Could not load your visits: {error}") }
            }
            if starting.is_some() {
                p { class: "banner", role: "status", "Starting the visit: getting your location…" }
            }
            if !needs.is_empty() {
                section { class: "needs", "data-testid": "needs-me",
                    h2 { "Needs you" }
                    ul {
                        for item in needs {
                            NeedsMeItem { item, on_request_approval }
                        }
                    }
                }
            }
            if loading {
                Loading { text: "Loading your visits…" }
            } else if cards.is_empty() && (loaded || offline) {
                div { class: "empty", "data-testid": "today-empty",
                    p { "No visits planned." }
                    p { "Plan a visit before you set off: it is timed and watched from the moment you start it." }
                }
            } else if !cards.is_empty() {
                section { class: "cards",
                    h2 { "Your visits" }
                    for card in cards {
                        SessionCard { key: "{card.id}", card, on_open, on_start }
                    }
                }
            }
        }
    }
}

#[component]
fn NeedsMeItem(item: NeedsMe, on_request_approval: EventHandler<Uuid>) -> Element {
    match item {
        NeedsMe::Overdue { id, title } => rsx! {
            li { class: "need bad",
                NavLink { to: Route::Visit { id: id.to_string() }, "Overdue: check in now ({title})" }
            }
        },
        NeedsMe::RecordOutcome { id, title } => rsx! {
            li { class: "need",
                NavLink { to: Route::VisitOutcome { id: id.to_string() }, "Record the outcome: {title}" }
            }
        },
        NeedsMe::AskApproval { id, title } => rsx! {
            li { class: "need",
                span { "{title} needs a leader's approval. " }
                button {
                    class: "button small",
                    "data-testid": "request-approval",
                    onclick: move |_| on_request_approval.call(id),
                    "Ask for approval"
                }
            }
        },
        NeedsMe::NotApproved { title, reason, .. } => rsx! {
            li { class: "need bad", "Not approved: {title}. {reason}" }
        },
        NeedsMe::Approvals { count } => rsx! {
            li { class: "need", "{count} visit(s) await your approval." }
        },
        NeedsMe::Alert { id, text } => rsx! {
            li { class: "need bad",
                NavLink { to: Route::Alert { id: id.to_string() }, "{text}" }
            }
        },
    }
}
