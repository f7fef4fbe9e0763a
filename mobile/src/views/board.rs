use std::time::Duration;

use dioxus::prelude::*;
use homeward_shared::Timestamp;
use homeward_shared::api::{AlertKind, AlertStatus, BoardEntry, BoardView, SignalMap};
use homeward_shared::session::SessionStatus;

use super::{Loading, Problem};
use crate::Route;
use crate::components::{BoardMap, MapPoint, NavLink, map_model};
use crate::countdown::Countdown;
use crate::labels;
use crate::platform::sleep;
use crate::state::use_app;
use crate::sync::note_result;

/// How the live connection is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Live {
    Connecting,
    Connected,
    /// Lost; trying again. The board shown is the last one received.
    Reconnecting(String),
}

/// One row of the board, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardRow {
    pub number: usize,
    pub entry: BoardEntry,
    /// `OVERDUE +01:05` or `12:30`, counted from the deadline now.
    pub countdown: Option<String>,
    pub status_words: &'static str,
    pub alert_words: Vec<String>,
    pub position_words: String,
    pub battery_words: String,
}

pub fn alert_kind(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::MissedDeadline => "Missed deadline",
        AlertKind::Panic => "PANIC",
        AlertKind::Duress => "DURESS (silent)",
        AlertKind::LowBattery => "Low battery",
        AlertKind::SignalLost => "Signal lost",
        AlertKind::LeftGeofence => "Left the address",
        AlertKind::MissedStart => "Not started",
        AlertKind::SafetyNet => "Plan reaches nobody",
    }
}

pub fn alert_status(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Escalating => "escalating",
        AlertStatus::Acknowledged => "owned",
        AlertStatus::Resolved => "resolved",
        AlertStatus::StoodDown => "stood down",
    }
}

/// The board's rows at `now` (the server's order: alarms, then overdue, then by deadline).
pub fn board_rows(board: &BoardView, now: Timestamp) -> Vec<BoardRow> {
    board
        .sessions
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            // The server said overdue: a phone clock a moment behind must not show time still to go.
            let counted_from = match (entry.status, entry.deadline) {
                (SessionStatus::Overdue, Some(d)) if d > now => d + chrono::Duration::milliseconds(1),
                _ => now,
            };
            let countdown = entry.deadline.map(|d| Countdown::to(Some(d), counted_from).text());
            let alert_words = entry
                .alerts
                .iter()
                .map(|a| match &a.owner_name {
                    Some(owner) => format!("{}: owned by {owner}", alert_kind(a.kind)),
                    None => format!("{}: {}, nobody owns it yet", alert_kind(a.kind), alert_status(a.status)),
                })
                .collect();
            let position_words = match &entry.last_position {
                Some(p) => format!(
                    "Last position {:.5}, {:.5} (±{} m), {}",
                    p.latitude,
                    p.longitude,
                    p.accuracy_m.round() as i64,
                    labels::ago(p.at, now)
                ),
                None => "No position yet".into(),
            };
            let battery_words = match entry.battery_percent {
                Some(b) if b < 15 => format!("Battery {b}% (low)"),
                Some(b) => format!("Battery {b}%"),
                None => "Battery unknown".into(),
            };
            BoardRow {
                number: i + 1,
                entry: entry.clone(),
                countdown,
                status_words: labels::status(entry.status),
                alert_words,
                position_words,
                battery_words,
            }
        })
        .collect()
}

fn map_points(rows: &[BoardRow]) -> Vec<MapPoint> {
    rows.iter()
        .filter_map(|row| {
            let p = row.entry.last_position.as_ref()?;
            Some(MapPoint {
                label: row.number.to_string(),
                latitude: p.latitude,
                longitude: p.longitude,
                status: row.entry.status.as_str().to_string(),
                title: format!("{}. {}: {}", row.number, row.entry.worker_name, row.status_words),
            })
        })
        .collect()
}

/// The leaders' live board: pushed by the server as it changes, no reloading.
#[component]
pub fn Board() -> Element {
    let mut state = use_app();
    let mut board = use_signal(|| None::<BoardView>);
    let mut live = use_signal(|| Live::Connecting);
    let mut signal_map = use_signal(|| None::<Result<SignalMap, String>>);
    use_future(move || async move {
        loop {
            let result = state
                .api()
                .watch_board(|view| {
                    board.set(Some(view));
                    live.set(Live::Connected);
                })
                .await;
            note_result(&mut state, &result);
            let why = match result {
                Ok(()) => "the server closed the connection".to_string(),
                Err(e) => e.message(),
            };
            live.set(Live::Reconnecting(why));
            sleep(Duration::from_secs(3)).await;
        }
    });
    use_future(move || async move {
        let result = state.api().signal_map(90).await;
        signal_map.set(Some(result.map_err(|e| e.message())));
    });
    let now = *state.now.read();
    rsx! {
        BoardScreen { board: board(), live: live(), now, signal_map: signal_map() }
    }
}

