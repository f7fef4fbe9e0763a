//! Several server processes on one PostgreSQL: a leader's live board on one process sees what is
//! written through another (LISTEN/NOTIFY), and catches up after its listener lost the database,
//! since notifications sent meanwhile are gone. Boards here never refresh on their timer (an hour), so
//! only the notification, or the rebuild after a reconnect, can bring a change.
//! (Escalations firing once across processes, and one process killed: `crash.rs`.)

use std::time::Duration as StdDuration;

use homeward_shared::api::{ClientEventKind, LocationPing};
use homeward_shared::client::ApiClient;
use homeward_shared::session::SessionStatus;
use homeward_tests::{Backend, TestApp, board_where, low_risk_visit, postgres_admin_url, spawn_app_shifted};
use sqlx::{Connection, Row};
use uuid::Uuid;

const WAIT: StdDuration = StdDuration::from_secs(20);
const NEVER: u64 = 3600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_on_one_process_sees_visits_written_through_another() {
    let first = spawn_app_shifted(Backend::Postgres, |s| s.board_refresh_secs = NEVER).await;
    let second = first.another_process(|s| s.board_refresh_secs = NEVER).await;
    let school = first.school("Two Process School").await;
    let mut board = second.api_for(&school.leader).board_events().await.expect("open the stream on the second");
    let empty = board_where(&mut board, WAIT, "the first board", |_| true).await;
    assert!(empty.sessions.is_empty(), "{empty:?}");

    let session = start_visit(&first, &school.staff.api, "1 First Process Road").await;
    board_where(&mut board, WAIT, "the visit started through the first process", |b| {
        b.sessions.iter().any(|e| e.session_id == session && e.status == SessionStatus::Active)
    })
    .await;

    // Both ways round: a visit ended through the second leaves the first's board.
    let mut first_board = school.leader.api.board_events().await.expect("open the stream on the first");
    board_where(&mut first_board, WAIT, "the visit on the first's board", |b| b.sessions.len() == 1).await;
    second.api_for(&school.staff).send_events(session, &[first.event_now(ClientEventKind::End)]).await.expect("end");
    board_where(&mut first_board, WAIT, "the visit gone", |b| b.sessions.is_empty()).await;
    board_where(&mut board, WAIT, "the visit gone here too", |b| b.sessions.is_empty()).await;
}

/// A ping's transaction sends no notification of its own (that would make every ping's commit wait in
/// line for the disk); other processes hear of new positions together, a moment after the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_sent_through_one_process_reaches_a_board_on_another() {
    let first = spawn_app_shifted(Backend::Postgres, |s| s.board_refresh_secs = NEVER).await;
    let second = first.another_process(|s| s.board_refresh_secs = NEVER).await;
    let school = first.school("Position School").await;
    let session = start_visit(&first, &school.staff.api, "3 Position Road").await;
    let mut board = second.api_for(&school.leader).board_events().await.expect("open the stream on the second");
    board_where(&mut board, WAIT, "the visit, no position yet", |b| {
        b.sessions.iter().any(|e| e.session_id == session && e.battery_percent.is_none())
    })
    .await;
    // Whatever the start's own notification brings has come by now: only the ping's can bring the next.
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    let ping = LocationPing {
        id: Uuid::new_v4(),
        at: first.now(),
        // At the visit (a ping outside its geofence would raise a notice, which is told at once).
        latitude: 51.5,
        longitude: -0.12,
        accuracy_m: 8.0,
        battery_percent: Some(63),
    };
    school.staff.api.send_pings(session, &[ping]).await.expect("the ping, through the first");
    let seen = board_where(&mut board, WAIT, "the position on the second's board", |b| {
        b.sessions.iter().any(|e| e.session_id == session && e.battery_percent == Some(63))
    })
    .await;
    let entry = seen.sessions.iter().find(|e| e.session_id == session).expect("the visit");
    let position = entry.last_position.as_ref().expect("a last position");
    assert_eq!((position.latitude, position.longitude), (51.5, -0.12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_catches_up_on_what_it_missed_while_its_listener_was_cut_off() {
    let first = spawn_app_shifted(Backend::Postgres, |s| s.board_refresh_secs = NEVER).await;
    let second = first.another_process(|s| s.board_refresh_secs = NEVER).await;
    let school = first.school("Cut Off School").await;
    let mut board = second.api_for(&school.leader).board_events().await.expect("open the stream on the second");
    board_where(&mut board, WAIT, "the first board", |_| true).await;
    let session = start_visit(&first, &school.staff.api, "2 Warm Up Way").await;
    board_where(&mut board, WAIT, "the visit", |b| b.sessions.iter().any(|e| e.session_id == session)).await;

    // A change whose notification never reaches the second process: written straight into the
    // database, it sends none at all, which is what a notification sent while the listener was
    // disconnected amounts to. Only a rebuild of the board from the database can show it.
    let database = first.db.url.rsplit('/').next().expect("a database name").to_string();
    let mut db = sqlx::PgConnection::connect(&first.db.url).await.expect("connect to the test database");
    sqlx::query("update users set name = 'Renamed While Unheard' where user_id = $1")
        .bind(school.staff.id().to_string())
        .execute(&mut db)
        .await
        .expect("rename the worker");
    let _ = db.close().await;

    // Every listener's connection cut: each process reconnects on its own and rebuilds its boards.
    let mut admin = sqlx::PgConnection::connect(&postgres_admin_url()).await.expect("connect as admin");
    let cut: i64 = sqlx::query(
        "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity \
         where datname = $1 and query ilike 'listen%') t",
    )
    .bind(&database)
    .fetch_one(&mut admin)
    .await
    .expect("cut the listeners")
    .get(0);
    let _ = admin.close().await;
    assert_eq!(cut, 2, "each process has one listener");
    board_where(&mut board, WAIT, "the change made while unheard", |b| {
        b.sessions.iter().any(|e| e.session_id == session && e.worker_name == "Renamed While Unheard")
    })
    .await;

    // And it hears notifications again after reconnecting.
    let later = start_visit(&first, &school.other_staff.api, "4 Heard Again Lane").await;
    board_where(&mut board, WAIT, "a visit after the reconnect", |b| b.sessions.iter().any(|e| e.session_id == later))
        .await;
}

/// Plan and start a five-minute visit of `worker` now, with no check-in interval.
async fn start_visit(app: &TestApp, worker: &ApiClient, address: &str) -> Uuid {
    let mut visit = low_risk_visit();
    visit.address = address.into();
    visit.expected_duration_minutes = 5;
    visit.check_in_interval_minutes = None;
    app.start_visit(worker, visit).await
}
