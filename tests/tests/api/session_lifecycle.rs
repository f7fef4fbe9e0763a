//! The session lifecycle through the API: plan, start, check in, extend, end, outcome; approval rules;
//! events applied exactly once and in the order they happened.

use chrono::Duration;
use homeward_shared::api::{ClientEventKind, OutcomeRequest};
use homeward_shared::session::{ApprovalStatus, Concern, Outcome, SessionStatus};
use homeward_shared::{HomeVisitKind, RiskLevel};
use homeward_tests::{Backend, event, low_risk_visit, on_both_databases, spawn_app, visit_with_risk};

fn outcome(concern: Concern) -> Outcome {
    Outcome {
        child_seen: true,
        responsible_adult_present: true,
        entered_premises: false,
        concern,
        notes: "All well.".into(),
    }
}

async fn full_lifecycle(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Lifecycle School").await;
    let worker = &school.staff.api;

    let planned = worker.plan_session(&low_risk_visit()).await.unwrap();
    assert_eq!(planned.status, SessionStatus::Planned);
    assert_eq!(planned.approval.status, ApprovalStatus::NotRequired);
    assert_eq!(planned.deadline, None);

    let start = event(ClientEventKind::Start { location: None }, Duration::seconds(-60));
    let started = worker.send_events(planned.id, &[start.clone()]).await.unwrap();
    assert_eq!(started.applied, vec![start.id]);
    assert_eq!(started.session.status, SessionStatus::Active);
    // A 20-minute check-in interval comes before the 60-minute planned end.
    assert_eq!(started.session.deadline, Some(start.at + Duration::minutes(20)));

    let check_in = event(ClientEventKind::CheckIn, Duration::zero());
    let checked = worker.send_events(planned.id, &[check_in.clone()]).await.unwrap();
    assert_eq!(checked.session.deadline, Some(check_in.at + Duration::minutes(20)));
    assert_eq!(checked.session.last_check_in, Some(check_in.at));

    let extend = event(ClientEventKind::Extend { minutes: 30 }, Duration::zero());
    let extended = worker.send_events(planned.id, &[extend]).await.unwrap();
    assert_eq!(extended.session.status, SessionStatus::Active);

    let end = event(ClientEventKind::End, Duration::seconds(1));
    let ended = worker.send_events(planned.id, &[end.clone()]).await.unwrap();
    assert_eq!(ended.session.status, SessionStatus::Ended);
    assert_eq!(ended.session.deadline, None);
    assert_eq!(ended.session.ended_at, Some(end.at));

    let recorded = worker
        .record_outcome(planned.id, &OutcomeRequest { id: None, outcome: outcome(Concern::Safeguarding) })
        .await
        .unwrap();
    assert_eq!(recorded.status, SessionStatus::OutcomeRecorded);
    assert_eq!(recorded.outcome.unwrap().concern, Concern::Safeguarding);

    // The leader sees it in the school's list, with the same state.
    let school_sessions = school.leader.api.sessions("school").await.unwrap();
    let seen = school_sessions.iter().find(|s| s.id == planned.id).expect("the leader sees the session");
    assert_eq!(seen.status, SessionStatus::OutcomeRecorded);

    // Every step is in the audit log, and the chain holds.
    let audit = school.dsl.api.audit(0, 1000).await.unwrap();
    let actions: Vec<&str> =
        audit.iter().filter(|e| e.subject == format!("session:{}", planned.id)).map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "session.planned",
            "session.started",
            "session.checked_in",
            "session.extended",
            "session.ended",
            "session.outcome_recorded"
        ]
    );
    assert!(school.dsl.api.verify_audit().await.unwrap().intact);
}

async fn events_are_applied_exactly_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Idempotent School").await;
    let worker = &school.staff.api;
    let session = worker.plan_session(&low_risk_visit()).await.unwrap();
    let start = event(ClientEventKind::Start { location: None }, Duration::seconds(-120));
    let extend = event(ClientEventKind::Extend { minutes: 15 }, Duration::seconds(-60));
    let first = worker.send_events(session.id, &[start.clone(), extend.clone()]).await.unwrap();
    // The phone did not hear the answer and sends the same batch again.
    let again = worker.send_events(session.id, &[start.clone(), extend.clone()]).await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.duplicates, vec![start.id, extend.id]);
    assert_eq!(again.session.deadline, first.session.deadline);
    assert_eq!(again.session, first.session);
}

