//! The escalation engine end to end: a real server on each database, a real Web Push peer that checks
//! VAPID and decrypts every message, and plans whose steps are seconds apart. The server's clock is
//! jumped over the visit's five-minute minimum, then runs in real time.

use std::time::Duration as StdDuration;

use chrono::Duration;
use homeward_shared::api::{
    AlertKind, AlertResolution, AlertStatus, AlertView, ClientEventKind, EscalationPlanRequest, ResolveAlertRequest,
};
use homeward_shared::session::SessionStatus;
use homeward_shared::{EscalationStep, Recipient, Role};
use homeward_tests::push_service::{PushService, Received, Subscription};
use homeward_tests::{Backend, School, TestApp, low_risk_visit, on_both_databases, spawn_app_shifted};
use uuid::Uuid;

const WAIT: StdDuration = StdDuration::from_secs(10);

struct Scene {
    app: TestApp,
    school: School,
    push: PushService,
    worker: Subscription,
    manager: Subscription,
    dsl: Subscription,
    session: Uuid,
}

fn step(delay_seconds: i64, recipients: Vec<Recipient>, instruction: &str) -> EscalationStep {
    EscalationStep { delay_seconds, recipients, channels: vec![], instruction: instruction.into() }
}

/// A school with a plan of seconds: +0 s the worker, +2 s the line manager, +4 s the DSL, then every
/// leader every 3 s. The worker, the line manager and the DSL each have one browser subscribed
/// (unless `manager_subscribed` is false). The worker's visit is started.
async fn scene(backend: Backend, ownership_timeout_secs: i64, manager_subscribed: bool) -> Scene {
    let app = spawn_app_shifted(backend, |s| s.ownership_timeout_secs = ownership_timeout_secs).await;
    let school = app.school("Ladder School").await;
    let plan = school
        .admin
        .api
        .create_escalation_plan(&EscalationPlanRequest {
            name: "Seconds".into(),
            steps: vec![
                step(0, vec![Recipient::Worker], "Check in now."),
                step(2, vec![Recipient::LineManager], "Phone the worker now."),
                step(4, vec![Recipient::Role { role: Role::Dsl }], "Call 999 and give the visit details."),
            ],
            repeat_every_seconds: Some(3),
            is_default: false,
        })
        .await
        .expect("create the plan");
    let push = app.push_service().await;
    let worker = app.subscribe(&school.staff, &push).await;
    let manager = if manager_subscribed { app.subscribe(&school.leader, &push).await } else { push.subscribe() };
    let dsl = app.subscribe(&school.dsl, &push).await;
    let mut visit = low_risk_visit();
    visit.escalation_plan_id = Some(plan.id);
    visit.check_in_interval_minutes = None;
    visit.expected_duration_minutes = 5;
    visit.planned_start = app.now();
    let session = school.staff.api.plan_session(&visit).await.expect("plan");
    school
        .staff
        .api
        .send_events(session.id, &[app.event_now(ClientEventKind::Start { location: None })])
        .await
        .expect("start");
    Scene { app, school, push, worker, manager, dsl, session: session.id }
}

impl Scene {
    /// Let the five-minute visit run out.
    fn miss_the_deadline(&self) {
        self.app.advance(Duration::minutes(5));
    }

    async fn wait_for_step(&self, subscription: &Subscription, step: i64) -> Received {
        let id = subscription.id.clone();
        let received =
            self.push.wait_for(WAIT, |r| r.iter().any(|m| m.subscription_id == id && is_step(m, step))).await;
        received.into_iter().find(|m| m.subscription_id == id && is_step(m, step)).unwrap_or_else(|| {
            panic!(
                "step {step} never reached {id}; received: {:#?}; attempts: {:#?}",
                self.push.received(),
                self.push.attempts()
            )
        })
    }

