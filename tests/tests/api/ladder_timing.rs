//! The ladder's timing driven by a hand-moved clock: nothing fires a second early, everything fires at
//! its second. Timers are fired by calling the scheduler directly (the background loop may fire them
//! too; each fires once either way).

use chrono::{Duration, Utc};
use homeward_server::clock::ManualClock;
use homeward_server::escalation::scheduler::fire_due;
use homeward_shared::api::{AlertStatus, AlertView, ClientEventKind, EscalationPlanRequest};
use homeward_shared::{EscalationStep, Recipient, Role};
use homeward_tests::{
    BACKGROUND_WAIT, Backend, School, TestApp, eventually, low_risk_visit, on_both_databases, spawn_app_with_clock,
};
use uuid::Uuid;

fn step(minutes: i64, recipients: Vec<Recipient>, instruction: &str) -> EscalationStep {
    EscalationStep { delay_seconds: minutes * 60, recipients, channels: vec![], instruction: instruction.into() }
}

/// A visit started at the clock's now, due 5 minutes later; plan +0 worker, +1 min line manager,
/// +5 min DSL, then every leader every 10 minutes.
async fn started(backend: Backend) -> (TestApp, School, Uuid) {
    let start = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let app = spawn_app_with_clock(backend, ManualClock::new(start)).await;
    let school = app.school("Clock School").await;
    let plan = school
        .admin
        .api
        .create_escalation_plan(&EscalationPlanRequest {
            name: "Minutes".into(),
            steps: vec![
                step(0, vec![Recipient::Worker], "Check in now."),
                step(1, vec![Recipient::LineManager], "Phone the worker."),
                step(5, vec![Recipient::Role { role: Role::Dsl }], "Call 999."),
            ],
            repeat_every_seconds: Some(600),
            is_default: false,
        })
        .await
        .unwrap();
    let mut visit = low_risk_visit();
    visit.escalation_plan_id = Some(plan.id);
    visit.check_in_interval_minutes = None;
    visit.expected_duration_minutes = 5;
    visit.planned_start = start;
    let session = school.staff.api.plan_session(&visit).await.unwrap();
    school
        .staff
        .api
        .send_events(session.id, &[app.event_now(ClientEventKind::Start { location: None })])
        .await
        .unwrap();
    (app, school, session.id)
}

/// Move the clock, then fire until nothing is due. The background loop may hold a timer at that
/// moment (PostgreSQL skips locked rows), so wait until it has finished too.
async fn tick(app: &TestApp, by: Duration) {
    app.advance(by);
    eventually("every due timer fired (timers stayed due)", BACKGROUND_WAIT, || async {
        fire_due(&app.state).await.expect("the scheduler fires");
        let due = homeward_server::escalation::timers::next_due(&app.state.db).await.unwrap();
        due.is_none_or(|d| d > app.now()).then_some(())
    })
    .await
}

/// The missed-deadline alert (informational ones, like a lost signal, are not part of the ladder).
async fn alert(school: &School) -> Option<AlertView> {
    let all = school.leader.api.alerts("all").await.unwrap();
    all.into_iter().find(|a| a.kind == homeward_shared::api::AlertKind::MissedDeadline)
}

fn count(alert: &AlertView, purpose: &str) -> usize {
    alert.deliveries.iter().filter(|d| d.purpose == purpose).count()
}

async fn each_step_fires_at_its_second(backend: Backend) {
    let (app, school, _) = started(backend).await;
    tick(&app, Duration::seconds(299)).await;
    assert!(alert(&school).await.is_none(), "nothing before the deadline");
    tick(&app, Duration::seconds(1)).await;
    let a = alert(&school).await.expect("the deadline passed: an alert");
    assert_eq!(a.steps_fired, 1);
    tick(&app, Duration::seconds(59)).await;
    assert_eq!(alert(&school).await.unwrap().steps_fired, 1, "step 2 waits its full minute");
    tick(&app, Duration::seconds(1)).await;
    assert_eq!(alert(&school).await.unwrap().steps_fired, 2);
    tick(&app, Duration::seconds(239)).await;
    assert_eq!(alert(&school).await.unwrap().steps_fired, 2);
    tick(&app, Duration::seconds(1)).await;
    let a = alert(&school).await.unwrap();
    assert_eq!(a.steps_fired, 3);
    assert_eq!(a.instruction.as_deref(), Some("Call 999."));
    // Each recipient is recorded once per step, even with no device.
    assert_eq!(count(&a, "step"), 3, "{:#?}", a.deliveries);
    assert!(a.deliveries.iter().all(|d| d.status == "no_channel"));
    // The plan ran out: every leader again after 10 minutes, and again after 10 more.
    tick(&app, Duration::seconds(599)).await;
    assert_eq!(count(&alert(&school).await.unwrap(), "repeat"), 0);
    tick(&app, Duration::seconds(1)).await;
    assert_eq!(count(&alert(&school).await.unwrap(), "repeat"), 1);
    tick(&app, Duration::seconds(600)).await;
    assert_eq!(count(&alert(&school).await.unwrap(), "repeat"), 2);
}

