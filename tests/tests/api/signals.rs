//! Informational alerts from the phone's reports, end to end: low battery, lost signal, leaving the
//! visit's geofence without ending, and a visit that never started. Each fires once per session.

use std::time::Duration as StdDuration;

use chrono::Duration;
use homeward_shared::api::{AlertKind, ClientEventKind, LocationPing};
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
    session: Uuid,
}

/// A started visit at (51.5, -0.12) with a 150 m geofence; the worker and the line manager subscribed.
async fn scene(backend: Backend, signal_lost_secs: i64, geofence_follow_up_secs: i64) -> Scene {
    let app = spawn_app_shifted(backend, |s| {
        s.signal_lost_secs = signal_lost_secs;
        s.geofence_follow_up_secs = geofence_follow_up_secs;
    })
    .await;
    let school = app.school("Signals School").await;
    let push = app.push_service().await;
    let worker = app.subscribe(&school.staff, &push).await;
    let manager = app.subscribe(&school.leader, &push).await;
    let mut visit = low_risk_visit();
    visit.planned_start = app.now();
    let session = school.staff.api.plan_session(&visit).await.unwrap();
    school
        .staff
        .api
        .send_events(session.id, &[app.event_now(ClientEventKind::Start { location: None })])
        .await
        .unwrap();
    Scene { app, school, push, worker, manager, session: session.id }
}

impl Scene {
    fn ping(&self, latitude: f64, longitude: f64, battery: Option<i64>) -> LocationPing {
        let at = chrono::DateTime::from_timestamp_millis(self.app.now().timestamp_millis()).unwrap();
        LocationPing { id: Uuid::new_v4(), at, latitude, longitude, accuracy_m: 10.0, battery_percent: battery }
    }

    async fn notices(&self, sub: &Subscription, kind: &str, at_least: usize) -> Vec<Received> {
        let id = sub.id.clone();
        let matching = |r: &[Received]| {
            r.iter()
                .filter(|m| m.subscription_id == id && m.payload["kind"] == kind && m.payload["purpose"] == "notice")
                .count()
        };
        let got = self.push.wait_for(WAIT, |r| matching(r) >= at_least).await;
        got.into_iter().filter(|m| m.subscription_id == id && m.payload["kind"] == kind).collect()
    }

    async fn alerts_of(&self, kind: AlertKind) -> usize {
        let all = self.school.leader.api.alerts("all").await.unwrap();
        all.iter().filter(|a| a.session_id == self.session && a.kind == kind).count()
    }
}

async fn low_battery_fires_once(backend: Backend) {
    let s = scene(backend, 600, 120).await;
    let api = &s.school.staff.api;
    api.send_pings(s.session, &[s.ping(51.5, -0.12, Some(40))]).await.unwrap();
    api.send_pings(s.session, &[s.ping(51.5, -0.12, Some(14))]).await.unwrap();
    api.send_pings(s.session, &[s.ping(51.5, -0.12, Some(9))]).await.unwrap();
    let to_worker = s.notices(&s.worker, "low_battery", 1).await;
    let to_manager = s.notices(&s.manager, "low_battery", 1).await;
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert_eq!(to_worker.len(), 1);
    assert_eq!(to_manager.len(), 1);
    assert!(to_manager[0].payload["body"].as_str().unwrap().contains("14%"));
    assert_eq!(s.alerts_of(AlertKind::LowBattery).await, 1, "once per session");
}

async fn leaving_the_geofence_prompts_the_worker_then_tells_the_line_manager(backend: Backend) {
    let s = scene(backend, 600, 2).await;
    let api = &s.school.staff.api;
    // 100 m away with 10 m accuracy is inside 150 m: nothing.
    api.send_pings(s.session, &[s.ping(51.5009, -0.12, Some(80))]).await.unwrap();
    // About 1.1 km away: outside.
    api.send_pings(s.session, &[s.ping(51.51, -0.12, Some(80))]).await.unwrap();
    let prompt = s.notices(&s.worker, "left_geofence", 1).await;
    assert!(prompt[0].payload["body"].as_str().unwrap().contains("end the visit"));
    assert!(s.push.received_by(&s.manager.id).is_empty(), "the worker is asked first");
    let told = s.notices(&s.manager, "left_geofence", 1).await;
    let waited = (told[0].at - prompt[0].at).num_milliseconds();
    assert!(waited >= 1_500, "the line manager is told after the follow-up time, not at once ({waited} ms)");
    api.send_pings(s.session, &[s.ping(51.52, -0.12, Some(80))]).await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert_eq!(s.alerts_of(AlertKind::LeftGeofence).await, 1);
    assert_eq!(s.push.received_by(&s.worker.id).len(), 1, "one prompt only");
}