    /// The open alert once every step delivery that reached the push service is recorded as sent.
    async fn alert_once_recorded(&self) -> AlertView {
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            let alert = self.open_alert().await;
            let steps = alert.deliveries.iter().filter(|d| d.purpose == "step");
            if steps.clone().all(|d| d.status == "sent") || tokio::time::Instant::now() >= until {
                return alert;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
    }

    async fn open_alert(&self) -> AlertView {
        let alerts = self.school.leader.api.alerts("open").await.expect("alerts");
        alerts.into_iter().find(|a| a.session_id == self.session).expect("an open alert for the visit")
    }
}

fn is_step(m: &Received, step: i64) -> bool {
    m.payload["purpose"] == "step" && m.payload["step"] == step
}

fn purpose(m: &Received) -> &str {
    m.payload["purpose"].as_str().unwrap_or_default()
}

async fn missed_deadline_climbs_the_ladder_in_order(backend: Backend) {
    let s = scene(backend, 600, true).await;
    s.miss_the_deadline();
    let to_worker = s.wait_for_step(&s.worker, 1).await;
    let to_manager = s.wait_for_step(&s.manager, 2).await;
    let to_dsl = s.wait_for_step(&s.dsl, 3).await;
    assert!(to_worker.at < to_manager.at && to_manager.at < to_dsl.at, "in order");
    assert_eq!(to_worker.payload["body"], "Check in now.");
    assert_eq!(to_manager.payload["body"], "Phone the worker now.");
    assert_eq!(to_dsl.payload["body"], "Call 999 and give the visit details.");
    assert_eq!(to_dsl.payload["kind"], "missed_deadline");
    assert_eq!(to_dsl.urgency.as_deref(), Some("high"));
    assert!(to_dsl.topic.is_some());
    for m in [&to_worker, &to_manager, &to_dsl] {
        let text = m.payload.to_string();
        assert!(!text.contains("Test Street") && !text.contains("ADM-1001"), "no address or pupil in a push: {text}");
    }
    // The push service answers before the server records the answer: wait for the record.
    let alert = s.alert_once_recorded().await;
    assert_eq!(alert.kind, AlertKind::MissedDeadline);
    assert_eq!(alert.status, AlertStatus::Escalating);
    assert_eq!(alert.steps_fired, 3);
    // Each step waits for its delay from the missed deadline (+0 s, +2 s, +4 s): the server's own
    // record of when it fired each step, so a slow machine cannot blur it.
    let deadline = alert.session.deadline.expect("the deadline that was missed");
    let fired_at =
        |step: i64| alert.deliveries.iter().find(|d| d.purpose == "step" && d.step == Some(step)).map(|d| d.created_at);
    for (step, delay) in [(1, 0), (2, 2), (3, 4)] {
        let at = fired_at(step).unwrap_or_else(|| panic!("no delivery for step {step}: {:#?}", alert.deliveries));
        assert!(
            at >= deadline + Duration::seconds(delay),
            "step {step} fired at {at}, before deadline {deadline} + {delay} s"
        );
    }
    assert_eq!(alert.instruction.as_deref(), Some("Call 999 and give the visit details."));
    assert_eq!(alert.session.household_notes, "Two adults; a dog.", "responders see the household notes");
    assert_eq!(alert.session.status, SessionStatus::Overdue);
    assert!(
        alert.deliveries.iter().filter(|d| d.purpose == "step").all(|d| d.status == "sent"),
        "{:#?}",
        alert.deliveries
    );
    assert!(
        alert.delivery_summary.iter().any(|l| l.starts_with("step 2: sent to 1 of")),
        "{:?}",
        alert.delivery_summary
    );
    // Exactly once each.
    let steps: Vec<_> = s.push.received().into_iter().filter(|m| purpose(m) == "step").collect();
    assert_eq!(steps.len(), 3, "{steps:#?}");
}

async fn ownership_stops_the_ladder_and_the_timeout_resumes_it(backend: Backend) {
    let s = scene(backend, 3, true).await;
    s.miss_the_deadline();
    s.wait_for_step(&s.manager, 2).await;
    let alert = s.open_alert().await;
    // Wall-clock time, like the push service's: the server's own clock runs five minutes ahead.
    let acknowledged = chrono::Utc::now();
    let owned = s.school.leader.api.acknowledge_alert(alert.id).await.expect("take ownership");
    assert_eq!(owned.status, AlertStatus::Acknowledged);
    assert_eq!(owned.acknowledged_by, Some(s.school.leader.id()));
    // The DSL's step was due 2 s after the manager's: while owned, it does not fire.
    tokio::time::sleep(StdDuration::from_millis(2_000)).await;
    assert!(s.push.received_by(&s.dsl.id).is_empty(), "no step while a leader owns the alert");
    // Not resolved within the 3 s ownership timeout: escalation resumes with the next step.
    let resumed = s.wait_for_step(&s.dsl, 3).await;
    let waited = (resumed.at - acknowledged).num_milliseconds();
    assert!(waited >= 2_900, "escalation resumed {waited} ms after ownership, before the 3 s timeout");
    assert_eq!(s.school.leader.api.alert(alert.id).await.unwrap().status, AlertStatus::Escalating);
}

async fn late_check_in_stands_down_and_tells_everyone_alerted(backend: Backend) {
    let s = scene(backend, 600, true).await;
    s.miss_the_deadline();
    s.wait_for_step(&s.manager, 2).await;
    let alert = s.open_alert().await;
    let checked =
        s.school.staff.api.send_events(s.session, &[s.app.event_now(ClientEventKind::CheckIn)]).await.unwrap();
    assert_eq!(checked.session.status, SessionStatus::Active);
    assert_eq!(checked.session.late_check_ins, 1);
    for sub in [&s.worker, &s.manager] {
        let id = sub.id.clone();
        let got =
            s.push.wait_for(WAIT, |r| r.iter().any(|m| m.subscription_id == id && purpose(m) == "stand_down")).await;
        assert!(got.iter().any(|m| m.subscription_id == id && purpose(m) == "stand_down"), "stand-down reached {id}");
    }
    // The DSL was never alerted: no stand-down for them, and their step never fires.
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    assert!(s.push.received_by(&s.dsl.id).is_empty());
    let closed = s.school.leader.api.alert(alert.id).await.unwrap();
    assert_eq!(closed.status, AlertStatus::StoodDown);
    assert!(closed.stood_down_at.is_some());
}

async fn panic_reaches_the_top_of_the_plan_at_once(backend: Backend) {
    let s = scene(backend, 600, true).await;
    let location = homeward_shared::Coordinates { latitude: 51.501, longitude: -0.121 };
    let sent = s.app.now();
    s.school
        .staff
        .api
        .send_events(s.session, &[s.app.event_now(ClientEventKind::Panic { location: Some(location) })])
        .await
        .unwrap();
    let manager = s.push.wait_for(WAIT, |r| r.iter().any(|m| m.subscription_id == s.manager.id)).await;
    let dsl = s.push.wait_for(WAIT, |r| r.iter().any(|m| m.subscription_id == s.dsl.id)).await;
    let first = manager.iter().chain(dsl.iter()).map(|m| m.at).min().unwrap();
    assert!((first - sent).num_seconds() < 3, "a panic goes out at once, not after the plan's delays");
    for m in s.push.received() {
        assert_eq!(m.payload["kind"], "panic");
        assert_eq!(m.urgency.as_deref(), Some("high"));
        assert_eq!(m.payload["body"], "Call 999 and give the visit details.", "the top step's instruction");
    }
    assert!(s.push.received_by(&s.worker.id).is_empty(), "nothing to the worker who pressed it");
    let alert = s.open_alert().await;
    assert_eq!(alert.kind, AlertKind::Panic);
    assert_eq!(alert.last_location, Some(location));
}

async fn duress_alerts_leaders_silently(backend: Backend) {
    let s = scene(backend, 600, true).await;
    s.school.staff.api.set_pins("2468", "1357").await.unwrap();
    let ended = s
        .school
        .staff
        .api
        .send_events(s.session, &[s.app.event_now(ClientEventKind::EndWithPin { pin: "1357".into() })])
        .await
        .unwrap();
    assert_eq!(ended.session.status, SessionStatus::Ended, "the phone shows an ordinary end");
    let got = s.push.wait_for(WAIT, |r| r.iter().any(|m| m.subscription_id == s.dsl.id)).await;
    let to_dsl = got.iter().find(|m| m.subscription_id == s.dsl.id).unwrap();
    assert_eq!(to_dsl.payload["kind"], "duress");
    s.push.wait_for(WAIT, |r| r.iter().any(|m| m.subscription_id == s.manager.id)).await;
    tokio::time::sleep(StdDuration::from_secs(1)).await;
    assert!(s.push.received_by(&s.worker.id).is_empty(), "nothing reaches the worker's phone");
    assert!(s.push.attempts().iter().all(|a| a.subscription_id != s.worker.id));
}

async fn plan_exhaustion_repeats_to_every_leader_until_owned(backend: Backend) {
    let s = scene(backend, 600, true).await;
    s.miss_the_deadline();
    s.wait_for_step(&s.dsl, 3).await;
    let manager = s.manager.id.clone();
    let repeats = s
        .push
        .wait_for(WAIT, |r| r.iter().filter(|m| m.subscription_id == manager && purpose(m) == "repeat").count() >= 2)
        .await;
    assert!(repeats.iter().filter(|m| m.subscription_id == manager && purpose(m) == "repeat").count() >= 2);
    let alert = s.open_alert().await;
    s.school.dsl.api.acknowledge_alert(alert.id).await.unwrap();
    let before = s.push.received().iter().filter(|m| purpose(m) == "repeat").count();
    tokio::time::sleep(StdDuration::from_secs(4)).await;
    let after = s.push.received().iter().filter(|m| purpose(m) == "repeat").count();
    assert_eq!(before, after, "taking ownership stops the repeats");
}

async fn a_gone_endpoint_is_removed(backend: Backend) {
    let s = scene(backend, 600, true).await;
    s.push.respond_with(&s.manager.id, &[410]);
    s.miss_the_deadline();
    s.wait_for_step(&s.dsl, 3).await;
    assert!(s.push.attempts().iter().any(|a| a.subscription_id == s.manager.id && a.status == 410));
    assert!(s.school.leader.api.push_subscriptions().await.unwrap().is_empty(), "the gone subscription was removed");
    let alert = s.open_alert().await;
    let to_manager: Vec<_> = alert.deliveries.iter().filter(|d| d.recipient_id == Some(s.school.leader.id())).collect();
    assert_eq!(to_manager[0].status, "gone");
    assert!(alert.delivery_summary.iter().any(|l| l.contains("endpoint(s) gone")), "{:?}", alert.delivery_summary);
}

async fn a_server_error_is_retried_and_delivered_once(backend: Backend) {
    let s = scene(backend, 600, true).await;
    s.push.respond_with(&s.manager.id, &[408, 500, 201]);
    s.miss_the_deadline();
    s.wait_for_step(&s.manager, 2).await;
    s.wait_for_step(&s.dsl, 3).await;
    let statuses: Vec<u16> =
        s.push.attempts().iter().filter(|a| a.subscription_id == s.manager.id).map(|a| a.status).collect();
    assert_eq!(&statuses[..3], &[408, 500, 201]);
    assert_eq!(s.push.received_by(&s.manager.id).iter().filter(|m| is_step(m, 2)).count(), 1, "delivered once");
    let alert = s.alert_once_recorded().await;
    let delivery = alert.deliveries.iter().find(|d| d.recipient_id == Some(s.school.leader.id())).unwrap();
    assert_eq!((delivery.status.as_str(), delivery.attempts), ("sent", 3));
    let history: Vec<(&str, Option<i64>)> =
        delivery.history.iter().map(|h| (h.outcome.as_str(), h.status_code)).collect();
    assert_eq!(
        history,
        vec![("retry", Some(408)), ("retry", Some(500)), ("sent", Some(201))],
        "every attempt is recorded"
    );
}

async fn too_many_requests_is_retried_and_delivered_once(backend: Backend) {
    let s = scene(backend, 600, true).await;
    // The push service answers 429 with `Retry-After: 1` once.
    s.push.respond_with(&s.worker.id, &[429, 201]);
    s.miss_the_deadline();
    s.wait_for_step(&s.worker, 1).await;
    let tries: Vec<_> = s.push.attempts().into_iter().filter(|a| a.subscription_id == s.worker.id).collect();
    assert_eq!(tries.iter().map(|a| a.status).collect::<Vec<_>>()[..2], [429, 201]);
    // Retry-After (1 s here) and the first backoff (1 s) agree; the deliverer's unit tests tell them apart.
    let waited = (tries[1].at - tries[0].at).num_milliseconds();
    assert!(waited >= 950, "the retry waited ({waited} ms)");
    assert_eq!(s.push.received_by(&s.worker.id).iter().filter(|m| is_step(m, 1)).count(), 1);
}

async fn a_test_push_reaches_each_of_my_devices(backend: Backend) {
    let s = scene(backend, 600, true).await;
    let second = s.app.subscribe(&s.school.staff, &s.push).await;
    s.push.respond_with(&second.id, &[410]);
    let report = s.school.staff.api.test_push().await.unwrap();
    assert_eq!(report.devices.len(), 2);
    let first = report.devices.iter().find(|d| d.endpoint == s.worker.endpoint).unwrap();
    assert!(first.delivered, "{first:?}");
    let gone = report.devices.iter().find(|d| d.endpoint == second.endpoint).unwrap();
    assert!(!gone.delivered && gone.detail.contains("gone"), "{gone:?}");
    let got = s.push.received_by(&s.worker.id);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload["purpose"], "test");
    assert!(s.push.received_by(&s.manager.id).is_empty(), "only my own devices");
}