async fn late_events_count_in_the_order_they_happened(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Order School").await;
    let worker = &school.staff.api;
    let session = worker.plan_session(&low_risk_visit()).await.unwrap();
    let start = event(ClientEventKind::Start { location: None }, Duration::seconds(-240));
    let check_in = event(ClientEventKind::CheckIn, Duration::seconds(-120));
    let end = event(ClientEventKind::End, Duration::seconds(-60));
    // Arrives out of order: end first (in a batch with the start), the queued check-in later.
    let first = worker.send_events(session.id, &[end.clone(), start.clone()]).await.unwrap();
    assert_eq!(first.session.status, SessionStatus::Ended);
    let late = worker.send_events(session.id, &[check_in.clone()]).await.unwrap();
    assert_eq!(late.applied, vec![check_in.id]);
    assert_eq!(late.session.status, SessionStatus::Ended);
    assert_eq!(late.session.last_check_in, Some(check_in.at));

    // The same history sent in another order to another session gives the same result.
    let other = worker.plan_session(&low_risk_visit()).await.unwrap();
    let renamed = |e: &homeward_shared::api::ClientEvent| homeward_shared::api::ClientEvent {
        id: uuid::Uuid::new_v4(),
        ..e.clone()
    };
    let in_order = worker.send_events(other.id, &[renamed(&start), renamed(&check_in), renamed(&end)]).await.unwrap();
    assert_eq!(in_order.session.status, late.session.status);
    assert_eq!(in_order.session.last_check_in, late.session.last_check_in);
    assert_eq!(in_order.session.ended_at, late.session.ended_at);
}

async fn an_event_that_cannot_happen_refuses_the_whole_batch(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Atomic School").await;
    let worker = &school.staff.api;
    let session = worker.plan_session(&low_risk_visit()).await.unwrap();
    let start = event(ClientEventKind::Start { location: None }, Duration::minutes(-3));
    let end = event(ClientEventKind::End, Duration::minutes(-2));
    let check_in_after_end = event(ClientEventKind::CheckIn, Duration::minutes(-1));
    let err = worker.send_events(session.id, &[start, end, check_in_after_end]).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(409));
    assert_eq!(err.code(), Some("already_ended"));
    let unchanged = worker.session(session.id).await.unwrap();
    assert_eq!(unchanged.status, SessionStatus::Planned, "nothing from the refused batch was stored");
    assert!(unchanged.started_at.is_none());
}

async fn an_event_id_cannot_be_reused_for_another_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Reuse School").await;
    let worker = &school.staff.api;
    let a = worker.plan_session(&low_risk_visit()).await.unwrap();
    let b = worker.plan_session(&low_risk_visit()).await.unwrap();
    let start = event(ClientEventKind::Start { location: None }, Duration::minutes(-1));
    worker.send_events(a.id, &[start.clone()]).await.unwrap();
    let err = worker.send_events(b.id, &[start]).await.unwrap_err();
    assert_eq!(err.code(), Some("event_id_reused"));
}

