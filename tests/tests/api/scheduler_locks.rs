//! PostgreSQL: the scheduler never waits for a visit a request is writing. It holds the timers it has
//! claimed while it fires them, and a request recording an event for a visit moves that visit's timers:
//! had the scheduler waited for the visit, the two would deadlock and PostgreSQL would answer one of
//! them with an error (a worker's panic answered 503).

use chrono::{Duration, Utc};
use homeward_server::clock::ManualClock;
use homeward_shared::api::AlertKind;
use homeward_tests::{BACKGROUND_WAIT, Backend, School, TestApp, eventually, low_risk_visit, spawn_app_with_clock};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

async fn missed_deadline_alert(app: &TestApp, school: &School, session: Uuid) {
    let what = format!("the missed-deadline alert of session {session} (waiting from {})", app.now());
    eventually(&what, BACKGROUND_WAIT, || async {
        let alerts = school.admin.api.alerts("all").await.expect("alerts");
        alerts.into_iter().find(|a| a.session_id == session && a.kind == AlertKind::MissedDeadline).map(|_| ())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_never_waits_on_a_visit_a_request_is_writing() {
    let clock = ManualClock::new(Utc::now());
    let app = spawn_app_with_clock(Backend::Postgres, clock.clone()).await;
    let school = app.school("Lock School").await;
    let mut visit = low_risk_visit();
    visit.check_in_interval_minutes = None;
    visit.expected_duration_minutes = 5;
    let held = app.start_visit(&school.staff.api, visit.clone()).await;
    let other = app.start_visit(&school.other_staff.api, visit).await;

    // A request's transaction with the first visit locked, as recording an event for it locks it.
    let mut request = PgConnection::connect(&app.db.url).await.expect("connect");
    request.execute("begin").await.expect("begin");
    sqlx::query("select session_id from sessions where session_id = $1 for update")
        .bind(held.to_string())
        .execute(&mut request)
        .await
        .expect("lock the visit");

    // Both deadlines pass. The other visit's alarm is raised although the first visit is held.
    clock.advance(Duration::minutes(6));
    missed_deadline_alert(&app, &school, other).await;
    // Nobody waits on a lock: the scheduler left the held visit's timer due.
    let (waiting,): (i64,) = sqlx::query_as(
        "select count(*) from pg_stat_activity \
         where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
    )
    .fetch_one(&mut request)
    .await
    .expect("read pg_stat_activity");
    assert_eq!(waiting, 0, "no connection waits on the held visit");
    // The request moves the visit's timers, as recording an event does, without waiting or deadlocking.
    request.execute("set local statement_timeout = '10s'").await.expect("a timeout");
    sqlx::query("update timers set due_at = due_at where session_id = $1 and fired_at is null")
        .bind(held.to_string())
        .execute(&mut request)
        .await
        .expect("the request's write goes through");
    request.execute("commit").await.expect("commit");

    // Once the request is done, the held visit's deadline fires too.
    missed_deadline_alert(&app, &school, held).await;
}
