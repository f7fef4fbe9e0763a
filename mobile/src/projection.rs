//! What the phone shows for a session while some of the worker's actions are still waiting to be sent:
//! the server's last view, with the queued events applied by the same state machine the server runs
//! (`homeward_shared::session`). The server's next answer replaces the guess.

use homeward_shared::Timestamp;
use homeward_shared::api::{ClientEvent, ClientEventKind, SessionView};
use homeward_shared::session::{
    AlarmKind, ApprovalStatus, Event, EventKind, PinCheck, SessionState, SessionStatus, SessionTerms,
};
use homeward_shared::{CheckInInterval, VisitDuration};

/// A session as the phone shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Projected {
    pub status: SessionStatus,
    pub approval: ApprovalStatus,
    pub deadline: Option<Timestamp>,
    pub planned_end: Option<Timestamp>,
    pub last_check_in: Option<Timestamp>,
    pub alarm: Option<AlarmKind>,
    pub started: bool,
    pub ended: bool,
    pub outcome_recorded: bool,
}

impl Projected {
    /// The status to show at `now`: a live visit past its deadline is overdue even before the server
    /// (out of reach, perhaps) says so.
    pub fn status_at(&self, now: Timestamp) -> SessionStatus {
        match (self.status, self.deadline) {
            (SessionStatus::Active, Some(deadline)) if deadline <= now => SessionStatus::Overdue,
            (status, _) => status,
        }
    }
}

fn terms(view: &SessionView) -> Option<SessionTerms> {
    Some(SessionTerms {
        expected_duration: VisitDuration::parse(view.expected_duration_minutes).ok()?,
        check_in_interval: view.check_in_interval_minutes.map(CheckInInterval::parse).transpose().ok()?,
        approval_required: view.approval.status != ApprovalStatus::NotRequired,
    })
}

/// The state machine's state, rebuilt from the server's view. The view has the deadline but not the
/// planned end behind it when the next check-in comes first; `planned_end_hint` is the phone's own
/// last projection of it.
pub fn state_from_view(view: &SessionView, terms: &SessionTerms, planned_end_hint: Option<Timestamp>) -> SessionState {
    let mut state = SessionState::new(terms);
    state.status = view.status;
    state.approval = view.approval.status;
    state.rejection_reason = view.approval.reason.clone();
    state.started_at = view.started_at;
    state.ended_at = view.ended_at;
    state.last_check_in = view.last_check_in;
    state.late_check_ins = u32::try_from(view.late_check_ins).unwrap_or(0);
    state.alarm = view.alarm;
    state.outcome = view.outcome.clone();
    state.deadline = view.deadline;
    if view.status.is_live() && view.ended_at.is_none() {
        let next_check_in = terms
            .check_in_interval
            .and_then(|interval| view.last_check_in.or(view.started_at).map(|from| from + interval.duration()));
        state.next_check_in = next_check_in;
        state.planned_end = match (view.deadline, next_check_in) {
            // The deadline is the check-in: the planned end lies at or beyond it.
            (Some(deadline), Some(check_in)) if deadline >= check_in => {
                let from_start = view.started_at.map(|s| s + terms.expected_duration.duration());
                [Some(deadline), from_start, planned_end_hint].into_iter().flatten().max()
            }
            (deadline, _) => deadline,
        };
        if view.status == SessionStatus::Overdue {
            state.overdue_since = view.deadline;
        }
    }
    state
}

/// The event the server will apply for a queued client event. The PIN's meaning is the server's to
/// decide: the phone shows every PIN end as a normal end, which is what a duress PIN must look like.
pub fn to_event(event: &ClientEvent) -> Option<Event> {
    let kind = match &event.kind {
        ClientEventKind::Start { location } => EventKind::Start { location: *location },
        ClientEventKind::CheckIn => EventKind::CheckIn,
        ClientEventKind::Extend { minutes } => EventKind::Extend { minutes: u32::try_from(*minutes).ok()? },
        ClientEventKind::End => EventKind::End,
        ClientEventKind::EndWithPin { .. } => EventKind::EndWithPin { pin: PinCheck::Safe },
        ClientEventKind::Panic { location } => EventKind::Panic { location: *location },
        ClientEventKind::Outcome { outcome } => EventKind::RecordOutcome { outcome: outcome.clone() },
    };
    Some(Event { id: event.id, at: event.at, kind })
}

/// The server's view with the queued events applied in the order they happened. Events the state
/// machine refuses are left for the server to judge (and the worker is told if it refuses them too).
pub fn project(view: &SessionView, planned_end_hint: Option<Timestamp>, queued: &[&ClientEvent]) -> Projected {
    let Some(terms) = terms(view) else { return from_view(view) };
    let mut state = state_from_view(view, &terms, planned_end_hint);
    let mut events: Vec<Event> = queued.iter().filter_map(|e| to_event(e)).collect();
    homeward_shared::session::in_time_order(&mut events);
    for event in &events {
        if let Ok(transition) = state.apply(&terms, event) {
            state = transition.state;
        }
    }
    Projected {
        status: state.status,
        approval: state.approval,
        deadline: if state.status.is_live() { state.deadline } else { None },
        planned_end: state.planned_end,
        last_check_in: state.last_check_in,
        alarm: state.alarm,
        started: state.started_at.is_some(),
        ended: state.ended_at.is_some(),
        outcome_recorded: state.outcome.is_some(),
    }
}

