//! An alert's lifecycle as a pure state machine, like the session's: `apply(state, event)` gives the new
//! state and what the outside world must do, or says why the event cannot happen.
//!
//! Raised escalating; each step of the plan fires (a red alarm fires them all at once), then the repeat
//! to every leader; a leader takes ownership (stored as `acknowledged`) and the ladder waits; ownership
//! not resolved in time lapses and escalation resumes where it stopped; it ends resolved with an
//! outcome, or stood down when the worker turns up. A resolved or stood-down alert never changes again.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;
use crate::api::{AlertResolution, AlertStatus};

impl AlertStatus {
    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Escalating => "escalating",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
            AlertStatus::StoodDown => "stood_down",
        }
    }

    /// Still needs someone: escalating or owned.
    pub fn is_open(self) -> bool {
        matches!(self, AlertStatus::Escalating | AlertStatus::Acknowledged)
    }
}

/// How a resolved alert ended, and who said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub outcome: AlertResolution,
    pub notes: String,
    pub by: Uuid,
    pub at: Timestamp,
}

/// What the lifecycle needs to know of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    pub status: AlertStatus,
    /// How many of the plan's steps have fired; it never goes back.
    pub steps_fired: i64,
    /// What the latest step (or notice) told people to do.
    pub instruction: Option<String>,
    /// The leader who took ownership. Kept when ownership lapses, until another leader takes it.
    pub owner: Option<Uuid>,
    pub owned_at: Option<Timestamp>,
    pub resolution: Option<Resolution>,
    pub stood_down_at: Option<Timestamp>,
}

/// Something that happens to an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AlertEvent {
    /// Step `index` of the plan fired with this instruction.
    StepFired {
        index: i64,
        instruction: String,
    },
    /// Step `index` was due but the plan has no such step: the repeat to every leader takes over.
    PlanRanOut {
        index: i64,
    },
    /// A red alarm goes at once to the top of the plan: all `steps` fired, with the last instruction.
    FiredAtOnce {
        steps: i64,
        instruction: String,
    },
    /// An informational alert told people this.
    NoticeSent {
        text: String,
    },
    /// The plan ran out and nobody owns the alert: every leader is told again.
    Repeated,
    /// A leader took ownership (acknowledged it); steps wait while they own it.
    TakenOwnership {
        by: Uuid,
        at: Timestamp,
    },
    /// The owner did not resolve it in time: escalation resumes.
    OwnershipLapsed,
    Resolved {
        outcome: AlertResolution,
        notes: String,
        by: Uuid,
        at: Timestamp,
    },
    /// The worker reported in (or the alert was superseded, or its visit ended): nothing more to do.
    StoodDown {
        at: Timestamp,
    },
}

