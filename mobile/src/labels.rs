//! How domain values read to the worker: kinds, statuses, approvals and times in plain words.

use chrono::{DateTime, Local};
use homeward_shared::Timestamp;
use homeward_shared::api::{ApprovalView, SessionView};
use homeward_shared::session::{ApprovalStatus, SessionStatus};

pub fn kind(kind: &str, sub_kind: Option<&str>) -> String {
    let main = match kind {
        "home_visit" => "Home visit",
        "offsite_meeting" => "Off-site meeting",
        "on_site_alone" => "Alone on site",
        "travel" => "Travel",
        other => other,
    };
    match (kind, sub_kind) {
        ("home_visit", Some(sub)) => format!("{main}: {}", sub_kind_label(sub)),
        _ => main.to_string(),
    }
}

pub fn sub_kind_label(sub: &str) -> &str {
    match sub {
        "safe_and_well" => "safe and well",
        "procedural" => "procedural",
        "education" => "education",
        "other" => "other",
        other => other,
    }
}

pub fn session_title(view: &SessionView) -> String {
    kind(&view.kind, view.sub_kind.as_deref())
}

pub fn status(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Planned => "Planned",
        SessionStatus::Active => "Under way",
        SessionStatus::Overdue => "Overdue",
        SessionStatus::Alarm => "Alarm raised",
        SessionStatus::Ended => "Ended",
        SessionStatus::OutcomeRecorded => "Outcome recorded",
    }
}

pub fn approval(approval: &ApprovalView) -> String {
    match approval.status {
        ApprovalStatus::NotRequired => "No approval needed".into(),
        ApprovalStatus::Required => "Needs approval: not asked for yet".into(),
        ApprovalStatus::Pending => "Waiting for a leader's approval".into(),
        ApprovalStatus::Approved => "Approved".into(),
        ApprovalStatus::Rejected => match &approval.reason {
            Some(reason) if !reason.trim().is_empty() => format!("Not approved: {reason}"),
            _ => "Not approved".into(),
        },
    }
}

fn local(at: Timestamp) -> DateTime<Local> {
    at.with_timezone(&Local)
}

/// `14:05`, or `Tue 24 Nov 14:05` when not today.
pub fn when(at: Timestamp, now: Timestamp) -> String {
    let (at, now) = (local(at), local(now));
    if at.date_naive() == now.date_naive() {
        at.format("%H:%M").to_string()
    } else {
        at.format("%a %-d %b %H:%M").to_string()
    }
}

/// `14:05:09`: for deadlines and check-ins.
pub fn clock_time(at: Timestamp) -> String {
    local(at).format("%H:%M:%S").to_string()
}

/// How long ago, roughly: `just now`, `40 s ago`, `3 min ago`.
pub fn ago(at: Timestamp, now: Timestamp) -> String {
    let seconds = (now - at).num_seconds().max(0);
    match seconds {
        0..=4 => "just now".into(),
        5..=89 => format!("{seconds} s ago"),
        _ => format!("{} min ago", (seconds + 30) / 60),
    }
}