async fn a_recipient_without_a_device_does_not_hold_up_the_ladder(backend: Backend) {
    let s = scene(backend, 600, false).await;
    s.miss_the_deadline();
    let to_worker = s.wait_for_step(&s.worker, 1).await;
    let to_dsl = s.wait_for_step(&s.dsl, 3).await;
    let gap = (to_dsl.at - to_worker.at).num_milliseconds();
    assert!(gap < 8_000, "the DSL step came on time ({gap} ms), not held up by the unreachable manager");
    let alert = s.open_alert().await;
    assert!(
        alert.delivery_summary.iter().any(|l| l.contains("has no device that can receive alerts")),
        "{:?}",
        alert.delivery_summary
    );
}

async fn resolving_a_panic_returns_the_visit_to_active(backend: Backend) {
    let s = scene(backend, 600, true).await;
    s.school
        .staff
        .api
        .send_events(s.session, &[s.app.event_now(ClientEventKind::Panic { location: None })])
        .await
        .unwrap();
    let alert = s.open_alert().await;
    assert_eq!(
        s.school.staff.api.resolve_alert(alert.id, &resolve()).await.unwrap_err().status().map(|c| c.as_u16()),
        Some(403)
    );
    let resolved = s.school.leader.api.resolve_alert(alert.id, &resolve()).await.unwrap();
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.resolution, Some(AlertResolution::FalseAlarm));
    assert_eq!(resolved.resolved_by, Some(s.school.leader.id()));
    assert_eq!(resolved.session.status, SessionStatus::Active);
    assert!(resolved.session.deadline.is_some());
    let err = s.school.leader.api.acknowledge_alert(alert.id).await.unwrap_err();
    assert_eq!(err.code(), Some("alert_closed"));
}