/// What a transition asks the outside world to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertEffect {
    /// The alert's pending steps, repeat and ownership timeout no longer apply.
    TimersCancelled,
    /// Arm the ownership timeout: if the owner has not resolved the alert by then, it lapses.
    OwnershipTimeoutArmed,
    /// Escalation resumes at this step, or with the repeat once the plan has run out.
    EscalationResumed { next_step: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", content = "message", rename_all = "snake_case")]
pub enum AlertError {
    #[error("this alert is already resolved")]
    AlreadyResolved,
    #[error("this alert has already been stood down")]
    AlreadyStoodDown,
    #[error("another leader has already taken ownership of this alert")]
    OwnedByAnother,
    #[error("a leader owns this alert: its escalation waits")]
    NotEscalating,
    #[error("that step of the plan has already fired")]
    StepAlreadyFired,
    #[error("nobody owns this alert")]
    NotOwned,
}

impl AlertError {
    /// The alert is over: resolved or stood down.
    pub fn is_closed(self) -> bool {
        matches!(self, AlertError::AlreadyResolved | AlertError::AlreadyStoodDown)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertTransition {
    pub state: AlertState,
    pub effects: Vec<AlertEffect>,
}

impl AlertState {
    /// A new alert: escalating, no step fired yet.
    pub fn raised() -> Self {
        Self {
            status: AlertStatus::Escalating,
            steps_fired: 0,
            instruction: None,
            owner: None,
            owned_at: None,
            resolution: None,
            stood_down_at: None,
        }
    }

    /// Apply one event. A refused event leaves the alert as it was.
    pub fn apply(&self, event: &AlertEvent) -> Result<AlertTransition, AlertError> {
        self.require_open()?;
        let mut next = self.clone();
        let mut effects = Vec::new();
        match event {
            AlertEvent::StepFired { index, instruction } => {
                self.step_is_due(*index)?;
                next.steps_fired = index + 1;
                next.instruction = Some(instruction.clone());
            }
            AlertEvent::PlanRanOut { index } => self.step_is_due(*index)?,
            AlertEvent::FiredAtOnce { steps, instruction } => {
                self.step_is_due(*steps)?;
                next.steps_fired = *steps;
                next.instruction = Some(instruction.clone());
            }
            AlertEvent::NoticeSent { text } => next.instruction = Some(text.clone()),
            AlertEvent::Repeated => self.require_escalating()?,
            AlertEvent::TakenOwnership { by, at } => match self.status {
                // Taking what you already own changes nothing.
                AlertStatus::Acknowledged if self.owner == Some(*by) => {}
                AlertStatus::Acknowledged => return Err(AlertError::OwnedByAnother),
                _ => {
                    next.status = AlertStatus::Acknowledged;
                    next.owner = Some(*by);
                    next.owned_at = Some(*at);
                    effects.extend([AlertEffect::TimersCancelled, AlertEffect::OwnershipTimeoutArmed]);
                }
            },
            AlertEvent::OwnershipLapsed => {
                if self.status != AlertStatus::Acknowledged {
                    return Err(AlertError::NotOwned);
                }
                next.status = AlertStatus::Escalating;
                effects.push(AlertEffect::EscalationResumed { next_step: self.steps_fired });
            }
            AlertEvent::Resolved { outcome, notes, by, at } => {
                if next.owner.is_none() {
                    // Resolving takes ownership.
                    next.owner = Some(*by);
                    next.owned_at = Some(*at);
                }
                next.status = AlertStatus::Resolved;
                next.resolution = Some(Resolution { outcome: *outcome, notes: notes.clone(), by: *by, at: *at });
                effects.push(AlertEffect::TimersCancelled);
            }
            AlertEvent::StoodDown { at } => {
                next.status = AlertStatus::StoodDown;
                next.stood_down_at = Some(*at);
                effects.push(AlertEffect::TimersCancelled);
            }
        }
        Ok(AlertTransition { state: next, effects })
    }

    /// May step `index` of the plan fire now? Only while escalating, and only once.
    pub fn step_is_due(&self, index: i64) -> Result<(), AlertError> {
        self.require_escalating()?;
        if index < self.steps_fired {
            return Err(AlertError::StepAlreadyFired);
        }
        Ok(())
    }

    fn require_open(&self) -> Result<(), AlertError> {
        match self.status {
            AlertStatus::Resolved => Err(AlertError::AlreadyResolved),
            AlertStatus::StoodDown => Err(AlertError::AlreadyStoodDown),
            AlertStatus::Escalating | AlertStatus::Acknowledged => Ok(()),
        }
    }

    fn require_escalating(&self) -> Result<(), AlertError> {
        self.require_open()?;
        if self.status != AlertStatus::Escalating {
            return Err(AlertError::NotEscalating);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn t0() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
    }

    fn leader(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn run(events: &[AlertEvent]) -> AlertState {
        let mut state = AlertState::raised();
        for e in events {
            state = state.apply(e).unwrap().state;
        }
        state
    }

    fn own(n: u128, minutes: i64) -> AlertEvent {
        AlertEvent::TakenOwnership { by: leader(n), at: t0() + Duration::minutes(minutes) }
    }

    fn resolve(n: u128, minutes: i64) -> AlertEvent {
        AlertEvent::Resolved {
            outcome: AlertResolution::WorkerSafe,
            notes: "spoke to her".into(),
            by: leader(n),
            at: t0() + Duration::minutes(minutes),
        }
    }

    fn step(index: i64) -> AlertEvent {
        AlertEvent::StepFired { index, instruction: format!("step {index}") }
    }

    #[test]
    fn stored_names_are_the_wire_names() {
        for status in
            [AlertStatus::Escalating, AlertStatus::Acknowledged, AlertStatus::Resolved, AlertStatus::StoodDown]
        {
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::Value::String(status.as_str().into()));
        }
    }

    #[test]
    fn steps_fire_in_order_and_once() {
        let s = run(&[step(0), step(1)]);
        assert_eq!((s.steps_fired, s.instruction.as_deref()), (2, Some("step 1")));
        assert_eq!(s.apply(&step(1)).err(), Some(AlertError::StepAlreadyFired));
        assert_eq!(s.apply(&AlertEvent::PlanRanOut { index: 0 }).err(), Some(AlertError::StepAlreadyFired));
        assert!(s.apply(&AlertEvent::PlanRanOut { index: 2 }).unwrap().state == s);
    }

    #[test]
    fn ownership_pauses_the_ladder_and_lapses_back_to_it() {
        let owned = run(&[step(0), own(1, 3)]);
        assert_eq!(owned.status, AlertStatus::Acknowledged);
        assert_eq!((owned.owner, owned.owned_at), (Some(leader(1)), Some(t0() + Duration::minutes(3))));
        assert_eq!(owned.apply(&step(1)).err(), Some(AlertError::NotEscalating));
        assert_eq!(owned.apply(&AlertEvent::Repeated).err(), Some(AlertError::NotEscalating));
        // The owner again: nothing changes, nothing is re-armed.
        let again = owned.apply(&own(1, 4)).unwrap();
        assert_eq!((again.state, again.effects), (owned.clone(), vec![]));
        assert_eq!(owned.apply(&own(2, 4)).err(), Some(AlertError::OwnedByAnother));

        let lapsed = owned.apply(&AlertEvent::OwnershipLapsed).unwrap();
        assert_eq!(lapsed.state.status, AlertStatus::Escalating);
        assert_eq!(lapsed.state.owner, Some(leader(1)), "the last owner is still shown");
        assert_eq!(lapsed.effects, vec![AlertEffect::EscalationResumed { next_step: 1 }]);
        assert_eq!(lapsed.state.apply(&AlertEvent::OwnershipLapsed).err(), Some(AlertError::NotOwned));
        // Another leader may take it now.
        let taken = lapsed.state.apply(&own(2, 40)).unwrap();
        assert_eq!(taken.state.owner, Some(leader(2)));
        assert_eq!(taken.effects, vec![AlertEffect::TimersCancelled, AlertEffect::OwnershipTimeoutArmed]);
    }

    #[test]
    fn resolving_takes_ownership_if_nobody_had_it() {
        let t = AlertState::raised().apply(&resolve(7, 2)).unwrap();
        assert_eq!(t.state.status, AlertStatus::Resolved);
        assert_eq!(t.state.owner, Some(leader(7)));
        assert_eq!(
            t.state.resolution.as_ref().map(|r| (r.by, r.outcome)),
            Some((leader(7), AlertResolution::WorkerSafe))
        );
        assert_eq!(t.effects, vec![AlertEffect::TimersCancelled]);
        // Someone else's resolution keeps the owner.
        let s = run(&[own(1, 1), resolve(2, 5)]);
        assert_eq!((s.owner, s.resolution.map(|r| r.by)), (Some(leader(1)), Some(leader(2))));
    }

    #[test]
    fn a_closed_alert_refuses_everything() {
        let resolved = run(&[resolve(1, 1)]);
        assert_eq!(resolved.apply(&resolve(1, 2)).err(), Some(AlertError::AlreadyResolved));
        assert_eq!(resolved.apply(&own(1, 2)).err(), Some(AlertError::AlreadyResolved));
        assert_eq!(resolved.apply(&AlertEvent::StoodDown { at: t0() }).err(), Some(AlertError::AlreadyResolved));
        let stood_down = run(&[step(0), AlertEvent::StoodDown { at: t0() }]);
        assert_eq!(stood_down.stood_down_at, Some(t0()));
        assert_eq!(stood_down.apply(&own(1, 2)).err(), Some(AlertError::AlreadyStoodDown));
        assert_eq!(stood_down.apply(&resolve(1, 2)).err(), Some(AlertError::AlreadyStoodDown));
        assert!(AlertError::AlreadyStoodDown.is_closed() && !AlertError::OwnedByAnother.is_closed());
    }

    #[test]
    fn an_alarm_fires_every_step_at_once() {
        let s = run(&[AlertEvent::FiredAtOnce { steps: 4, instruction: "Call 999".into() }]);
        assert_eq!((s.steps_fired, s.instruction.as_deref()), (4, Some("Call 999")));
        assert_eq!(s.apply(&step(3)).err(), Some(AlertError::StepAlreadyFired));
    }

    fn arb_event() -> impl Strategy<Value = AlertEvent> {
        let at = (0i64..600).prop_map(|m| t0() + Duration::minutes(m));
        prop_oneof![
            (0i64..6).prop_map(step),
            (0i64..6).prop_map(|index| AlertEvent::PlanRanOut { index }),
            (0i64..6).prop_map(|steps| AlertEvent::FiredAtOnce { steps, instruction: "all".into() }),
            Just(AlertEvent::NoticeSent { text: "note".into() }),
            Just(AlertEvent::Repeated),
            (1u128..4, at.clone()).prop_map(|(n, at)| AlertEvent::TakenOwnership { by: leader(n), at }),
            Just(AlertEvent::OwnershipLapsed),
            (1u128..4, at.clone()).prop_map(|(n, at)| AlertEvent::Resolved {
                outcome: AlertResolution::FalseAlarm,
                notes: String::new(),
                by: leader(n),
                at
            }),
            at.prop_map(|at| AlertEvent::StoodDown { at }),
        ]
    }

    /// What every reachable state satisfies.
    fn consistent(s: &AlertState) -> Result<(), TestCaseError> {
        prop_assert!(s.steps_fired >= 0);
        prop_assert_eq!(s.owner.is_some(), s.owned_at.is_some());
        prop_assert_eq!(s.status == AlertStatus::Resolved, s.resolution.is_some(), "{:?}", s);
        prop_assert_eq!(s.status == AlertStatus::StoodDown, s.stood_down_at.is_some(), "{:?}", s);
        if matches!(s.status, AlertStatus::Acknowledged | AlertStatus::Resolved) {
            prop_assert!(s.owner.is_some(), "{:?}", s);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn random_histories_never_reach_an_impossible_state(events in proptest::collection::vec(arb_event(), 0..40)) {
            let mut state = AlertState::raised();
            for e in &events {
                let Ok(t) = state.apply(e) else { continue };
                let (before, after) = (&state, &t.state);
                consistent(after)?;
                // A closed alert never changes again (apply refuses; this is the belt to those braces).
                prop_assert!(before.status.is_open(), "{:?} changed by {:?}", before, e);
                prop_assert!(after.steps_fired >= before.steps_fired);
                match (before.status, after.status) {
                    (a, b) if a == b => {}
                    // Ownership is taken only while escalating; it lapses only from owned.
                    (AlertStatus::Escalating, AlertStatus::Acknowledged) => {
                        prop_assert!(matches!(e, AlertEvent::TakenOwnership { .. }), "{:?}", e)
                    }
                    (AlertStatus::Acknowledged, AlertStatus::Escalating) => {
                        prop_assert_eq!(e, &AlertEvent::OwnershipLapsed)
                    }
                    (_, AlertStatus::Resolved) => prop_assert!(matches!(e, AlertEvent::Resolved { .. }), "{:?}", e),
                    (_, AlertStatus::StoodDown) => prop_assert!(matches!(e, AlertEvent::StoodDown { .. }), "{:?}", e),
                    (a, b) => prop_assert!(false, "{:?} -> {:?} by {:?}", a, b, e),
                }
                if after.owner != before.owner {
                    prop_assert!(matches!(e, AlertEvent::TakenOwnership { .. } | AlertEvent::Resolved { .. }), "{:?}", e);
                }
                if after.status != AlertStatus::Escalating {
                    let resumed = t.effects.iter().any(|f| matches!(f, AlertEffect::EscalationResumed { .. }));
                    prop_assert!(!resumed, "{:?}", t.effects);
                }
                state = t.state;
            }
        }

        #[test]
        fn a_closed_alert_refuses_every_event(
            events in proptest::collection::vec(arb_event(), 0..20),
            last in arb_event(),
        ) {
            let mut state = AlertState::raised();
            for e in &events {
                if let Ok(t) = state.apply(e) {
                    state = t.state;
                }
                if !state.status.is_open() {
                    let refused = state.apply(&last).err();
                    prop_assert!(refused.is_some_and(AlertError::is_closed), "{:?} after {:?}", refused, state);
                }
            }
        }

        #[test]
        fn events_refused_while_escalating_or_owned_are_the_right_ones(
            events in proptest::collection::vec(arb_event(), 0..20),
            last in arb_event(),
        ) {
            let mut state = AlertState::raised();
            for e in &events {
                if let Ok(t) = state.apply(e) {
                    state = t.state;
                }
            }
            if let Err(refused) = state.apply(&last) {
                match state.status {
                    AlertStatus::Escalating => prop_assert!(
                        matches!(refused, AlertError::StepAlreadyFired | AlertError::NotOwned),
                        "{:?} refused {:?}", state, refused
                    ),
                    AlertStatus::Acknowledged => prop_assert!(
                        matches!(refused, AlertError::NotEscalating | AlertError::OwnedByAnother),
                        "{:?} refused {:?}", state, refused
                    ),
                    _ => prop_assert!(refused.is_closed()),
                }
            }
        }
    }
}