async fn approval_rules_decide_what_needs_approval(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Approval School").await;
    let worker = &school.staff.api;

    let low = worker.plan_session(&low_risk_visit()).await.unwrap();
    assert_eq!(low.approval.status, ApprovalStatus::NotRequired);

    let medium = worker.plan_session(&visit_with_risk(RiskLevel::Medium)).await.unwrap();
    assert_eq!(medium.approval.status, ApprovalStatus::Pending);

    let mut safe_and_well = low_risk_visit();
    safe_and_well.sub_kind = Some(HomeVisitKind::SafeAndWell.as_str().into());
    let saw = worker.plan_session(&safe_and_well).await.unwrap();
    assert_eq!(saw.approval.status, ApprovalStatus::Pending);

    // High risk needs a companion.
    let err = worker.plan_session(&visit_with_risk(RiskLevel::High)).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_companion_id"));
    let mut high = visit_with_risk(RiskLevel::High);
    high.companion_id = Some(school.other_staff.id());
    assert_eq!(worker.plan_session(&high).await.unwrap().approval.status, ApprovalStatus::Pending);

    // Starting before approval is refused with a clear error.
    let start = event(ClientEventKind::Start { location: None }, Duration::zero());
    let err = worker.send_events(medium.id, &[start.clone()]).await.unwrap_err();
    assert_eq!(err.code(), Some("approval_required"));
    assert!(err.to_string().contains("approval"), "{err}");

    // The worker cannot approve; a leader can.
    assert_eq!(worker.approve(medium.id).await.unwrap_err().status().map(|s| s.as_u16()), Some(403));
    let approved = school.leader.api.approve(medium.id).await.unwrap();
    assert_eq!(approved.approval.status, ApprovalStatus::Approved);
    assert_eq!(approved.approval.decided_by, Some(school.leader.id()));
    // A start pressed before the approval happened stays refused; pressed again after, it starts.
    assert_eq!(worker.send_events(medium.id, &[start]).await.unwrap_err().code(), Some("approval_required"));
    let start_again = event(ClientEventKind::Start { location: None }, Duration::zero());
    assert_eq!(worker.send_events(medium.id, &[start_again]).await.unwrap().session.status, SessionStatus::Active);

    // Rejection carries its reason and stops the start.
    let rejected = school.dsl.api.reject(saw.id, "Go with a colleague next week").await.unwrap();
    assert_eq!(rejected.approval.status, ApprovalStatus::Rejected);
    assert_eq!(rejected.approval.reason.as_deref(), Some("Go with a colleague next week"));
    let err = worker
        .send_events(saw.id, &[event(ClientEventKind::Start { location: None }, Duration::zero())])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("approval_rejected"));

    // The school can change its rules: with approval off for medium risk, it needs none.
    let mut rules = school.admin.api.approval_rules().await.unwrap();
    rules.approval_from_risk = Some(RiskLevel::High);
    school.admin.api.set_approval_rules(&rules).await.unwrap();
    let medium_now = worker.plan_session(&visit_with_risk(RiskLevel::Medium)).await.unwrap();
    assert_eq!(medium_now.approval.status, ApprovalStatus::NotRequired);
}

async fn planning_without_submitting_then_requesting(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Request School").await;
    let worker = &school.staff.api;
    let mut draft = visit_with_risk(RiskLevel::Medium);
    draft.submit_for_approval = false;
    let session = worker.plan_session(&draft).await.unwrap();
    assert_eq!(session.approval.status, ApprovalStatus::Required);
    assert!(school.leader.api.sessions("pending_approval").await.unwrap().is_empty());
    assert_eq!(worker.request_approval(session.id).await.unwrap().approval.status, ApprovalStatus::Pending);
    let pending = school.leader.api.sessions("pending_approval").await.unwrap();
    assert_eq!(pending.iter().map(|s| s.id).collect::<Vec<_>>(), vec![session.id]);
}

async fn duress_pin_looks_like_a_normal_end_to_the_worker(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Duress School").await;
    let worker = &school.staff.api;
    worker.set_pins("2468", "1357").await.unwrap();
    let session = worker.plan_session(&low_risk_visit()).await.unwrap();
    worker
        .send_events(session.id, &[event(ClientEventKind::Start { location: None }, Duration::minutes(-5))])
        .await
        .unwrap();

    let wrong = worker
        .send_events(session.id, &[event(ClientEventKind::EndWithPin { pin: "0000".into() }, Duration::zero())])
        .await;
    assert_eq!(wrong.unwrap_err().code(), Some("invalid_pin"));

    let ended = worker
        .send_events(session.id, &[event(ClientEventKind::EndWithPin { pin: "1357".into() }, Duration::zero())])
        .await
        .unwrap();
    assert_eq!(ended.session.status, SessionStatus::Ended, "the phone shows a normal end");
    assert_eq!(ended.session.alarm, None);
    let leader_view = school.leader.api.session(session.id).await.unwrap();
    assert_eq!(leader_view.status, SessionStatus::Alarm, "leaders see the silent alarm");
    assert_eq!(leader_view.alarm, Some(homeward_shared::session::AlarmKind::Duress));

    let other = worker.plan_session(&low_risk_visit()).await.unwrap();
    worker
        .send_events(other.id, &[event(ClientEventKind::Start { location: None }, Duration::minutes(-5))])
        .await
        .unwrap();
    let safe = worker
        .send_events(other.id, &[event(ClientEventKind::EndWithPin { pin: "2468".into() }, Duration::zero())])
        .await
        .unwrap();
    assert_eq!(school.leader.api.session(other.id).await.unwrap().status, SessionStatus::Ended);
    assert_eq!(safe.session.status, SessionStatus::Ended);
}

