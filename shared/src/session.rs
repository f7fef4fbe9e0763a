//! The lone-working session as a pure state machine: `apply(state, event)` gives the new state and its
//! effects, or says why the event cannot happen. The server replays a session's stored events in the
//! order they happened (not the order they arrived), so a check-in queued offline still counts.

use std::collections::BTreeSet;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CheckInInterval, Coordinates, ExtendMinutes, Timestamp, VisitDuration};

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Planned,
    Active,
    /// A deadline passed with no check-in: the escalation plan is running.
    Overdue,
    /// Panic or duress: a red alert is open.
    Alarm,
    Ended,
    OutcomeRecorded,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Planned => "planned",
            SessionStatus::Active => "active",
            SessionStatus::Overdue => "overdue",
            SessionStatus::Alarm => "alarm",
            SessionStatus::Ended => "ended",
            SessionStatus::OutcomeRecorded => "outcome_recorded",
        }
    }

    /// The worker is out there now.
    pub fn is_live(self) -> bool {
        matches!(self, SessionStatus::Active | SessionStatus::Overdue | SessionStatus::Alarm)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    NotRequired,
    /// The school's rules require approval and it has not been asked for yet.
    Required,
    Pending,
    Approved,
    Rejected,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::NotRequired => "not_required",
            ApprovalStatus::Required => "required",
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    Panic,
    /// Raised silently by the duress PIN: the phone shows a normal end.
    Duress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Concern {
    None,
    /// Goes to the DSL's review queue.
    Safeguarding,
}

/// What the worker records after the visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Outcome {
    pub child_seen: bool,
    pub responsible_adult_present: bool,
    pub entered_premises: bool,
    pub concern: Concern,
    #[serde(default)]
    pub notes: String,
}

impl Outcome {
    pub const MAX_NOTES: usize = 5_000;
}

/// What the PIN typed at the end of a visit turned out to be (the server checks it; the PIN itself is
/// never stored in an event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinCheck {
    Safe,
    Duress,
}

/// Something that happened to a session. Client events come from the worker's phone; the others are
/// written by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Start {
        location: Option<Coordinates>,
    },
    CheckIn,
    Extend {
        minutes: u32,
    },
    End,
    EndWithPin {
        pin: PinCheck,
    },
    Panic {
        location: Option<Coordinates>,
    },
    RecordOutcome {
        outcome: Outcome,
    },
    // Server events.
    ApprovalRequested,
    Approved,
    Rejected {
        reason: String,
    },
    /// The scheduler saw `deadline` pass. Stale (and skipped) if a late-arriving check-in moved it.
    DeadlineMissed {
        deadline: Timestamp,
    },
    /// A leader resolved the red alert.
    AlarmResolved,
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Start { .. } => "start",
            EventKind::CheckIn => "check_in",
            EventKind::Extend { .. } => "extend",
            EventKind::End => "end",
            EventKind::EndWithPin { .. } => "end_with_pin",
            EventKind::Panic { .. } => "panic",
            EventKind::RecordOutcome { .. } => "record_outcome",
            EventKind::ApprovalRequested => "approval_requested",
            EventKind::Approved => "approved",
            EventKind::Rejected { .. } => "rejected",
            EventKind::DeadlineMissed { .. } => "deadline_missed",
            EventKind::AlarmResolved => "alarm_resolved",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Uuid,
    pub at: Timestamp,
    pub kind: EventKind,
}