#[component]
pub fn BoardScreen(
    board: Option<BoardView>,
    live: Live,
    now: Timestamp,
    signal_map: Option<Result<SignalMap, String>>,
) -> Element {
    let (live_class, live_words) = match &live {
        Live::Connecting => ("warn", "Connecting to the live board…".to_string()),
        Live::Connected => ("ok", "Live: updates arrive as they happen".to_string()),
        Live::Reconnecting(why) => {
            ("bad", format!("Not live ({why}): reconnecting. What is shown may be out of date."))
        }
    };
    let rows = board.as_ref().map(|b| board_rows(b, now)).unwrap_or_default();
    let map = board.as_ref().and_then(|b| map_model(&b.map_tile_url, &map_points(&rows)));
    rsx! {
        main { class: "screen board", "data-testid": "board",
            h1 { "Live board" }
            p {
                class: "banner {live_class}",
                role: "status",
                "data-testid": "board-live",
                "data-live": if live == Live::Connected { "true" } else { "false" },
                "{live_words}"
            }
            if board.is_none() {
                Loading { text: "Loading the board…" }
            } else if rows.is_empty() {
                p { class: "empty", "data-testid": "board-empty", "Nobody is out on a visit right now." }
            } else {
                ol { class: "board-list", "data-testid": "board-list",
                    for row in rows.iter() {
                        BoardItem { key: "{row.entry.session_id}", row: row.clone() }
                    }
                }
            }
            if let Some(model) = map {
                BoardMap {
                    model,
                    attribution: "Map tiles © OpenStreetMap contributors. If the map does not load, the numbered list above has every visit.",
                }
            }
            section { class: "panel", "data-testid": "signal-map",
                h2 { "Where phones lose signal" }
                match signal_map {
                    None => rsx! {
                        Loading { text: "Loading the signal map…" }
                    },
                    Some(Err(e)) => rsx! {
                        Problem { text: format!("The signal map could not be loaded: {e}") }
                    },
                    Some(Ok(map)) if map.cells.is_empty() => rsx! {
                        p { "No signal gaps recorded in the last 90 days." }
                    },
                    Some(Ok(map)) => rsx! {
                        p { class: "field-hint",
                            "Places where pings stopped for {map.gap_seconds / 60} minutes or more, or staff marked no signal, in areas of about {map.cell_size_m} m."
                        }
                        ul {
                            for cell in map.cells.iter().take(20) {
                                li { "data-testid": "signal-cell", "data-repeated": "{cell.repeated}",
                                    if cell.repeated {
                                        strong { "Repeated: " }
                                    }
                                    "{cell.latitude:.4}, {cell.longitude:.4}: {cell.gaps} gap(s) on {cell.sessions} visit(s), {cell.marks} mark(s) by staff"
                                }
                            }
                        }
                    },
                }
            }
        }
    }
}

#[component]
fn BoardItem(row: BoardRow) -> Element {
    let entry = &row.entry;
    let status = entry.status.as_str();
    let urgent = matches!(entry.status, SessionStatus::Alarm | SessionStatus::Overdue);
    let kind = labels::kind(&entry.kind, entry.sub_kind.as_deref());
    let first_alert = entry.alerts.first().map(|a| a.id);
    rsx! {
        li {
            class: "card board-item status-{status}",
            "data-testid": "board-item",
            "data-session-id": "{entry.session_id}",
            "data-status": "{status}",
            div { class: "card-head",
                span { class: "board-number", "{row.number}." }
                strong { class: "card-title", "{entry.worker_name}" }
                span { class: "badge badge-{status}", "data-testid": "board-status", "{row.status_words}" }
            }
            p { "{kind} · {entry.address}" }
            if let Some(countdown) = &row.countdown {
                p {
                    class: if urgent { "card-countdown overdue" } else { "card-countdown" },
                    "data-testid": "board-countdown",
                    if urgent && entry.status == SessionStatus::Overdue {
                        "{countdown}"
                    } else {
                        "Deadline in {countdown}"
                    }
                }
            }
            p { class: "field-hint", "{row.position_words} · {row.battery_words}" }
            for words in row.alert_words.iter() {
                p { class: "need bad", "{words}" }
            }
            if let Some(alert) = first_alert {
                NavLink {
                    to: Route::Alert { id: alert.to_string() },
                    class: "button primary",
                    testid: "open-alert",
                    "Open the alert"
                }
            }
        }
    }
}