async fn ownership_pauses_and_its_timeout_resumes_on_the_second(backend: Backend) {
    let (app, school, _) = started(backend).await;
    tick(&app, Duration::seconds(300)).await;
    tick(&app, Duration::seconds(60)).await;
    let a = alert(&school).await.unwrap();
    assert_eq!(a.steps_fired, 2);
    school.leader.api.acknowledge_alert(a.id).await.unwrap();
    // The DSL's step would have been due at +5 min; owned, it waits.
    tick(&app, Duration::seconds(599)).await;
    let owned = alert(&school).await.unwrap();
    assert_eq!((owned.status, owned.steps_fired), (AlertStatus::Acknowledged, 2));
    // Ten minutes without a resolution: escalation resumes with the DSL's step at once.
    tick(&app, Duration::seconds(1)).await;
    let resumed = alert(&school).await.unwrap();
    assert_eq!((resumed.status, resumed.steps_fired), (AlertStatus::Escalating, 3));
}

async fn a_check_in_before_the_deadline_moves_it(backend: Backend) {
    let (app, school, session) = started(backend).await;
    tick(&app, Duration::seconds(240)).await;
    school.staff.api.send_events(session, &[app.event_now(ClientEventKind::Extend { minutes: 15 })]).await.unwrap();
    tick(&app, Duration::seconds(60)).await;
    let kinds: Vec<_> = school.leader.api.alerts("all").await.unwrap().iter().map(|a| a.kind).collect();
    assert!(kinds.is_empty(), "no alert at all at the old deadline: {kinds:?}");
    tick(&app, Duration::minutes(15) - Duration::seconds(1)).await;
    assert!(alert(&school).await.is_none());
    tick(&app, Duration::seconds(1)).await;
    assert!(alert(&school).await.is_some(), "the extended deadline counts");
}

async fn a_deadline_missed_while_the_server_was_away_fires_once_when_it_looks(backend: Backend) {
    let (app, school, _) = started(backend).await;
    // The clock jumps far past every step at once (the server was down): each step fires once.
    tick(&app, Duration::hours(1)).await;
    let a = alert(&school).await.unwrap();
    assert_eq!(a.steps_fired, 3);
    assert_eq!(count(&a, "step"), 3);
    let all = school.leader.api.alerts("all").await.unwrap();
    let missed = all.iter().filter(|a| a.kind == homeward_shared::api::AlertKind::MissedDeadline).count();
    assert_eq!(missed, 1, "one alert for one missed deadline");
}

/// A deadline timer retried later (its `due_at` moved on, as after a failed attempt) still makes the
/// visit overdue: the deadline is the session's, not the timer's.
async fn a_retried_deadline_timer_still_fires(backend: Backend) {
    let (app, school, session) = started(backend).await;
    sqlx::query("update timers set due_at = due_at + 5000 where session_id = $1 and kind = 'session_deadline'")
        .bind(session.to_string())
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    tick(&app, Duration::seconds(303)).await;
    assert!(alert(&school).await.is_none(), "the retry is not due yet");
    tick(&app, Duration::seconds(3)).await;
    let a = alert(&school).await.expect("the retried deadline fires");
    assert_eq!(a.session.status, homeward_shared::session::SessionStatus::Overdue);
}

on_both_databases!(
    a_retried_deadline_timer_still_fires,
    each_step_fires_at_its_second,
    ownership_pauses_and_its_timeout_resumes_on_the_second,
    a_check_in_before_the_deadline_moves_it,
    a_deadline_missed_while_the_server_was_away_fires_once_when_it_looks,
);