/// The fixed terms a session was planned with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTerms {
    pub expected_duration: VisitDuration,
    pub check_in_interval: Option<CheckInInterval>,
    pub approval_required: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub status: SessionStatus,
    pub approval: ApprovalStatus,
    pub rejection_reason: Option<String>,
    pub started_at: Option<Timestamp>,
    pub start_location: Option<Coordinates>,
    pub ended_at: Option<Timestamp>,
    /// When the visit is due to end; extend moves it.
    pub planned_end: Option<Timestamp>,
    /// When the next periodic check-in is due, if the plan has an interval.
    pub next_check_in: Option<Timestamp>,
    /// The earlier of the two: missing it starts the escalation plan.
    pub deadline: Option<Timestamp>,
    pub last_check_in: Option<Timestamp>,
    /// The deadline that was missed, while overdue.
    pub overdue_since: Option<Timestamp>,
    pub late_check_ins: u32,
    pub alarm: Option<AlarmKind>,
    pub alarm_location: Option<Coordinates>,
    pub outcome: Option<Outcome>,
    /// Ids of the events already applied: applying one again changes nothing.
    pub applied: BTreeSet<Uuid>,
}

/// What a transition asks the outside world to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// Arm (or move) the deadline timer.
    DeadlineSet(Timestamp),
    DeadlineCleared,
    /// The deadline passed: start the escalation plan.
    EscalationStarted {
        deadline: Timestamp,
    },
    /// Raise a red alert at once.
    AlarmRaised(AlarmKind),
    /// A check-in or end arrived while overdue: stand the alert down and tell everyone alerted.
    StoodDown {
        late_by: Duration,
    },
    AlarmCleared,
    SessionEnded,
    OutcomeRecorded {
        concern: Concern,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", content = "message", rename_all = "snake_case")]
pub enum SessionError {
    #[error("this visit needs a leader's approval before it can start")]
    ApprovalRequired,
    #[error("this visit's approval was rejected; it cannot start")]
    ApprovalRejected,
    #[error("approval can only be asked for while the visit is planned and awaiting it")]
    ApprovalNotRequestable,
    #[error("there is no pending approval request for this visit")]
    NoPendingApproval,
    #[error("the visit has not started yet")]
    NotStarted,
    #[error("the visit has already started")]
    AlreadyStarted,
    #[error("the visit has already ended")]
    AlreadyEnded,
    #[error("the visit has not ended yet; end it before recording the outcome")]
    NotEnded,
    #[error("the outcome has already been recorded")]
    OutcomeAlreadyRecorded,
    #[error("the visit cannot be extended beyond 12 hours in all")]
    TooLong,
    #[error("the extension must be 1 to 120 minutes")]
    BadExtension,
    #[error("that deadline is no longer the session's deadline")]
    StaleDeadline,
    #[error("there is no open alarm on this visit")]
    NoAlarm,
}

/// After a late check-in past the planned end, the worker gets at least this long before the next deadline.
const GRACE_AFTER_LATE_CHECK_IN: i64 = 15;

pub struct Transition {
    pub state: SessionState,
    pub effects: Vec<Effect>,
}

impl SessionState {
    pub fn new(terms: &SessionTerms) -> Self {
        Self {
            status: SessionStatus::Planned,
            approval: if terms.approval_required { ApprovalStatus::Required } else { ApprovalStatus::NotRequired },
            rejection_reason: None,
            started_at: None,
            start_location: None,
            ended_at: None,
            planned_end: None,
            next_check_in: None,
            deadline: None,
            last_check_in: None,
            overdue_since: None,
            late_check_ins: 0,
            alarm: None,
            alarm_location: None,
            outcome: None,
            applied: BTreeSet::new(),
        }
    }

    /// Apply one event. An event whose id was already applied changes nothing.
    pub fn apply(&self, terms: &SessionTerms, event: &Event) -> Result<Transition, SessionError> {
        let mut next = self.clone();
        if self.applied.contains(&event.id) {
            return Ok(Transition { state: next, effects: vec![] });
        }
        let at = event.at;
        let mut effects = Vec::new();
        use SessionStatus::*;
        match &event.kind {
            EventKind::ApprovalRequested => {
                if self.status != Planned
                    || !matches!(self.approval, ApprovalStatus::Required | ApprovalStatus::Pending)
                {
                    return Err(SessionError::ApprovalNotRequestable);
                }
                next.approval = ApprovalStatus::Pending;
            }
            EventKind::Approved | EventKind::Rejected { .. } => {
                if self.status != Planned || self.approval != ApprovalStatus::Pending {
                    return Err(SessionError::NoPendingApproval);
                }
                if let EventKind::Rejected { reason } = &event.kind {
                    next.approval = ApprovalStatus::Rejected;
                    next.rejection_reason = Some(reason.clone());
                } else {
                    next.approval = ApprovalStatus::Approved;
                }
            }
            EventKind::Start { location } => {
                if self.status != Planned {
                    return Err(SessionError::AlreadyStarted);
                }
                match self.approval {
                    ApprovalStatus::NotRequired | ApprovalStatus::Approved => {}
                    ApprovalStatus::Rejected => return Err(SessionError::ApprovalRejected),
                    ApprovalStatus::Required | ApprovalStatus::Pending => return Err(SessionError::ApprovalRequired),
                }
                next.status = Active;
                next.started_at = Some(at);
                next.start_location = *location;
                next.planned_end = Some(at + terms.expected_duration.duration());
                next.next_check_in = terms.check_in_interval.map(|i| at + i.duration());
                next.arm_deadline(&mut effects);
            }
            EventKind::CheckIn => {
                next.require_live()?;
                next.last_check_in = Some(at);
                next.next_check_in = terms.check_in_interval.map(|i| at + i.duration());
                if let Some(end) = next.planned_end
                    && end <= at
                {
                    next.planned_end = Some(at + Duration::minutes(GRACE_AFTER_LATE_CHECK_IN));
                }
                next.stand_down_if_overdue(at, &mut effects);
                if next.status != Alarm {
                    next.arm_deadline(&mut effects);
                }
            }
            EventKind::Extend { minutes } => {
                next.require_live()?;
                let minutes = ExtendMinutes::parse(i64::from(*minutes)).map_err(|_| SessionError::BadExtension)?;
                let from = next.planned_end.map_or(at, |end| end.max(at));
                let new_end = from + Duration::minutes(minutes.minutes());
                let started = next.started_at.unwrap_or(at);
                if new_end - started > Duration::minutes(VisitDuration::MAX_MINUTES) {
                    return Err(SessionError::TooLong);
                }
                next.planned_end = Some(new_end);
                next.stand_down_if_overdue(at, &mut effects);
                if next.status != Alarm {
                    next.arm_deadline(&mut effects);
                }
            }
            EventKind::End | EventKind::EndWithPin { pin: PinCheck::Safe } => {
                next.require_live()?;
                next.stand_down_if_overdue(at, &mut effects);
                next.ended_at = Some(at);
                next.deadline = None;
                next.next_check_in = None;
                effects.push(Effect::DeadlineCleared);
                effects.push(Effect::SessionEnded);
                if next.status != Alarm {
                    next.status = Ended;
                }
            }
            EventKind::EndWithPin { pin: PinCheck::Duress } => {
                next.require_live()?;
                next.ended_at = Some(at);
                next.deadline = None;
                next.next_check_in = None;
                next.overdue_since = None;
                effects.push(Effect::DeadlineCleared);
                next.raise_alarm(AlarmKind::Duress, None, &mut effects);
            }
            EventKind::Panic { location } => {
                next.require_live()?;
                next.overdue_since = None;
                next.raise_alarm(AlarmKind::Panic, *location, &mut effects);
            }
            EventKind::RecordOutcome { outcome } => {
                if self.outcome.is_some() {
                    return Err(SessionError::OutcomeAlreadyRecorded);
                }
                if self.ended_at.is_none() {
                    return Err(SessionError::NotEnded);
                }
                next.outcome = Some(outcome.clone());
                if next.status == Ended {
                    next.status = OutcomeRecorded;
                }
                effects.push(Effect::OutcomeRecorded { concern: outcome.concern });
            }
            EventKind::DeadlineMissed { deadline } => {
                if self.status != Active || self.deadline != Some(*deadline) || at < *deadline {
                    return Err(SessionError::StaleDeadline);
                }
                next.status = Overdue;
                next.overdue_since = Some(*deadline);
                effects.push(Effect::EscalationStarted { deadline: *deadline });
            }
            EventKind::AlarmResolved => {
                if self.status != Alarm {
                    return Err(SessionError::NoAlarm);
                }
                next.alarm = None;
                effects.push(Effect::AlarmCleared);
                if next.ended_at.is_some() {
                    next.status = if next.outcome.is_some() { OutcomeRecorded } else { Ended };
                } else {
                    next.status = Active;
                    // The worker is still out: give them time before the next deadline.
                    next.planned_end =
                        next.planned_end.map(|end| end.max(at + Duration::minutes(GRACE_AFTER_LATE_CHECK_IN)));
                    next.next_check_in = terms.check_in_interval.map(|i| at + i.duration());
                    next.arm_deadline(&mut effects);
                }
            }
        }
        next.applied.insert(event.id);
        Ok(Transition { state: next, effects })
    }

    fn require_live(&self) -> Result<(), SessionError> {
        match self.status {
            SessionStatus::Planned => Err(SessionError::NotStarted),
            SessionStatus::Ended | SessionStatus::OutcomeRecorded => Err(SessionError::AlreadyEnded),
            _ if self.ended_at.is_some() => Err(SessionError::AlreadyEnded),
            _ => Ok(()),
        }
    }

    fn arm_deadline(&mut self, effects: &mut Vec<Effect>) {
        let deadline = match (self.planned_end, self.next_check_in) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.deadline = deadline;
        if let Some(deadline) = deadline {
            effects.push(Effect::DeadlineSet(deadline));
        }
    }

    fn stand_down_if_overdue(&mut self, at: Timestamp, effects: &mut Vec<Effect>) {
        if self.status == SessionStatus::Overdue {
            let missed = self.overdue_since.take().unwrap_or(at);
            self.late_check_ins += 1;
            self.status = SessionStatus::Active;
            effects.push(Effect::StoodDown { late_by: at - missed });
        }
    }

    fn raise_alarm(&mut self, kind: AlarmKind, location: Option<Coordinates>, effects: &mut Vec<Effect>) {
        if self.status == SessionStatus::Overdue {
            // The red alert supersedes the amber one.
            effects.push(Effect::StoodDown { late_by: Duration::zero() });
        }
        if self.alarm.is_none() {
            self.alarm = Some(kind);
            self.alarm_location = location;
            effects.push(Effect::AlarmRaised(kind));
        }
        self.status = SessionStatus::Alarm;
    }
}

/// The result of replaying a session's whole history.
pub struct Replay {
    pub state: SessionState,
    /// Events that could not happen where they fall in time (for example a check-in after a
    /// late-arriving end): kept as evidence, but without effect.
    pub skipped: Vec<(Uuid, SessionError)>,
}

impl EventKind {
    /// Where an event falls among others of the same instant: a start before a check-in, a check-in
    /// before the deadline it meets, everything before the end and the outcome.
    fn rank(&self) -> u8 {
        match self {
            EventKind::ApprovalRequested => 0,
            EventKind::Approved | EventKind::Rejected { .. } => 1,
            EventKind::Start { .. } => 2,
            EventKind::CheckIn | EventKind::Extend { .. } => 3,
            EventKind::DeadlineMissed { .. } => 4,
            EventKind::Panic { .. } => 5,
            EventKind::AlarmResolved => 6,
            EventKind::End | EventKind::EndWithPin { .. } => 7,
            EventKind::RecordOutcome { .. } => 8,
        }
    }
}

/// Order events as they happened: by time; events of the same instant in the lifecycle's order; then
/// by id, so every server sorts the rest the same way whatever order they arrived in.
pub fn in_time_order(events: &mut [Event]) {
    events.sort_by(|a, b| a.at.cmp(&b.at).then(a.kind.rank().cmp(&b.kind.rank())).then(a.id.cmp(&b.id)));
}

/// Replay a history in time order, whatever order it arrived in.
pub fn replay(terms: &SessionTerms, events: &[Event]) -> Replay {
    let mut ordered = events.to_vec();
    in_time_order(&mut ordered);
    let mut state = SessionState::new(terms);
    let mut skipped = Vec::new();
    for event in &ordered {
        match state.apply(terms, event) {
            Ok(t) => state = t.state,
            Err(e) => skipped.push((event.id, e)),
        }
    }
    Replay { state, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn terms(interval: Option<i64>, approval_required: bool) -> SessionTerms {
        SessionTerms {
            expected_duration: VisitDuration::parse(60).unwrap(),
            check_in_interval: interval.map(|m| CheckInInterval::parse(m).unwrap()),
            approval_required,
        }
    }

    fn t0() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
    }

    fn ev(n: u128, minutes: i64, kind: EventKind) -> Event {
        Event { id: Uuid::from_u128(n), at: t0() + Duration::minutes(minutes), kind }
    }

    fn run(terms: &SessionTerms, events: &[Event]) -> SessionState {
        let mut state = SessionState::new(terms);
        for e in events {
            state = state.apply(terms, e).unwrap().state;
        }
        state
    }

    #[test]
    fn start_sets_the_earlier_of_planned_end_and_check_in() {
        let t = terms(Some(20), false);
        let s = run(&t, &[ev(1, 0, EventKind::Start { location: None })]);
        assert_eq!(s.status, SessionStatus::Active);
        assert_eq!(s.deadline, Some(t0() + Duration::minutes(20)));
        let s = run(&terms(None, false), &[ev(1, 0, EventKind::Start { location: None })]);
        assert_eq!(s.deadline, Some(t0() + Duration::minutes(60)));
    }

    #[test]
    fn unapproved_visit_cannot_start() {
        let t = terms(None, true);
        let s = SessionState::new(&t);
        assert_eq!(
            s.apply(&t, &ev(1, 0, EventKind::Start { location: None })).err(),
            Some(SessionError::ApprovalRequired)
        );
        let s =
            run(&t, &[ev(1, 0, EventKind::ApprovalRequested), ev(2, 1, EventKind::Rejected { reason: "no".into() })]);
        assert_eq!(
            s.apply(&t, &ev(3, 2, EventKind::Start { location: None })).err(),
            Some(SessionError::ApprovalRejected)
        );
        let s = run(
            &t,
            &[
                ev(1, 0, EventKind::ApprovalRequested),
                ev(2, 1, EventKind::Approved),
                ev(3, 2, EventKind::Start { location: None }),
            ],
        );
        assert_eq!(s.status, SessionStatus::Active);
    }

    #[test]
    fn missed_deadline_then_late_check_in_stands_down() {
        let t = terms(Some(20), false);
        let s = run(&t, &[ev(1, 0, EventKind::Start { location: None })]);
        let deadline = s.deadline.unwrap();
        let missed = Event { id: Uuid::from_u128(2), at: deadline, kind: EventKind::DeadlineMissed { deadline } };
        let tr = s.apply(&t, &missed).unwrap();
        assert_eq!(tr.state.status, SessionStatus::Overdue);
        assert_eq!(tr.effects, vec![Effect::EscalationStarted { deadline }]);
        let tr = tr.state.apply(&t, &ev(3, 25, EventKind::CheckIn)).unwrap();
        assert_eq!(tr.state.status, SessionStatus::Active);
        assert_eq!(tr.state.late_check_ins, 1);
        assert!(tr.effects.contains(&Effect::StoodDown { late_by: Duration::minutes(5) }));
        assert_eq!(tr.state.deadline, Some(t0() + Duration::minutes(45)));
    }

    #[test]
    fn a_queued_check_in_before_the_deadline_makes_the_miss_stale() {
        let t = terms(Some(20), false);
        let deadline = t0() + Duration::minutes(20);
        let history = vec![
            ev(1, 0, EventKind::Start { location: None }),
            Event { id: Uuid::from_u128(2), at: deadline, kind: EventKind::DeadlineMissed { deadline } },
            ev(3, 15, EventKind::CheckIn),
        ];
        let r = replay(&t, &history);
        assert_eq!(r.state.status, SessionStatus::Active);
        assert_eq!(r.state.late_check_ins, 0);
        assert_eq!(r.skipped, vec![(Uuid::from_u128(2), SessionError::StaleDeadline)]);
    }

    #[test]
    fn duress_pin_raises_a_silent_alarm_and_ends() {
        let t = terms(None, false);
        let s = run(&t, &[ev(1, 0, EventKind::Start { location: None })]);
        let tr = s.apply(&t, &ev(2, 10, EventKind::EndWithPin { pin: PinCheck::Duress })).unwrap();
        assert_eq!(tr.state.status, SessionStatus::Alarm);
        assert_eq!(tr.state.alarm, Some(AlarmKind::Duress));
        assert!(tr.state.ended_at.is_some());
        assert!(tr.effects.contains(&Effect::AlarmRaised(AlarmKind::Duress)));
        let resolved = tr.state.apply(&t, &ev(3, 20, EventKind::AlarmResolved)).unwrap().state;
        assert_eq!(resolved.status, SessionStatus::Ended);
    }

    #[test]
    fn panic_then_resolve_resumes_the_visit() {
        let t = terms(Some(10), false);
        let s =
            run(&t, &[ev(1, 0, EventKind::Start { location: None }), ev(2, 5, EventKind::Panic { location: None })]);
        assert_eq!(s.status, SessionStatus::Alarm);
        let s = s.apply(&t, &ev(3, 8, EventKind::AlarmResolved)).unwrap().state;
        assert_eq!(s.status, SessionStatus::Active);
        assert_eq!(s.deadline, Some(t0() + Duration::minutes(18)));
    }

    #[test]
    fn outcome_needs_an_ended_visit_and_only_once() {
        let t = terms(None, false);
        let outcome = Outcome {
            child_seen: true,
            responsible_adult_present: true,
            entered_premises: false,
            concern: Concern::None,
            notes: String::new(),
        };
        let s = run(&t, &[ev(1, 0, EventKind::Start { location: None })]);
        assert_eq!(
            s.apply(&t, &ev(2, 1, EventKind::RecordOutcome { outcome: outcome.clone() })).err(),
            Some(SessionError::NotEnded)
        );
        let s = run(
            &t,
            &[
                ev(1, 0, EventKind::Start { location: None }),
                ev(2, 30, EventKind::End),
                ev(3, 31, EventKind::RecordOutcome { outcome: outcome.clone() }),
            ],
        );
        assert_eq!(s.status, SessionStatus::OutcomeRecorded);
        assert_eq!(
            s.apply(&t, &ev(4, 32, EventKind::RecordOutcome { outcome })).err(),
            Some(SessionError::OutcomeAlreadyRecorded)
        );
    }

    #[test]
    fn events_of_the_same_instant_follow_the_lifecycle() {
        let t = terms(Some(20), false);
        // The end has the smaller id but the same time as the start: it still comes after.
        let history = vec![ev(9, 0, EventKind::Start { location: None }), ev(1, 0, EventKind::End)];
        let r = replay(&t, &history);
        assert!(r.skipped.is_empty(), "{:?}", r.skipped);
        assert_eq!(r.state.status, SessionStatus::Ended);
        // A check-in at the very instant of the deadline is on time.
        let deadline = t0() + Duration::minutes(20);
        let history = vec![
            ev(1, 0, EventKind::Start { location: None }),
            Event { id: Uuid::from_u128(2), at: deadline, kind: EventKind::DeadlineMissed { deadline } },
            Event { id: Uuid::from_u128(3), at: deadline, kind: EventKind::CheckIn },
        ];
        let r = replay(&t, &history);
        assert_eq!(r.state.late_check_ins, 0);
        assert_eq!(r.state.status, SessionStatus::Active);
    }

    #[test]
    fn extension_is_capped_at_twelve_hours() {
        let t = terms(None, false);
        let mut s = run(&t, &[ev(1, 0, EventKind::Start { location: None })]);
        for n in 0..10 {
            s = s.apply(&t, &ev(10 + n, 1, EventKind::Extend { minutes: 60 })).unwrap().state;
        }
        assert_eq!(s.deadline, Some(t0() + Duration::minutes(660)));
        assert_eq!(s.apply(&t, &ev(99, 2, EventKind::Extend { minutes: 120 })).err(), Some(SessionError::TooLong));
    }

    fn arb_kind() -> impl Strategy<Value = EventKind> {
        prop_oneof![
            Just(EventKind::Start { location: None }),
            Just(EventKind::CheckIn),
            (1u32..=60).prop_map(|minutes| EventKind::Extend { minutes }),
            Just(EventKind::End),
            Just(EventKind::EndWithPin { pin: PinCheck::Safe }),
            Just(EventKind::EndWithPin { pin: PinCheck::Duress }),
            Just(EventKind::Panic { location: None }),
            Just(EventKind::AlarmResolved),
            Just(EventKind::ApprovalRequested),
            Just(EventKind::Approved),
            Just(EventKind::RecordOutcome {
                outcome: Outcome {
                    child_seen: true,
                    responsible_adult_present: false,
                    entered_premises: false,
                    concern: Concern::Safeguarding,
                    notes: "n".into()
                }
            }),
            (0i64..400).prop_map(|m| EventKind::DeadlineMissed { deadline: t0() + Duration::minutes(m) }),
        ]
    }

    fn arb_history() -> impl Strategy<Value = (SessionTerms, Vec<Event>)> {
        let terms = (proptest::option::of(5i64..=60), any::<bool>()).prop_map(|(i, a)| terms(i, a));
        let events = proptest::collection::vec((0i64..400, arb_kind()), 0..30).prop_map(|items| {
            let mut events: Vec<Event> =
                items.into_iter().enumerate().map(|(n, (m, kind))| ev(n as u128 + 1, m, kind)).collect();
            // Always include a start so the interesting states are reached.
            events.push(ev(1000, 0, EventKind::Start { location: None }));
            events
        });
        (terms, events)
    }

    proptest! {
        #[test]
        fn a_live_session_always_has_a_deadline_or_an_alarm((t, events) in arb_history()) {
            let mut ordered = events.clone();
            in_time_order(&mut ordered);
            let mut state = SessionState::new(&t);
            for e in &ordered {
                if let Ok(tr) = state.apply(&t, e) {
                    state = tr.state;
                }
                match state.status {
                    SessionStatus::Active | SessionStatus::Overdue => prop_assert!(state.deadline.is_some(), "{:?}", state),
                    SessionStatus::Alarm => prop_assert!(state.alarm.is_some()),
                    _ => {}
                }
            }
        }

        #[test]
        fn applying_an_event_twice_changes_nothing_the_second_time((t, events) in arb_history()) {
            let mut ordered = events.clone();
            in_time_order(&mut ordered);
            let mut state = SessionState::new(&t);
            for e in &ordered {
                if let Ok(tr) = state.apply(&t, e) {
                    let again = tr.state.apply(&t, e).unwrap();
                    prop_assert_eq!(&again.state, &tr.state);
                    prop_assert!(again.effects.is_empty());
                    state = tr.state;
                }
            }
        }

        #[test]
        fn arrival_order_does_not_matter((t, events) in arb_history(), seed in any::<u64>()) {
            let mut shuffled = events.clone();
            // A deterministic shuffle from the seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let a = replay(&t, &events);
            let b = replay(&t, &shuffled);
            prop_assert_eq!(a.state, b.state);
            prop_assert_eq!(a.skipped, b.skipped);
        }
    }
}
