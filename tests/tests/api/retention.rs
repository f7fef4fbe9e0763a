//! Location is kept only for the school's retention period (30 days by default), unless an open alert
//! or an incident holds it as evidence.

use chrono::{Duration, Utc};
use homeward_server::clock::ManualClock;
use homeward_server::store::pings::purge_expired;
use homeward_shared::api::{AlertResolution, ClientEventKind, LocationPing, ResolveAlertRequest};
use homeward_tests::{Backend, TestApp, low_risk_visit, on_both_databases, spawn_app_with_clock};
use uuid::Uuid;

async fn pings_of(app: &TestApp, session: Uuid) -> i64 {
    let (n,): (i64,) = sqlx::query_as("select count(*) from location_pings where session_id = $1")
        .bind(session.to_string())
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    n
}

async fn location_past_retention_is_purged_unless_an_incident_holds_it(backend: Backend) {
    let start = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let app = spawn_app_with_clock(backend, ManualClock::new(start)).await;
    let school = app.school("Retention School").await;
    let worker = &school.staff.api;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let mut visit = low_risk_visit();
        visit.planned_start = start;
        let s = worker.plan_session(&visit).await.unwrap();
        worker.send_events(s.id, &[app.event_now(ClientEventKind::Start { location: None })]).await.unwrap();
        let ping = LocationPing {
            id: Uuid::new_v4(),
            at: app.now(),
            latitude: 51.5,
            longitude: -0.12,
            accuracy_m: 8.0,
            battery_percent: Some(70),
        };
        worker.send_pings(s.id, &[ping]).await.unwrap();
        sessions.push(s.id);
    }
    let (ordinary, incident, still_open) = (sessions[0], sessions[1], sessions[2]);
    worker.send_events(ordinary, &[app.event_now(ClientEventKind::End)]).await.unwrap();
    for id in [incident, still_open] {
        worker.send_events(id, &[app.event_now(ClientEventKind::Panic { location: None })]).await.unwrap();
    }
    let alerts = school.leader.api.alerts("open").await.unwrap();
    let incident_alert = alerts.iter().find(|a| a.session_id == incident).unwrap();
    let resolution = ResolveAlertRequest { resolution: AlertResolution::Incident, notes: "Reported to police.".into() };
    school.leader.api.resolve_alert(incident_alert.id, &resolution).await.unwrap();

    app.advance(Duration::days(29));
    assert_eq!(purge_expired(&app.state.db, app.now()).await.unwrap(), 0, "kept within the 30 days");
    app.advance(Duration::days(2));
    // The scheduler's own purge runs as the clock moves too, and may take the expired ping first.
    let purged = purge_expired(&app.state.db, app.now()).await.unwrap();
    assert!(purged <= 1, "only the ordinary visit's ping is past its time: {purged} purged");
    assert_eq!(pings_of(&app, ordinary).await, 0, "an ordinary visit's location is gone");
    assert_eq!(pings_of(&app, incident).await, 1, "an incident holds its location");
    assert_eq!(pings_of(&app, still_open).await, 1, "an open alert holds its location");
}

on_both_databases!(location_past_retention_is_purged_unless_an_incident_holds_it);