/// The view as it is, when its terms cannot be rebuilt (a server newer than this app, say).
fn from_view(view: &SessionView) -> Projected {
    Projected {
        status: view.status,
        approval: view.approval.status,
        deadline: view.deadline,
        planned_end: view.deadline,
        last_check_in: view.last_check_in,
        alarm: view.alarm,
        started: view.started_at.is_some(),
        ended: view.ended_at.is_some(),
        outcome_recorded: view.outcome.is_some(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{Duration, TimeZone};
    use homeward_shared::RiskAssessment;
    use homeward_shared::api::ApprovalView;
    use homeward_shared::session::{Concern, Outcome};
    use uuid::Uuid;

    use super::*;

    pub fn t(minutes: i64) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    /// A planned home visit of 60 minutes, as the server shows it to its worker.
    pub fn planned_view(interval: Option<i64>) -> SessionView {
        SessionView {
            id: Uuid::from_u128(42),
            school_id: Uuid::from_u128(1),
            worker_id: Uuid::from_u128(2),
            worker_name: "Dana Whitfield".into(),
            companion_id: None,
            kind: "home_visit".into(),
            sub_kind: Some("education".into()),
            address: "12 Elm Road, Leeds".into(),
            location: None,
            geofence_radius_m: 150,
            pupil_reference: Some("ADM-2024/017".into()),
            household_notes: "Dog in the garden".into(),
            planned_start: t(0),
            expected_duration_minutes: 60,
            check_in_interval_minutes: interval,
            escalation_plan_id: Uuid::from_u128(3),
            risk_assessment: RiskAssessment::all_low(),
            approval: ApprovalView {
                status: ApprovalStatus::NotRequired,
                reason: None,
                decided_by: None,
                decided_at: None,
            },
            status: SessionStatus::Planned,
            alarm: None,
            deadline: None,
            started_at: None,
            ended_at: None,
            last_check_in: None,
            late_check_ins: 0,
            outcome: None,
            created_at: t(-30),
        }
    }

    /// The first deadline of a visit started at `at`.
    fn first_deadline(view: &SessionView, at: Timestamp) -> Option<Timestamp> {
        let duration = Duration::minutes(view.expected_duration_minutes);
        let interval = view.check_in_interval_minutes.map(Duration::minutes);
        Some(match interval {
            Some(interval) if interval < duration => at + interval,
            _ => at + duration,
        })
    }

    pub fn active_view(interval: Option<i64>) -> SessionView {
        let mut view = planned_view(interval);
        view.status = SessionStatus::Active;
        view.started_at = Some(t(0));
        view.deadline = first_deadline(&view, t(0));
        view
    }

    fn ev(n: u128, minutes: i64, kind: ClientEventKind) -> ClientEvent {
        ClientEvent { id: Uuid::from_u128(n), at: t(minutes), kind }
    }

    #[test]
    fn a_queued_start_makes_a_planned_visit_active_with_its_first_deadline() {
        let view = planned_view(Some(20));
        let start = ev(1, 5, ClientEventKind::Start { location: None });
        let p = project(&view, None, &[&start]);
        assert_eq!(p.status, SessionStatus::Active);
        assert_eq!(p.deadline, Some(t(25)));
    }

    #[test]
    fn an_offline_check_in_moves_the_deadline_and_stands_down_an_overdue_visit() {
        let mut view = active_view(Some(20));
        view.status = SessionStatus::Overdue;
        let check_in = ev(1, 22, ClientEventKind::CheckIn);
        let p = project(&view, None, &[&check_in]);
        assert_eq!(p.status, SessionStatus::Active);
        assert_eq!(p.deadline, Some(t(42)));
    }

    #[test]
    fn an_offline_extend_moves_the_planned_end() {
        let view = active_view(None);
        let extend = ev(1, 10, ClientEventKind::Extend { minutes: 30 });
        let p = project(&view, None, &[&extend]);
        assert_eq!(p.deadline, Some(t(90)));
        assert_eq!(p.planned_end, Some(t(90)));
    }

    #[test]
    fn the_hint_keeps_an_earlier_extension_when_the_check_in_is_the_deadline() {
        // Planned end moved to 10:90 by an extension the server already has; check-ins every 20.
        let mut view = active_view(Some(20));
        view.last_check_in = Some(t(70));
        view.deadline = Some(t(90));
        let state = state_from_view(&view, &terms(&view).unwrap(), Some(t(120)));
        assert_eq!(state.planned_end, Some(t(120)));
        assert_eq!(state.next_check_in, Some(t(90)));
    }

    #[test]
    fn panic_and_pin_end_project_as_the_worker_should_see_them() {
        let view = active_view(None);
        let panic = ev(1, 10, ClientEventKind::Panic { location: None });
        assert_eq!(project(&view, None, &[&panic]).status, SessionStatus::Alarm);
        let end = ev(2, 10, ClientEventKind::EndWithPin { pin: "9999".into() });
        let p = project(&view, None, &[&end]);
        assert_eq!(p.status, SessionStatus::Ended, "a duress PIN looks like a normal end");
        assert_eq!(p.deadline, None);
        let outcome = ev(
            3,
            11,
            ClientEventKind::Outcome {
                outcome: Outcome {
                    child_seen: true,
                    responsible_adult_present: true,
                    entered_premises: false,
                    concern: Concern::None,
                    notes: String::new(),
                },
            },
        );
        assert_eq!(project(&view, None, &[&end, &outcome]).status, SessionStatus::OutcomeRecorded);
    }

    #[test]
    fn events_the_state_machine_refuses_are_left_to_the_server() {
        let view = planned_view(None);
        let check_in = ev(1, 5, ClientEventKind::CheckIn);
        assert_eq!(project(&view, None, &[&check_in]).status, SessionStatus::Planned);
    }

    #[test]
    fn a_live_visit_past_its_deadline_shows_overdue() {
        let p = project(&active_view(None), None, &[]);
        assert_eq!(p.status_at(t(59)), SessionStatus::Active);
        assert_eq!(p.status_at(t(61)), SessionStatus::Overdue);
    }
}