async fn the_line_manager_is_not_told_if_the_worker_ends_after_the_prompt(backend: Backend) {
    let s = scene(backend, 600, 2).await;
    let api = &s.school.staff.api;
    api.send_pings(s.session, &[s.ping(51.51, -0.12, Some(80))]).await.unwrap();
    s.notices(&s.worker, "left_geofence", 1).await;
    api.send_events(s.session, &[s.app.event_now(ClientEventKind::End)]).await.unwrap();
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    assert!(s.push.received_by(&s.manager.id).is_empty());
}

async fn lost_signal_fires_once_with_the_last_position(backend: Backend) {
    let s = scene(backend, 2, 120).await;
    s.school.staff.api.send_pings(s.session, &[s.ping(51.5003, -0.1201, Some(80))]).await.unwrap();
    let told = s.notices(&s.manager, "signal_lost", 1).await;
    assert!(told[0].payload["body"].as_str().unwrap().contains("last located"));
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    assert_eq!(s.notices(&s.manager, "signal_lost", 1).await.len(), 1, "once per session");
    let alert = s
        .school
        .leader
        .api
        .alerts("all")
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.kind == AlertKind::SignalLost)
        .expect("a lost-signal alert");
    assert_eq!(alert.last_location, Some(homeward_shared::Coordinates { latitude: 51.5003, longitude: -0.1201 }));
}

async fn pings_keep_the_signal_alive(backend: Backend) {
    let s = scene(backend, 2, 120).await;
    for _ in 0..4 {
        s.school.staff.api.send_pings(s.session, &[s.ping(51.5, -0.12, Some(80))]).await.unwrap();
        tokio::time::sleep(StdDuration::from_millis(900)).await;
    }
    assert_eq!(s.alerts_of(AlertKind::SignalLost).await, 0);
}

async fn a_visit_not_started_reminds_its_worker(backend: Backend) {
    let s = scene(backend, 600, 120).await;
    let mut later = low_risk_visit();
    later.planned_start = s.app.now();
    let planned = s.school.staff.api.plan_session(&later).await.unwrap();
    s.app.advance(Duration::minutes(15) + Duration::seconds(1));
    let reminder = s.notices(&s.worker, "missed_start", 1).await;
    assert!(reminder[0].payload["body"].as_str().unwrap().contains("has not started"));
    let all = s.school.leader.api.alerts("all").await.unwrap();
    assert_eq!(all.iter().filter(|a| a.kind == AlertKind::MissedStart && a.session_id == planned.id).count(), 1);
    // The started visit got no reminder.
    assert_eq!(all.iter().filter(|a| a.kind == AlertKind::MissedStart && a.session_id == s.session).count(), 0);
}

/// The lost-signal check armed at the start comes due while the phone reported since: it looks again a
/// full period after the newest ping, and the line manager is told only then, once.
async fn a_check_due_after_a_recent_ping_waits_a_full_period_from_it(backend: Backend) {
    let s = scene(backend, 4, 120).await;
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    let sent = std::time::Instant::now();
    s.school.staff.api.send_pings(s.session, &[s.ping(51.5, -0.12, Some(80))]).await.unwrap();
    let told = s.notices(&s.manager, "signal_lost", 1).await;
    let waited = sent.elapsed();
    assert!(waited >= StdDuration::from_millis(3900), "told {waited:?} after the last ping; the period is 4 s");
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    assert_eq!(s.notices(&s.manager, "signal_lost", 1).await.len(), 1, "once per session");
    assert_eq!(told.len(), 1);
}