async fn panic_raises_an_alarm(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Panic School").await;
    let worker = &school.staff.api;
    let session = worker.plan_session(&low_risk_visit()).await.unwrap();
    let location = homeward_shared::Coordinates { latitude: 51.5001, longitude: -0.1201 };
    let batch = [
        event(ClientEventKind::Start { location: None }, Duration::minutes(-5)),
        event(ClientEventKind::Panic { location: Some(location) }, Duration::zero()),
    ];
    assert_eq!(
        school.leader.api.session(session.id).await.unwrap().household_notes,
        "",
        "responders do not see the household notes before an alert"
    );
    assert_eq!(worker.session(session.id).await.unwrap().household_notes, "Two adults; a dog.");
    let response = worker.send_events(session.id, &batch).await.unwrap();
    assert_eq!(response.session.status, SessionStatus::Alarm);
    assert_eq!(
        school.leader.api.session(session.id).await.unwrap().household_notes,
        "Two adults; a dog.",
        "once the alarm is raised, responders see who lives there"
    );
    assert_eq!(response.session.alarm, Some(homeward_shared::session::AlarmKind::Panic));
}

async fn pings_are_stored_once_and_only_during_the_visit(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Ping School").await;
    let worker = &school.staff.api;
    let session = worker.plan_session(&low_risk_visit()).await.unwrap();
    let ping = homeward_shared::api::LocationPing {
        id: uuid::Uuid::new_v4(),
        at: chrono::Utc::now(),
        latitude: 51.5,
        longitude: -0.12,
        accuracy_m: 12.0,
        battery_percent: Some(80),
    };
    let err = worker.send_pings(session.id, &[ping.clone()]).await.unwrap_err();
    assert_eq!(err.code(), Some("not_started"));
    worker
        .send_events(session.id, &[event(ClientEventKind::Start { location: None }, Duration::minutes(-1))])
        .await
        .unwrap();
    let stored = worker.send_pings(session.id, &[ping.clone()]).await.unwrap();
    assert_eq!((stored.stored, stored.duplicates), (1, 0));
    let again = worker.send_pings(session.id, &[ping.clone()]).await.unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 1));
    let count: (i64,) =
        sqlx::query_as("select count(*) from location_pings").fetch_one(&app.state.db.pool).await.unwrap();
    assert_eq!(count.0, 1);
    // Someone else's phone cannot post pings for this visit.
    let err = school.other_staff.api.send_pings(session.id, &[ping]).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
}

/// Regression: on PostgreSQL a position missing from one insert must not break a later one with a
/// position on the same pooled connection (sqlx's Any driver mistyped NULL doubles).
async fn positions_missing_then_present_are_both_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let school = app.school("Position School").await;
    let worker = &school.staff.api;
    let location = homeward_shared::Coordinates { latitude: 51.45, longitude: -2.58 };
    for round in 0..3 {
        let mut without = low_risk_visit();
        without.location = None;
        let a = worker.plan_session(&without).await.unwrap();
        assert_eq!(a.location, None);
        let b = worker.plan_session(&low_risk_visit()).await.unwrap();
        assert!(b.location.is_some());
        for (session, position) in [(a.id, None), (b.id, Some(location))] {
            let batch = [
                event(ClientEventKind::Start { location: None }, Duration::seconds(-10)),
                event(ClientEventKind::Panic { location: position }, Duration::seconds(-5 + round)),
            ];
            let response = worker.send_events(session, &batch).await.unwrap();
            assert_eq!(response.session.status, SessionStatus::Alarm);
        }
    }
    let alerts = school.leader.api.alerts("open").await.unwrap();
    assert_eq!(alerts.len(), 6);
    assert_eq!(alerts.iter().filter(|a| a.last_location == Some(location)).count(), 3);
}

on_both_databases!(
    positions_missing_then_present_are_both_stored,
    full_lifecycle,
    events_are_applied_exactly_once,
    late_events_count_in_the_order_they_happened,
    an_event_that_cannot_happen_refuses_the_whole_batch,
    an_event_id_cannot_be_reused_for_another_session,
    approval_rules_decide_what_needs_approval,
    planning_without_submitting_then_requesting,
    duress_pin_looks_like_a_normal_end_to_the_worker,
    panic_raises_an_alarm,
    pings_are_stored_once_and_only_during_the_visit,
);