/// On PostgreSQL the scheduler and the deliverer have connections of their own: with every connection
/// of the pool that requests share held (as by a flood of requests), a missed deadline still climbs the
/// ladder on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_missed_deadline_escalates_while_requests_hold_every_shared_connection() {
    let s = scene(Backend::Postgres, 600, true).await;
    let pool = &s.app.state.db.pool;
    let mut held = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        held.push(pool.acquire().await.expect("a shared connection"));
    }
    s.miss_the_deadline();
    s.wait_for_step(&s.worker, 1).await;
    s.wait_for_step(&s.manager, 2).await;
    drop(held);
    let received = s.push.received();
    for step in [1, 2] {
        assert_eq!(received.iter().filter(|m| is_step(m, step)).count(), 1, "step {step} once: {received:#?}");
    }
}

fn resolve() -> ResolveAlertRequest {
    ResolveAlertRequest { resolution: AlertResolution::FalseAlarm, notes: "Pressed by accident; spoke to her.".into() }
}

on_both_databases!(
    missed_deadline_climbs_the_ladder_in_order,
    ownership_stops_the_ladder_and_the_timeout_resumes_it,
    late_check_in_stands_down_and_tells_everyone_alerted,
    panic_reaches_the_top_of_the_plan_at_once,
    duress_alerts_leaders_silently,
    plan_exhaustion_repeats_to_every_leader_until_owned,
    a_gone_endpoint_is_removed,
    a_server_error_is_retried_and_delivered_once,
    too_many_requests_is_retried_and_delivered_once,
    a_test_push_reaches_each_of_my_devices,
    a_recipient_without_a_device_does_not_hold_up_the_ladder,
    resolving_a_panic_returns_the_visit_to_active,
);