/// A phone reports every few seconds: its lost-signal check is moved only once it has fallen more than
/// half a period behind the newest ping, not rewritten with every report; never more than one pending.
async fn the_lost_signal_check_moves_only_once_well_behind_the_pings(backend: Backend) {
    let s = scene(backend, 600, 120).await;
    let pending = || async {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "select due_at from timers where session_id = $1 and kind = 'signal_check' and fired_at is null \
             and cancelled_at is null",
        )
        .bind(s.session.to_string())
        .fetch_all(&s.app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(rows.len(), 1, "one pending lost-signal check: {rows:?}");
        rows[0].0
    };
    let armed = pending().await;

    s.school.staff.api.send_pings(s.session, &[s.ping(51.5, -0.12, Some(80))]).await.unwrap();
    assert_eq!(pending().await, armed, "a ping just after the start leaves the check armed at the start");
    s.app.advance(Duration::seconds(200));
    s.school.staff.api.send_pings(s.session, &[s.ping(51.5, -0.12, Some(80))]).await.unwrap();
    assert_eq!(pending().await, armed, "200 s behind a 600 s period: left where it is");

    s.app.advance(Duration::seconds(200));
    let ping = s.ping(51.5, -0.12, Some(80));
    s.school.staff.api.send_pings(s.session, std::slice::from_ref(&ping)).await.unwrap();
    assert_eq!(
        pending().await,
        ping.at.timestamp_millis() + 600_000,
        "400 s behind: moved a full period past the ping"
    );
    assert_eq!(s.alerts_of(AlertKind::SignalLost).await, 0);
}

/// A ping that arrives when the lost-signal check is about to fire leaves it to fire. The scheduler may
/// already have claimed it: on PostgreSQL a test transaction holds the check's row locked, as the
/// scheduler does while it waits for the session, and the ping must not wait for that row (the
/// scheduler would be waiting for the ping's lock on the session in turn). The check then fires, sees
/// the ping and looks again a full period after it; no one is told the signal was lost.
async fn a_check_about_to_fire_is_left_to_fire_and_arms_itself_from_the_ping(backend: Backend) {
    let s = scene(backend, 600, 120).await;
    let pool = &s.app.state.db.pool;
    let pending = || async {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "select due_at from timers where session_id = $1 and kind = 'signal_check' and fired_at is null \
             and cancelled_at is null",
        )
        .bind(s.session.to_string())
        .fetch_all(pool)
        .await
        .unwrap();
        assert!(rows.len() <= 1, "at most one pending lost-signal check: {rows:?}");
        rows.first().map(|r| r.0)
    };
    let armed = pending().await.expect("a check armed at the start");
    s.app.advance(Duration::seconds(596));

    let claimed = match backend {
        Backend::Postgres => {
            let mut claim = pool.begin().await.unwrap();
            sqlx::query("select timer_id from timers where due_at = $1 and kind = 'signal_check' for update")
                .bind(armed)
                .execute(&mut *claim)
                .await
                .unwrap();
            Some(claim)
        }
        Backend::Sqlite => None,
    };
    let ping = s.ping(51.5, -0.12, Some(80));
    tokio::time::timeout(WAIT, s.school.staff.api.send_pings(s.session, std::slice::from_ref(&ping)))
        .await
        .expect("the ping does not wait for the claimed check")
        .unwrap();
    assert_eq!(pending().await, Some(armed), "4 s before it fires, the check is left where it is");
    drop(claimed);

    let again = ping.at.timestamp_millis() + 600_000;
    let deadline = std::time::Instant::now() + WAIT;
    while pending().await != Some(again) && std::time::Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(pending().await, Some(again), "the check fired and looks again a full period after the ping");
    assert_eq!(s.alerts_of(AlertKind::SignalLost).await, 0);
}

on_both_databases!(
    a_check_about_to_fire_is_left_to_fire_and_arms_itself_from_the_ping,
    the_lost_signal_check_moves_only_once_well_behind_the_pings,
    a_check_due_after_a_recent_ping_waits_a_full_period_from_it,
    low_battery_fires_once,
    leaving_the_geofence_prompts_the_worker_then_tells_the_line_manager,
    the_line_manager_is_not_told_if_the_worker_ends_after_the_prompt,
    lost_signal_fires_once_with_the_last_position,
    pings_keep_the_signal_alive,
    a_visit_not_started_reminds_its_worker,
);
